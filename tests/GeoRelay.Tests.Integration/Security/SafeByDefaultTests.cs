using System.Security.Cryptography.X509Certificates;
using GeoRelay.Cli;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>Mutual TLS between nodes is the default: real processes that refuse, warn, and refuse a peer without a certificate.</summary>
[TestFixture]
[NonParallelizable]
public sealed class SafeByDefaultTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Test]
    public async Task NodeWithoutTlsOrInsecureRefusesToStartSayingWhatToAdd()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("insecure: true\n", ""));
        var m1 = cluster.StartNode("m1");
        Assert.That(await m1.WaitForExitAsync(Patience), Is.EqualTo(2), m1.Output);
        Assert.That(m1.Output, Does.Contain($"{cluster.ConfigPath}: no 'tls' section, and nodes refuse to run without TLS"));
        Assert.That(m1.Output, Does.Contain("tls:\n    ca: certs/ca.crt\n    certificates: certs"), "says exactly what to add");
        Assert.That(m1.Output, Does.Contain($"georelay dev-certs --config {cluster.ConfigPath} --out {Path.Combine(cluster.Directory, "certs")}"));
        Assert.That(m1.Output, Does.Contain("insecure: true"));
        Assert.That(m1.Output, Does.Not.Contain("Listening for"), "nothing was opened");
    }

    [Test]
    public async Task InsecureNodeWarnsForEveryNonLoopbackAddressItListensOnOrDials()
    {
        // 0.0.0.0 is every interface: reachable from elsewhere. The leader dials it (on Linux that reaches this host).
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("listen: 127.0.0.1:", "listen: 0.0.0.0:"));
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        var leader = cluster.Processes["leader"];
        var m1Listen = cluster.Topology.GetNode("m1").Listen!.Value;
        await m1.WaitForLineAsync($@"Peer port 0\.0\.0\.0:{m1Listen.Port} is not loopback and speaks plain TCP \(no tls section; insecure: true\): anyone who can reach it can pose as a node", Patience);
        await leader.WaitForLineAsync($@"Dialing m1 at 0\.0\.0\.0:{m1Listen.Port}, not loopback, over plain TCP \(insecure: true\)", Patience);
        Assert.That(m1.Output, Does.Not.Contain("Learner port 127.0.0.1"), "its loopback learner port is not reported");
        Assert.That(leader.Output, Does.Not.Contain("Publish port 127.0.0.1"), "nor the leader's loopback publish port");
    }

    [Test]
    public async Task MutualTlsPeerPortRefusesAPeerWithoutAClientCertificate()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("insecure: true\n", "tls: { ca: certs/ca.crt, certificates: certs }\n"));
        DevCertificates.Write(cluster.Topology, Path.Combine(cluster.Directory, "certs"), TimeSpan.FromDays(1));
        var m1 = cluster.StartNode("m1");
        await m1.WaitForLineAsync("Listening for Peer", Patience);
        var topology = cluster.Topology;
        var peerPort = topology.GetNode("m1").Listen!.Value.ToEndPoint();
        using var ca = X509CertificateLoader.LoadCertificateFromFile(topology.Tls!.CaFile);
        var leaderHello = HostileClient.HelloFrame(Hello.ForThisBuild(topology.LeaderId, NodeKind.Leader, 1, topology.Cluster, TopologyFingerprint.Of(topology)));

        // Without a certificate the TLS handshake fails; with TLS 1.3 the client may finish its side first, and the
        // member then hangs up before any Welcome.
        bool welcomed;
        try
        {
            await using var anonymous = await HostileClient.ConnectTlsAsync(peerPort, ca);
            await anonymous.SendAsync(leaderHello);
            welcomed = await anonymous.WaitForWelcomeAsync(Patience);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
        {
            welcomed = false;
        }
        Assert.That(welcomed, Is.False, "a peer without a client certificate must not get through");
        await m1.WaitForLineAsync("Refused connection from .*TLS handshake failed", Patience);

        // The same Hello with the leader's certificate is welcomed: what was refused was the missing certificate.
        using var leaderCert = X509Certificate2.CreateFromPemFile(topology.Tls.CertificateFile(topology.LeaderId), topology.Tls.KeyFile(topology.LeaderId));
        await using var genuine = await HostileClient.ConnectTlsAsync(peerPort, ca, leaderCert);
        await genuine.SendAsync(leaderHello);
        Assert.That(await genuine.WaitForWelcomeAsync(Patience), Is.True, m1.Output);
    }
}
