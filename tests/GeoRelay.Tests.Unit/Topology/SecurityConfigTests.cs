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
    public void WithoutTlsOrInsecureTheFileLoadsButNodesMayNotStart()
    {
        var result = Load("");
        Assert.That(result.Success, Is.True, "tools (token, dev-certs) still read it");
        Assert.That(result.StartProblems, Has.Count.EqualTo(1));
        var problem = result.StartProblems[0];
        Assert.That((problem.Line, problem.Column), Is.EqualTo((1, 1)));
        Assert.That(problem.Message, Does.Contain("no 'tls' section").And.Contain("ca: certs/ca.crt").And.Contain("insecure: true")
            .And.Contain("georelay dev-certs --config /etc/georelay/t.yaml --out /etc/georelay/certs"));
        string refusal = SecurityPosture.StartRefusal(result.Config!)!;
        Assert.That(refusal, Does.StartWith("/etc/georelay/t.yaml: no 'tls' section"));

        var saidFalse = Load("insecure: false");
        Assert.That((saidFalse.StartProblems[0].Line, saidFalse.StartProblems[0].Column), Is.EqualTo((8, 11)), "points at the value that keeps TLS required");
    }

    [Test]
    public void InsecureOrTlsLetNodesStart()
    {
        var insecure = Load("insecure: true");
        Assert.That(insecure.StartProblems, Is.Empty);
        Assert.That(insecure.Config!.Insecure, Is.True);
        Assert.That(SecurityPosture.StartRefusal(insecure.Config), Is.Null);
        Assert.That(insecure.Warnings, Is.Empty, "every address of Base is loopback");

        var tls = Load("tls: { ca: ca.crt, certificates: certs }");
        Assert.That(tls.StartProblems, Is.Empty);
        Assert.That(tls.Config!.Insecure, Is.False);
        Assert.That(SecurityPosture.StartRefusal(tls.Config), Is.Null);
    }

    [Test]
    public void InsecureAndTlsTogetherAreAProblem()
    {
        var result = Load("insecure: true\ntls: { ca: ca.crt, certificates: certs }");
        Assert.That(string.Join("\n", result.Problems), Does.Contain("insecure: true contradicts the 'tls' section"));
        Assert.That(Load("insecure: maybe").Problems[0].Message, Does.Contain("insecure must be true or false"));
    }

    [Test]
    public void PlainTcpOnANonLoopbackAddressIsAWarningAtThatAddress()
    {
        var yaml = Base.Replace("listen: 127.0.0.1:7011", "listen: 0.0.0.0:7011").Replace("learners: 127.0.0.1:7012", "learners: 10.1.2.3:7012");
        var insecure = TopologyLoader.Parse(yaml + "\ninsecure: true", "t.yaml");
        Assert.That(insecure.Success, Is.True);
        Assert.That(insecure.Warnings.Select(w => (w.Line, w.Column)), Is.EqualTo(new[] { (7, 24), (7, 48) }), string.Join("\n", insecure.Warnings));
        Assert.That(insecure.Warnings[0].Message, Does.Contain("node 'm1' listen address 0.0.0.0:7011 is not loopback").And.Contain("insecure: true"));

        var learnersInClear = TopologyLoader.Parse(yaml + "\ntls: { ca: ca.crt, certificates: certs, learners: false }", "t.yaml");
        Assert.That(learnersInClear.Warnings, Has.Count.EqualTo(1));
        Assert.That(learnersInClear.Warnings[0].Message, Does.Contain("learners address 10.1.2.3:7012").And.Contain("tls.learners: false"));
        Assert.That(TopologyLoader.Parse(yaml + "\ntls: { ca: ca.crt, certificates: certs }", "t.yaml").Warnings, Is.Empty);
    }

    [TestCase("127.0.0.1:1", true)]
    [TestCase("127.8.9.10:1", true)]
    [TestCase("[::1]:1", true)]
    [TestCase("localhost:1", true)]
    [TestCase("LocalHost:1", true)]
    [TestCase("0.0.0.0:1", false)]
    [TestCase("[::]:1", false)]
    [TestCase("10.0.0.1:1", false)]
    [TestCase("relay.example.com:1", false)]
    public void LoopbackAddresses(string address, bool loopback) =>
        Assert.That(NodeEndpoint.Parse(address).IsLoopback, Is.EqualTo(loopback));

    [Test]
    public void FrameTimeoutDefaultsToTenSecondsAndTakesBareSeconds()
    {
        Assert.That(Load("").GetConfigOrThrow().Defaults.FrameTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(Load("defaults: { frame-timeout: 3 }").GetConfigOrThrow().Defaults.FrameTimeout, Is.EqualTo(TimeSpan.FromSeconds(3)));
        Assert.That(Load("defaults: { frame-timeout: 2500ms }").GetConfigOrThrow().Defaults.FrameTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(2500)));
        Assert.That(Load("defaults: { frame-timeout: 0 }").Problems[0].Message, Does.Contain("frame-timeout must be longer than 0"));
    }

    [Test]
    public void RevocationsParseAndBadIdsAreReportedWhereWritten()
    {
        var config = Load("auth: { key-file: keys, revoked-keys: [legacy, k-2024], revoked-tokens: [00000000000000AB], revoked-file: revoked.txt }").GetConfigOrThrow();
        Assert.That(config.Auth!.RevokedKeys, Is.EqualTo(new[] { "legacy", "k-2024" }));
        Assert.That(config.Auth.RevokedTokens, Is.EqualTo(new[] { "00000000000000ab" }));
        Assert.That(config.Auth.RevokedFile, Is.EqualTo("/etc/georelay/revoked.txt"));

        var bad = Load("auth: { key-file: keys, revoked-keys: [a.b], revoked-tokens: [123] }");
        Assert.That(bad.Problems.Select(p => p.Message), Is.EqualTo(new[]
        {
            "auth.revoked-keys: 'a.b' is not a key id (letters, digits, '_' or '-', at most 32)",
            "auth.revoked-tokens: '123' is not a token id (16 hex digits, as georelay token prints it)",
        }));
        Assert.That(bad.Problems[0].Column, Is.EqualTo(40));
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
