using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Topology;

[TestFixture]
public sealed class SecurityConfigTests
{
    private const string Base = """
        cluster: c
        leader: l
        datacenters:
          d: { members: [m1] }
        nodes:
          l:  { dc: d, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
          m1: { dc: d, listen: 127.0.0.1:7011, learners: 127.0.0.1:7012 }
        """;

    private static TopologyLoadResult Load(string extra) => TopologyLoader.Parse(Base + "\n" + extra, "/etc/georelay/t.yaml");

    [Test]
    public void LimitsDefaultWhenAbsentAndParseWhenGiven()
    {
        var plain = Load("").GetConfigOrThrow();
        Assert.That(plain.Defaults.IdleTimeout, Is.EqualTo(TimeSpan.FromSeconds(60)));
        Assert.That(plain.Defaults.MaxConnectionsPerPort, Is.EqualTo(10_000));
        Assert.That(plain.Defaults.MaxConnectionsPerAddress, Is.EqualTo(1_000));
        Assert.That(plain.Defaults.MaxSubscribesPerSecond, Is.EqualTo(10));
        Assert.That(plain.Tls, Is.Null);
        Assert.That(plain.Auth, Is.Null);

        var set = Load("defaults: { idle-timeout: 5s, max-connections-per-port: 50, max-connections-per-address: 7, max-subscribes-per-second: 2 }").GetConfigOrThrow();
        Assert.That(set.Defaults.IdleTimeout, Is.EqualTo(TimeSpan.FromSeconds(5)));
        Assert.That(set.Defaults.MaxConnectionsPerPort, Is.EqualTo(50));
        Assert.That(set.Defaults.MaxConnectionsPerAddress, Is.EqualTo(7));
        Assert.That(set.Defaults.MaxSubscribesPerSecond, Is.EqualTo(2));
    }

    [Test]
    public void BadLimitsAreReportedWithTheirPosition()
    {
        var result = Load("defaults: { max-connections-per-port: 0, idle-timeout: soon }");
        Assert.That(result.Success, Is.False);
        Assert.That(string.Join("\n", result.Problems), Does.Contain("max-connections-per-port must be a whole number").And.Contain("idle-timeout"));
        Assert.That(result.Problems[0].Line, Is.EqualTo(8));
    }

    [Test]
    public void TlsAndAuthPathsResolveAgainstTheFilesFolder()
    {
        var config = Load("tls: { ca: certs/ca.crt, certificates: certs, learners: false }\nauth: { key-file: /secrets/k, publish: false }").GetConfigOrThrow();
        Assert.That(config.Tls!.CaFile, Is.EqualTo("/etc/georelay/certs/ca.crt"));
        Assert.That(config.Tls.CertificateFile("m1"), Is.EqualTo("/etc/georelay/certs/m1.crt"));
        Assert.That(config.Tls.Learners, Is.False);
        Assert.That(config.Tls.Publish, Is.True);
        Assert.That(config.Auth!.KeyFile, Is.EqualTo("/secrets/k"));
        Assert.That(config.Auth.Learners, Is.True);
        Assert.That(config.Auth.Publish, Is.False);
    }

    [Test]
    public void IncompleteSecuritySectionsSayWhatIsMissing()
    {
        var result = Load("tls: { ca: ca.crt }\nauth: { key: abc }");
        var text = string.Join("\n", result.Problems);
        Assert.That(text, Does.Contain("tls needs both 'ca'"));
        Assert.That(text, Does.Contain("unknown key 'key' in 'auth'"));
        Assert.That(text, Does.Contain("auth needs 'key-file'"));
    }
}
