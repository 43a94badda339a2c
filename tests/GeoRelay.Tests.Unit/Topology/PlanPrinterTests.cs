using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

[TestFixture]
public sealed class PlanPrinterTests
{
    [Test]
    public void LocalSampleIsOneDatacenterWithTheLeaderAndThreeMembers()
    {
        var config = TopologyLoader.LoadFile(Sample("local.yaml")).GetConfigOrThrow();
        Assert.Multiple(() =>
        {
            Assert.That(config.Datacenters.Select(d => d.Name), Is.EqualTo(new[] { "local" }));
            Assert.That(config.LeaderDatacenter.Relays, Is.Empty);
            Assert.That(config.AllMembers.Select(m => m.Id), Is.EqualTo(new[] { "m1", "m2", "m3" }));
            Assert.That(config.RequiredAcks, Is.EqualTo(2));
            Assert.That(config.SourcePath, Is.EqualTo(Path.GetFullPath(Sample("local.yaml"))));
        });
        AssertLoopbackAddresses(config);
    }

    [Test]
    public void ThreeRegionsSampleHasTheShapeTheDemoExpects()
    {
        var config = TopologyLoader.LoadFile(Sample("three-regions.yaml")).GetConfigOrThrow();
        Assert.Multiple(() =>
        {
            Assert.That(config.Datacenters.Select(d => $"{d.Name}:{d.Relays.Count}:{d.Members.Count}"),
                Is.EqualTo(new[] { "us-east:0:2", "eu-west:2:3", "ap-south:2:3" }));
            Assert.That(config.LeaderDatacenter.Name, Is.EqualTo("us-east"));
            Assert.That(config.RequiredAcks, Is.EqualTo(5));
            Assert.That(config.Defaults, Is.EqualTo(ClusterDefaults.Default));
        });
        AssertLoopbackAddresses(config);
    }

    private static void AssertLoopbackAddresses(TopologyConfig config)
    {
        var all = new List<NodeEndpoint>();
        foreach (var node in config.Nodes.Values)
        {
            Assert.That(node.Admin, Is.Not.Null, node.Id);
            Assert.That(node.Listen, Is.Not.Null, node.Id);
            if (node.Role != NodeRole.Leader)
            {
                Assert.That(node.Learners, Is.Not.Null, node.Id);
            }
            all.AddRange(new[] { node.Listen, node.Publish, node.Learners, node.Admin }.OfType<NodeEndpoint>());
        }
        Assert.That(all.Select(e => e.Host), Has.All.EqualTo("127.0.0.1"));
        Assert.That(all.Select(e => e.Port).ToList(), Has.All.InRange(7000, 7999));
        Assert.That(all.Select(e => e.Port).ToList(), Is.Unique);
    }

    [Test]
    public void PlanShowsEveryDatacentersRouteRelaysMembersAndLearners()
    {
        var config = TopologyLoader.LoadFile(Sample("three-regions.yaml")).GetConfigOrThrow();
        string text = PlanPrinter.Format(config, RoutePlanner.Plan(config, id => id != "eu-p1"));
        Assert.That(text, Does.StartWith("""
            cluster   three-regions
            leader    us-leader in us-east: publish 127.0.0.1:7100, listen 127.0.0.1:7101
            quorum    majority: 5 of 8 member acks commit an entry
            defaults  heartbeat 100ms, failover-after 500ms, batch 1MiB or 1ms, window 64MiB, compression zstd 1 (off inside a DC)
                      retention 256MiB or 1h, max-frame 16MiB, learner-backlog 8MiB, handshake-timeout 5s, fsync on

            datacenter us-east (leader's)
              route     direct: the leader serves its own datacenter
              relays   none
              members   us-m1 127.0.0.1:7111, us-m2 127.0.0.1:7121
              learners  127.0.0.1:7102, 127.0.0.1:7112, 127.0.0.1:7122

            datacenter eu-west
              route     via relay eu-p2
              relays   1. eu-p1 127.0.0.1:7201 (down), 2. eu-p2 127.0.0.1:7211 (active)
              members   eu-m1 127.0.0.1:7221, eu-m2 127.0.0.1:7231, eu-m3 127.0.0.1:7241
              learners  127.0.0.1:7212, 127.0.0.1:7222, 127.0.0.1:7232, 127.0.0.1:7242

            datacenter ap-south
              route     via relay ap-p1
              relays   1. ap-p1 127.0.0.1:7301 (active), 2. ap-p2 127.0.0.1:7311 (standby)
            """));
    }

    [Test]
    public void PlanShowsDirectRouteWhenEveryRelayIsDown()
    {
        var config = Valid(Small);
        string text = PlanPrinter.Format(config, RoutePlanner.Plan(config, _ => false));
        Assert.That(text, Does.Contain("""
            datacenter away
              route     direct: no healthy relay, the leader sends to each member
              relays   1. p1 127.0.0.1:7021 (down), 2. p2 127.0.0.1:7031 (down)
            """));
    }

    [Test]
    public void CheckPrintsThePlanAndExitsZeroForAValidFile()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = TopologyCheck.Run(Sample("three-regions.yaml"), output, error);
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.EqualTo(0));
            Assert.That(error.ToString(), Is.Empty);
            Assert.That(output.ToString(), Does.Contain("datacenter eu-west\n  route     via relay eu-p1\n"));
        });
    }

    [Test]
    public void CheckPrintsEveryProblemWithItsPositionAndExitsTwoForABrokenFile()
    {
        string broken = Path.Combine(Path.GetTempPath(), $"georelay-broken-{Guid.NewGuid():N}.yaml");
        string yaml = File.ReadAllText(Sample("three-regions.yaml"))
            .Replace("members: [eu-m1, eu-m2, eu-m3]", "members: [eu-m1, eu-m2, eu-m4]")
            .Replace("listen: 127.0.0.1:7331", "listen: 127.0.0.1:7321")
            .Replace("failover-after: 500ms", "failover-after: 500");
        File.WriteAllText(broken, yaml);
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int exit = TopologyCheck.Run(broken, output, error);
            Assert.That(exit, Is.EqualTo(2));
            Assert.That(output.ToString(), Is.Empty);
            Assert.That(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
            {
                $"{broken}:11:19: defaults.failover-after: '500': a duration needs a unit (ms, s, m or h), e.g. 500ms",
                $"{broken}:27:29: unknown node 'eu-m4' in members of datacenter 'eu-west'; define it under 'nodes'",
                $"{broken}:41:3: node 'eu-m3' is listed nowhere: it is not the leader and not in any datacenter's relays or members",
                $"{broken}:46:38: address 127.0.0.1:7321 (listen of node 'ap-m2') is already the listen address of node 'ap-m1' (line 45)",
                "4 problems",
            }));
        }
        finally
        {
            File.Delete(broken);
        }
    }
}
