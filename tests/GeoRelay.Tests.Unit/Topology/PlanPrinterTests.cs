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
            defaults  heartbeat 100ms, failover-after 500ms, failback-after 10s, batch 1MiB (natural batching), window 64MiB, compression zstd 1 (off inside a DC)
                      retention 256MiB or 1h, max-frame 16MiB, learner-backlog 8MiB, delivery committed, handshake-timeout 5s, fsync on

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

    /// <summary>The sample with <paramref name="edit"/> applied, in a temp file, through check-config.</summary>
    private static (int Exit, string Output, string Error, string Path) CheckEdited(Func<string, string> edit)
    {
        string path = Path.Combine(Path.GetTempPath(), $"georelay-check-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, edit(File.ReadAllText(Sample("three-regions.yaml"))));
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int exit = TopologyCheck.Run(path, output, error);
            return (exit, output.ToString(), error.ToString(), path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void CheckFailsAFileNodesWouldRefuseWithoutTlsOrInsecure()
    {
        var (exit, output, error, path) = CheckEdited(yaml => yaml.Replace("insecure: true\n", "insecure: false\n"));
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Is.Empty);
        Assert.That(error, Does.StartWith($"{path}:10:11: no 'tls' section, and nodes refuse to run without TLS"));
        Assert.That(error, Does.Contain("georelay dev-certs").And.Contain("insecure: true").And.EndWith("1 problem\n"));
    }

    [Test]
    public void CheckWarnsAboutPlainTcpReachableFromOtherMachinesButPasses()
    {
        var (exit, output, error, path) = CheckEdited(yaml => yaml.Replace("listen: 127.0.0.1:7201", "listen: 0.0.0.0:7201"));
        Assert.That(exit, Is.EqualTo(0));
        Assert.That(output, Does.Contain("datacenter eu-west"));
        Assert.That(error.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
        {
            $"{path}:42:38: warning: node 'eu-p1' listen address 0.0.0.0:7201 is not loopback and speaks plain TCP: insecure: true, so the peers connecting there are not authenticated (anyone who reaches it can pose as a node) and entries cross the network in the clear",
        }));
    }

    [Test]
    public void CheckPrintsEveryProblemWithItsPositionAndExitsTwoForABrokenFile()
    {
        string broken = Path.Combine(Path.GetTempPath(), $"georelay-broken-{Guid.NewGuid():N}.yaml");
        string yaml = File.ReadAllText(Sample("three-regions.yaml"))
            .Replace("members: [eu-m1, eu-m2, eu-m3]", "members: [eu-m1, eu-m2, eu-m4]")
            .Replace("listen: 127.0.0.1:7331", "listen: 127.0.0.1:7321")
            .Replace("failover-after: 500ms", "failover-after: 1.5");
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
                $"{broken}:14:19: defaults.failover-after: '1.5' is not a duration; write {ConfigUnits.DurationForms}",
                $"{broken}:32:29: unknown node 'eu-m4' in members of datacenter 'eu-west'; define it under 'nodes'",
                $"{broken}:46:3: node 'eu-m3' is listed nowhere: it is not the leader and not in any datacenter's relays or members",
                $"{broken}:51:63: address 127.0.0.1:7321 (listen of node 'ap-m2') is already the listen address of node 'ap-m1' (line 50)",
                "4 problems",
            }));
        }
        finally
        {
            File.Delete(broken);
        }
    }
}
