using GeoRelay.Leader;
using GeoRelay.Relay;
using GeoRelay.Relay.Hosting;
using GeoRelay.Storage;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Sim;

/// <summary>The leader, relay and member engines of three-regions.yaml on the simulated network and clock.</summary>
[TestFixture]
public sealed class SimulatedClusterTests
{
    internal sealed class Cluster
    {
        public SimNetwork Network = null!;
        public LeaderEngine Leader = null!;
        public MemoryLog LeaderLog = null!;
        public Dictionary<string, MemoryLog> MemberLogs = new();
        public TopologyConfig Topology = null!;
    }

    /// <param name="relayLog">The retention log for a proxy (default: an unbounded MemoryLog).</param>
    internal static Cluster Build(int seed, Func<string, MemoryLog>? relayLog = null)
    {
        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        var random = new Random(seed);
        // One-way delay: 0.2 ms inside a region, 40-100 ms across, with per-seed jitter fixed per link.
        var delays = new Dictionary<(string, string), long>();
        long Latency(string a, string b)
        {
            if (!delays.TryGetValue((a, b), out var d))
            {
                // A node outside the topology (a learner) sits next to the node it talks to.
                bool same = !topology.Nodes.ContainsKey(a) || !topology.Nodes.ContainsKey(b) || topology.GetNode(a).Datacenter == topology.GetNode(b).Datacenter;
                delays[(a, b)] = d = same ? 200 : 40_000 + random.Next(60_000);
            }
            return d;
        }
        var cluster = new Cluster { Network = new SimNetwork(Latency), Topology = topology };
        var env = new SimEnvironment(cluster.Network.Clock);
        foreach (var dc in topology.Datacenters)
        {
            foreach (var m in dc.Members)
            {
                var log = cluster.MemberLogs[m] = new MemoryLog();
                cluster.Network.Add(m, new MemberEngine(topology, m, log, env));
            }
            foreach (var p in dc.Proxies) cluster.Network.Add(p, new RelayEngine(topology, p, relayLog?.Invoke(p) ?? new MemoryLog(), env, seed: seed));
        }
        cluster.LeaderLog = new MemoryLog();
        cluster.Leader = new LeaderEngine(topology, 1, cluster.LeaderLog, env, LeaderOptions.Default with { Seed = seed });
        cluster.Network.Add(topology.LeaderId, cluster.Leader);
        return cluster;
    }

    internal static void Publish(Cluster c, int count, int seed)
    {
        for (int i = 0; i < count; i++)
            c.Leader.Append(default, System.Text.Encoding.UTF8.GetBytes($"entry-{seed}-{c.Leader.LastIndex + 1}"), c.Network.Clock.NowMicros);
    }

    internal static bool Converged(Cluster c, ulong last)
    {
        foreach (var (_, log) in c.MemberLogs) if (log.DurableIndex < last) return false;
        return c.Leader.CommitIndex >= last;
    }

    internal static void RunUntil(Cluster c, Func<bool> done, int maxSteps)
    {
        for (int i = 0; i < maxSteps && !done(); i++) c.Network.Step();
        Assert.That(done(), Is.True, $"not converged after {maxSteps} simulated ms");
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void EveryMemberConvergesOnTheLeadersLogAcrossAProxyCrash(int seed)
    {
        var c = Build(seed);
        ulong lastCommit = 0;
        for (int round = 0; round < 40; round++)
        {
            Publish(c, 100, seed);
            for (int s = 0; s < 20; s++)
            {
                c.Network.Step();
                Assert.That(c.Leader.CommitIndex, Is.GreaterThanOrEqualTo(lastCommit), "the commit index never decreases");
                lastCommit = c.Leader.CommitIndex;
            }
            if (round == 15) c.Network.Crash("eu-p1");     // the leader must move eu-west to eu-p2
        }
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 20_000);

        var expected = LogDigest.Compute(c.LeaderLog, c.LeaderLog.LastIndex);
        foreach (var (member, log) in c.MemberLogs)
            Assert.That(LogDigest.Compute(log, log.LastIndex), Is.EqualTo(expected), $"{member} differs from the leader");
        var euWest = c.Leader.Status().Single(s => s.Name == "eu-west");
        Assert.That(euWest.Route, Is.EqualTo("proxy eu-p2"));
        Assert.That(euWest.Failovers, Is.EqualTo(1));
    }

    [Test]
    public void ASeedReplaysTheSameTrace()
    {
        ulong Run()
        {
            var c = Build(42);
            for (int round = 0; round < 10; round++)
            {
                Publish(c, 50, 42);
                for (int s = 0; s < 10; s++) c.Network.Step();
                if (round == 4) c.Network.Crash("ap-p1");
            }
            RunUntil(c, () => Converged(c, c.Leader.LastIndex), 20_000);
            return c.Network.TraceHash;
        }
        Assert.That(Run(), Is.EqualTo(Run()));
    }

    [Test]
    public void EveryProxyOfADatacenterDownSendsDirectlyThenReturnsToAProxy()
    {
        var c = Build(5);
        Publish(c, 200, 5);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 5_000);
        c.Network.Crash("ap-p1");
        c.Network.Crash("ap-p2");
        Publish(c, 200, 5);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        Assert.That(c.Leader.Status().Single(s => s.Name == "ap-south").Route, Is.EqualTo("direct"));

        c.Network.Restart("ap-p2", new RelayEngine(c.Topology, "ap-p2", new MemoryLog(), new SimEnvironment(c.Network.Clock), seed: 5));
        RunUntil(c, () => c.Leader.Status().Single(s => s.Name == "ap-south").Route == "proxy ap-p2", 10_000);
        Publish(c, 200, 5);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        var expected = LogDigest.Compute(c.LeaderLog, c.LeaderLog.LastIndex);
        foreach (var m in c.Topology.GetDatacenter("ap-south").Members)
            Assert.That(LogDigest.Compute(c.MemberLogs[m], c.MemberLogs[m].LastIndex), Is.EqualTo(expected), m);
    }
}
