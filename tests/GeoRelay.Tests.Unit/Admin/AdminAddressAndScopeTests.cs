using System.CommandLine;
using GeoRelay.Cli;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Admin;

/// <summary>The admin address (a bare port binds loopback) in the topology and on the command line, and minting admin tokens.</summary>
[TestFixture]
public sealed class AdminAddressAndScopeTests
{
    [TestCase("9100", "127.0.0.1:9100")]
    [TestCase(":9100", "127.0.0.1:9100")]
    [TestCase("0.0.0.0:9100", "0.0.0.0:9100")]
    [TestCase("[::1]:9100", "[::1]:9100")]
    [TestCase("admin.example:9100", "admin.example:9100")]
    public void ABarePortMeansLoopbackAndAHostIsKept(string text, string endpoint)
    {
        Assert.That(NodeEndpoint.TryParseAdmin(text, out var parsed, out var error), Is.True, error);
        Assert.That(parsed.ToString(), Is.EqualTo(endpoint));
    }

    [TestCase("70000", "'70000': port must be a number from 1 to 65535")]
    [TestCase(":0", "':0': port must be a number from 1 to 65535")]
    [TestCase("", "expected host:port, found nothing")]
    [TestCase("localhost", "'localhost': missing ':port'")]
    public void ABadAdminAddressSaysWhatIsWrong(string text, string message)
    {
        Assert.That(NodeEndpoint.TryParseAdmin(text, out _, out var error), Is.False);
        Assert.That(error, Is.EqualTo(message));
    }

    [Test]
    public void TheTopologyTakesABareAdminPortForLoopbackButOnlyForAdmin()
    {
        const string Yaml = """
            cluster: c
            leader: l
            insecure: true
            datacenters:
              d: { members: [m1] }
            nodes:
              l:  { dc: d, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000, admin: 7003 }
              m1: { dc: d, listen: 7011, admin: "10.0.0.5:7013" }
            """;
        var result = TopologyLoader.Parse(Yaml, "t.yaml");
        Assert.That(result.Problems.Select(p => p.ToString()), Is.EqualTo(new[] { "t.yaml:8:24: node 'm1' listen: '7011': missing ':port'" }));

        var config = TopologyLoader.Parse(Yaml.Replace("listen: 7011", "listen: 127.0.0.1:7011"), "t.yaml").GetConfigOrThrow();
        Assert.That(config.GetNode("l").Admin.ToString(), Is.EqualTo("127.0.0.1:7003"));
        Assert.That(config.GetNode("m1").Admin.ToString(), Is.EqualTo("10.0.0.5:7013"));
    }

    private static (TokenScopes Scopes, IReadOnlyList<string> Errors) ParseScope(string text)
    {
        var token = GeoRelayCommandLine.Create().Subcommands.Single(c => c.Name == "token");
        var option = (Option<TokenScopes>)token.Options.Single(o => o.Name == "--scope");
        var result = token.Parse(["--scope", text]);
        var errors = result.Errors.Select(e => e.Message).ToList();
        return (errors.Count == 0 ? result.GetValue(option) : TokenScopes.None, errors);
    }

    [TestCase("learn", TokenScopes.Learn)]
    [TestCase("admin", TokenScopes.Admin)]
    [TestCase("learn,admin", TokenScopes.Learn | TokenScopes.Admin)]
    [TestCase("all", TokenScopes.Learn | TokenScopes.Publish)]
    [TestCase("all, admin", TokenScopes.Learn | TokenScopes.Publish | TokenScopes.Admin)]
    public void TokenScopesParseAndAllNeverImpliesAdmin(string text, TokenScopes scopes)
    {
        var (parsed, errors) = ParseScope(text);
        Assert.That(errors, Is.Empty);
        Assert.That(parsed, Is.EqualTo(scopes));
    }

    [Test]
    public void AnUnknownScopeIsRefusedWithTheKnownOnes()
    {
        var (_, errors) = ParseScope("learn,root");
        Assert.That(errors, Is.EqualTo(new[] { "--scope: 'root' in 'learn,root' is not a scope; use learn, publish, admin or all, joined by commas (learn,admin)" }));
    }
}
