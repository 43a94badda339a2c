using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

[TestFixture]
public sealed class RoutePlannerTests
{
    private const string ThreeRelays = """
        cluster: routes
        leader: ldr
        datacenters:
          home:
            members: [h1]
          away:
            relays: [p1, p2, p3]
            members: [a1, a2]
        nodes:
          ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000, learners: 127.0.0.1:7002 }
          h1: { dc: home, listen: 127.0.0.1:7011, learners: 127.0.0.1:7012 }
          p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022 }
          p2: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032 }
          p3: { dc: away, listen: 127.0.0.1:7041 }
          a1: { dc: away, listen: 127.0.0.1:7051, learners: 127.0.0.1:7052 }
          a2: { dc: away, listen: 127.0.0.1:7061 }
        """;

    private static NodeEndpoint Ep(int port) => new("127.0.0.1", port);

    // Every combination of the three relays' health: the route is the first healthy relay in
    // priority order, or direct when none is; learners are offered the healthy relays first.
    [Test]
    public void EveryHealthCombinationOfThreeRelays([Range(0, 7)] int healthyMask)
    {
        var config = Valid(ThreeRelays);
        string[] relays = ["p1", "p2", "p3"];
        var healthy = relays.Where((_, i) => (healthyMask & (1 << i)) != 0).ToHashSet();
        var asked = new List<string>();

        var plan = RoutePlanner.Plan(config, id =>
        {
            asked.Add(id);
            return healthy.Contains(id);
        });

        var away = plan.Single(r => r.Datacenter == "away");
        string? expectedRelay = relays.FirstOrDefault(healthy.Contains);
        var expectedLearners = new List<NodeEndpoint>();
        if (healthy.Contains("p1")) expectedLearners.Add(Ep(7022));
        if (healthy.Contains("p2")) expectedLearners.Add(Ep(7032));
        expectedLearners.Add(Ep(7052)); // a1; p3 and a2 have no learners address

        Assert.Multiple(() =>
        {
            Assert.That(away.Kind, Is.EqualTo(expectedRelay is null ? RouteKind.Direct : RouteKind.Relay));
            Assert.That(away.RelayId, Is.EqualTo(expectedRelay));
            Assert.That(away.Members, Is.EqualTo(new[] { "a1", "a2" }));
            Assert.That(away.LearnerEndpoints, Is.EqualTo(expectedLearners));
            Assert.That(asked, Is.EquivalentTo(relays), "each relay is asked about once, and nothing else");
        });
    }

    [Test]
    public void LeaderDatacenterIsAlwaysDirect([Values] bool relaysHealthy)
    {
        var config = Valid(ThreeRelays);
        var home = RoutePlanner.Plan(config, _ => relaysHealthy)[0];
        Assert.Multiple(() =>
        {
            Assert.That(home.Datacenter, Is.EqualTo("home"));
            Assert.That(home.Kind, Is.EqualTo(RouteKind.Direct));
            Assert.That(home.RelayId, Is.Null);
            Assert.That(home.Members, Is.EqualTo(new[] { "h1" }));
            Assert.That(home.LearnerEndpoints, Is.EqualTo(new[] { Ep(7002), Ep(7012) }));
        });
    }

    [Test]
    public void PlanIsPureAndFollowsFileOrder()
    {
        var config = Valid(ThreeRelays);
        var first = RoutePlanner.Plan(config, id => id == "p2");
        var second = RoutePlanner.Plan(config, id => id == "p2");
        Assert.That(first.Select(r => r.Datacenter), Is.EqualTo(new[] { "home", "away" }));
        Assert.That(first.Select(r => (r.Kind, r.RelayId)), Is.EqualTo(second.Select(r => (r.Kind, r.RelayId))));
        Assert.That(first[1].RelayId, Is.EqualTo("p2"));
    }

    [Test]
    public void ThreeRegionsSampleRoutesEachRemoteRegionThroughItsFirstRelay()
    {
        var config = TopologyLoader.LoadFile(Sample("three-regions.yaml")).GetConfigOrThrow();
        var plan = RoutePlanner.Plan(config, id => id != "ap-p1");
        Assert.That(plan.Select(r => $"{r.Datacenter}:{r.Kind}:{r.RelayId}"),
            Is.EqualTo(new[] { "us-east:Direct:", "eu-west:Relay:eu-p1", "ap-south:Relay:ap-p2" }));
    }

    [TestCase("a", "b", true)]
    [TestCase("b", "a", false)]
    [TestCase("a", "a", false)]
    [TestCase("eu-p1", "eu-p2", true)]
    [TestCase("node-10", "node-9", true)]   // ordinal, not numeric
    [TestCase("B", "a", true)]              // ordinal: upper case sorts first
    public void LowerIdDialsHigherId(string self, string peer, bool dials) =>
        Assert.That(MeshRule.Dials(self, peer), Is.EqualTo(dials));

    [Test]
    public void EveryPairOfPeersHasExactlyOneDialer()
    {
        string[] ids = ["eu-p1", "eu-p2", "eu-m1", "ap-p1", "us-leader", "Z", "a"];
        foreach (string x in ids)
        {
            foreach (string y in ids)
            {
                if (x != y)
                {
                    Assert.That(MeshRule.Dials(x, y) ^ MeshRule.Dials(y, x), Is.True, $"{x} / {y}");
                }
            }
        }
        int connections = ids.Sum(id => MeshRule.PeersToDial(id, ids).Count());
        Assert.That(connections, Is.EqualTo(ids.Length * (ids.Length - 1) / 2));
    }
}
