using GeoRelay.Engines;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

/// <summary>The node key <c>web: HOST:PORT</c>: where browsers and HTTP clients subscribe (docs/web.md).</summary>
[TestFixture]
public sealed class WebKeyTests
{
    [Test]
    public void ARelayAndAMemberWithLearnersMayServeWeb()
    {
        var yaml = SmallWith("p1:", "  p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: 127.0.0.1:7023 }")
            .Replace("a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042 }", "a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, web: localhost:7043 }");
        var config = Valid(yaml);
        Assert.Multiple(() =>
        {
            Assert.That(config.Nodes["p1"].Web, Is.EqualTo(new NodeEndpoint("127.0.0.1", 7023)));
            Assert.That(config.Nodes["a1"].Web, Is.EqualTo(new NodeEndpoint("localhost", 7043)));
            Assert.That(config.Nodes["p2"].Web, Is.Null);
        });
    }

    [Test]
    public void WebWithoutLearnersOnTheSameNodeIsAProblemNamingTheNodeAndTheKey() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051, web: 127.0.0.1:7053 }"), 15, 48,
            "member 'a2' has a 'web' address but no 'learners' address", "add 'learners: HOST:PORT'");

    [Test]
    public void AMalformedWebAddressIsAProblemNamingTheNodeAndTheKey() =>
        AssertOnlyProblem(SmallWith("p1:", "  p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: 7023 }"), 12, 74,
            "node 'p1' web: '7023': missing ':port'");

    [Test]
    public void AWebAddressUsedByAnotherKeyIsAProblem() =>
        AssertOnlyProblem(SmallWith("p1:", "  p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: 127.0.0.1:7022 }"), 12, 74,
            "address 127.0.0.1:7022 (web of node 'p1') is already the learners address of node 'p1'");

    [Test]
    public void PlainHttpWebBeyondLoopbackIsAWarningAndLoopbackIsNot()
    {
        string Insecure(string web) => "insecure: true\n" + SmallWith("p1:", $"  p1: {{ dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: {web} }}");
        var exposed = TopologyLoader.Parse(Insecure("10.0.0.5:7023"), "t.yaml");
        var local = TopologyLoader.Parse(Insecure("127.0.0.1:7023"), "t.yaml");
        Assert.Multiple(() =>
        {
            Assert.That(exposed.Success, Is.True, string.Join("\n", exposed.Problems));
            Assert.That(exposed.Warnings.Select(w => w.Message), Has.One.Contains("node 'p1' web address 10.0.0.5:7023 is not loopback and speaks plain TCP")
                .And.One.Contains("web clients' tokens and entries cross the network in the clear"));
            Assert.That(local.Warnings, Is.Empty);
        });
    }

    [Test]
    public void ThePlanListsEachDatacentersWebEndpointsAndOmitsTheLineWithoutThem()
    {
        var with = Valid(SmallWith("p1:", "  p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: 127.0.0.1:7023 }")
            .Replace("a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042 }", "a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, web: 127.0.0.1:7043 }"));
        string text = PlanPrinter.Format(with, RoutePlanner.Plan(with, _ => true));
        Assert.That(text, Does.Contain("\n  web       p1 127.0.0.1:7023, a1 127.0.0.1:7043\n"));
        Assert.That(text.Split('\n').Count(l => l.StartsWith("  web ", StringComparison.Ordinal)), Is.EqualTo(1), "home has no web endpoint");
        var without = Valid(Small);
        Assert.That(PlanPrinter.Format(without, RoutePlanner.Plan(without, _ => true)), Does.Not.Contain("  web "));
    }

    [Test]
    public void WebDoesNotChangeTheFingerprint()
    {
        var without = Valid(Small);
        var with = Valid(SmallWith("p1:", "  p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, web: 127.0.0.1:7023 }"));
        Assert.That(TopologyFingerprint.Of(with), Is.EqualTo(TopologyFingerprint.Of(without)));
    }
}
