using System.Net.WebSockets;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// With `tls` the web endpoint speaks HTTPS and wss:// with the node's own certificate, and its upstream subscriptions
/// reach the node's TLS learner port (checked to be this very node).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebTlsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task WithTlsTheStreamIsServedOverHttpsAndWssWithTheNodesCertificate()
    {
        using var cluster = new ClusterFixture("web.yaml", yaml => yaml.Replace("insecure: true\n", "tls: { ca: certs/ca.crt, certificates: certs }\n"));
        string certs = Path.Combine(cluster.Directory, "certs");
        var devCerts = cluster.Run("dev-certs", $"dev-certs --config \"{cluster.ConfigPath}\" --out \"{certs}\"");
        Assert.That(await devCerts.WaitForExitAsync(Patience), Is.EqualTo(0), devCerts.Output);
        await cluster.StartAllAsync();
        await cluster.Processes["m1"].WaitForLineAsync("Web endpoint on https://", Patience);
        string ca = Path.Combine(certs, "ca.crt");
        await WebClusterPublisher.PublishAsync(cluster, [(Encoding.UTF8.GetBytes("secure/1"), Encoding.UTF8.GetBytes("over tls"))], caFile: ca);

        var web = cluster.Topology.GetNode("m1").Web!.Value;
        using var tls = NodeTls.Load(ca, null, null);
        using var deadline = new CancellationTokenSource(Patience);
        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = tls.ClientOptions(web.Host, expectedNodeId: null) }) { Timeout = Timeout.InfiniteTimeSpan };
        using (var stream = await SseStream.OpenAsync(http, $"https://{web}/stream?from=1&prefix=secure/", ct: deadline.Token))
            Assert.That((await stream.TakeAsync(1, deadline.Token))[0].Payload, Is.EqualTo("over tls"));

        using var socket = new ClientWebSocket();
        socket.Options.RemoteCertificateValidationCallback = tls.ClientOptions(web.Host, expectedNodeId: null).RemoteCertificateValidationCallback;
        await socket.ConnectAsync(new Uri($"wss://{web}/stream?from=1&prefix=secure/"), deadline.Token);
        var buffer = new byte[4096];
        var received = await socket.ReceiveAsync(buffer, deadline.Token);
        Assert.That(Encoding.UTF8.GetString(buffer, 0, received.Count), Does.Contain("\"payload\":\"over tls\""));
    }
}
