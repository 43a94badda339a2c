using GeoRelay.Leader;
using GeoRelay.Relay;
using GeoRelay.Server.Hosting;
using GeoRelay.Storage;
using GeoRelay.Topology;
using NUnit.Framework;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;

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
        /// <summary>The datacenter of a node outside the topology (a learner), set before it is added.</summary>
        public Dictionary<string, string> Placement = null!;
    }

    /// <param name="relayLog">The retention log for a relay (default: an unbounded MemoryLog).</param>
    /// <param name="defaults">Changes to the sample's defaults (default: none).</param>
    /// <param name="acrossRegions">The one-way delay in microseconds between two datacenters (default: 40-100 ms, drawn per link).</param>
    internal static Cluster Build(int seed, Func<string, MemoryLog>? relayLog = null, Func<ClusterDefaults, ClusterDefaults>? defaults = null,
        Func<string, string, long>? acrossRegions = null)
    {
        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        if (defaults is not null) topology = topology with { Defaults = defaults(topology.Defaults) };
        var random = new Random(seed);
        // One-way delay: 0.2 ms inside a region, 40-100 ms across, with per-seed jitter fixed per link.
        var delays = new Dictionary<(string, string), long>();
        var placement = new Dictionary<string, string>();
        long Latency(string a, string b)
        {
            if (!delays.TryGetValue((a, b), out var d))
            {
                // A node outside the topology sits where Placement puts it (a learner next to its relay), else in the leader's DC (a second leader).
                string Dc(string id) => topology.Nodes.TryGetValue(id, out var n) ? n.Datacenter : placement.GetValueOrDefault(id, topology.Leader.Datacenter);
                bool same = Dc(a) == Dc(b);
                delays[(a, b)] = d = same ? 200 : acrossRegions?.Invoke(Dc(a), Dc(b)) ?? 40_000 + random.Next(60_000);
            }
            return d;
        }
        var cluster = new Cluster { Network = new SimNetwork(Latency), Topology = topology, Placement = placement };
        var env = new SimEnvironment(cluster.Network.Clock);
        foreach (var dc in topology.Datacenters)
        {
            foreach (var m in dc.Members)
            {
                var log = cluster.MemberLogs[m] = new MemoryLog();
                cluster.Network.Add(m, new MemberEngine(topology, m, log, env));
            }
            foreach (var p in dc.Relays) cluster.Network.Add(p, new RelayEngine(topology, p, relayLog?.Invoke(p) ?? new MemoryLog(), env, seed: seed));
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
    public void EveryMemberConvergesOnTheLeadersLogAcrossARelayCrash(int seed)
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
        Assert.That(euWest.Route, Is.EqualTo("relay eu-p2"));
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
    public void EveryRelayOfADatacenterDownSendsDirectlyThenReturnsToARelay()
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
        RunUntil(c, () => c.Leader.Status().Single(s => s.Name == "ap-south").Route == "relay ap-p2", 10_000);
        Publish(c, 200, 5);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        var expected = LogDigest.Compute(c.LeaderLog, c.LeaderLog.LastIndex);
        foreach (var m in c.Topology.GetDatacenter("ap-south").Members)
            Assert.That(LogDigest.Compute(c.MemberLogs[m], c.MemberLogs[m].LastIndex), Is.EqualTo(expected), m);
    }

    private static MemoryLog CopyOf(MemoryLog log, ulong through)
    {
        var copy = new MemoryLog();
        for (ulong i = 1; i <= through; i++)
        {
            Assert.That(log.TryGet(i, out var e), Is.True);
            copy.Append(e);
        }
        copy.Flush();
        return copy;
    }

    private static void AllMembersHold(Cluster c, MemoryLog leaderLog)
    {
        var expected = LogDigest.Compute(leaderLog, leaderLog.LastIndex);
        foreach (var (member, log) in c.MemberLogs)
        {
            Assert.That(log.LastIndex, Is.EqualTo(leaderLog.LastIndex), member);
            Assert.That(LogDigest.Compute(log, log.LastIndex), Is.EqualTo(expected), $"{member} differs from the leader");
        }
    }

    [Test]
    public void ALeaderWithAHigherEpochTakesOverAndTheDeposedOneReachesNoOne()
    {
        var c = Build(11);
        Publish(c, 100, 11);
        RunUntil(c, () => Converged(c, 100), 10_000);

        // The new leader (epoch 2) starts on a copy of the log while the old one keeps running.
        var newLog = CopyOf(c.LeaderLog, 100);
        var env = new SimEnvironment(c.Network.Clock);
        var successor = new LeaderEngine(c.Topology, 2, newLog, env, LeaderOptions.Default with { Seed = 11 });
        c.Network.Add("successor", successor);
        var relays = c.Topology.Datacenters.SelectMany(d => d.Relays).ToList();
        RunUntil(c, () => c.Topology.AllMembers.All(m => ((MemberEngine)c.Network.Engine(m.Id)).HighestEpoch == 2)
            && relays.All(p => ((RelayEngine)c.Network.Engine(p)).HighestEpoch == 2), 20_000);

        // Its epoch starts with a no-op at 101, through which 1..100 commit under epoch 2. Then both write: only
        // the successor's entries may land anywhere.
        Assert.That(newLog.TryGet(101, out var noOp) && GeoRelay.Codec.Frames.InternalEntries.IsInternal(noOp.Key.Span), Is.True);
        for (int i = 0; i < 30; i++)
        {
            c.Leader.Append(default, System.Text.Encoding.UTF8.GetBytes($"deposed-{i}"), c.Network.Clock.NowMicros);
            successor.Append(default, System.Text.Encoding.UTF8.GetBytes($"successor-{i}"), c.Network.Clock.NowMicros);
        }
        RunUntil(c, () => c.MemberLogs.Values.All(l => l.DurableIndex == 131) && successor.CommitIndex == 131, 20_000);
        for (int s = 0; s < 2_000; s++) c.Network.Step(); // the deposed leader keeps trying meanwhile
        AllMembersHold(c, newLog);
        Assert.That(c.Leader.CommitIndex, Is.EqualTo(100UL), "the deposed leader committed nothing of its own");
        Assert.That(c.Leader.Deposed, Is.True, "the deposed leader was told of the higher epoch");
    }

    [Test]
    public void ANewLeaderThatLacksAnUncommittedSuffixHasItReplacedOnMembersButNeverCommittedEntries()
    {
        var c = Build(12);
        Publish(c, 100, 12);
        RunUntil(c, () => Converged(c, 100), 10_000);
        ulong committed = c.Leader.CommitIndex;

        // Only us-m1 hears of 101..120: the leader is cut off from everyone else, so they cannot commit.
        foreach (var node in c.Topology.Nodes.Keys)
            if (node != c.Topology.LeaderId && node != "us-m1") c.Network.Cut(c.Topology.LeaderId, node);
        Publish(c, 20, 12);
        RunUntil(c, () => c.MemberLogs["us-m1"].DurableIndex == 120, 10_000);
        Assert.That(c.Leader.CommitIndex, Is.EqualTo(committed), "one member is no quorum");

        // The leader dies having lost those 20 entries (a disk without fsync); its successor, epoch 2,
        // writes 10 entries of its own at the same indexes.
        c.Network.Crash(c.Topology.LeaderId);
        c.Network.HealAll();
        var newLog = CopyOf(c.LeaderLog, 100);
        var successor = new LeaderEngine(c.Topology, 2, newLog, new SimEnvironment(c.Network.Clock), LeaderOptions.Default with { Seed = 12 });
        c.Network.Restart(c.Topology.LeaderId, successor);
        for (int i = 0; i < 10; i++)
            successor.Append(default, System.Text.Encoding.UTF8.GetBytes($"epoch2-{i}"), c.Network.Clock.NowMicros);
        ulong lastCommit = 0;
        // The successor's epoch begins with a no-op at 101; its 10 entries follow.
        bool Done() => c.MemberLogs.Values.All(l => l.LastIndex == 111 && l.DurableIndex == 111) && successor.CommitIndex == 111;
        for (int s = 0; s < 20_000 && !Done(); s++)
        {
            c.Network.Step();
            Assert.That(successor.CommitIndex, Is.GreaterThanOrEqualTo(lastCommit));
            lastCommit = successor.CommitIndex;
            // Never counts us-m1's old entries as its own: nothing above 100 commits before a quorum holds epoch 2 there.
            if (successor.CommitIndex > 100)
                Assert.That(c.MemberLogs.Values.Count(l => l.DurableIndex >= successor.CommitIndex && l.TryGet(successor.CommitIndex, out var e) && e.Epoch == 2),
                    Is.GreaterThanOrEqualTo(c.Topology.RequiredAcks));
        }
        Assert.That(Done(), Is.True, "every member holds the successor's log and it committed");
        AllMembersHold(c, newLog);
        Assert.That(c.MemberLogs["us-m1"].TryGet(101, out var replaced) && replaced.Epoch == 2, Is.True, "us-m1's entry 101 is the new leader's");
    }

    [Test]
    public void ARelayLinkThatClosesWhileTheLeaderStopsIsNotUsedAgain()
    {
        // Found by the chaos test: the leader's final flush sent a batch on a relay link closed during shutdown.
        var c = Build(13);
        Publish(c, 50, 13);
        RunUntil(c, () => Converged(c, 50), 10_000);
        c.Leader.Stopping = true;
        c.Network.Crash("eu-p1");
        Publish(c, 50, 13);
        for (int s = 0; s < 100; s++) c.Network.Step();
        c.Leader.FlushAndSend();
        Assert.That(c.Leader.Status().Single(s => s.Name == "eu-west").Failovers, Is.Zero, "stopping is no failure");
    }

    [Test]
    public void TheWindowHoldsPublishersBackByUncompressedBytesHoweverWellEntriesCompress()
    {
        // A relay forwards members their packets uncompressed (compression.local-level 0): the window must
        // bound what it may have to queue per member, not the few compressed bytes on the leader's link.
        var c = Build(14, defaults: d => d with { Window = 1 << 20, BatchMaxBytes = 256 << 10, LocalCompressionLevel = 0 });
        RunUntil(c, () => c.Leader.Status().All(s => s.Connected), 5_000);
        var zeros = new byte[4096];
        while (c.LeaderLog.LastIndex < 512) c.Leader.Append(default, zeros, c.Network.Clock.NowMicros);
        for (int s = 0; s < 10; s++) c.Network.Step(); // 10 ms: far less than a cross-region round trip

        var euWest = c.Leader.Status().Single(s => s.Name == "eu-west");
        Assert.That(euWest.BytesSent, Is.LessThan(64 << 10), "zeros compress to almost nothing on the wire");
        Assert.That(euWest.InflightBytes, Is.GreaterThanOrEqualTo(1 << 20), "a window's worth of entries is in flight, counted uncompressed");
        Assert.That(c.Leader.HasCapacity, Is.False, "publishers wait for acks");
        RunUntil(c, () => Converged(c, 512) && c.Leader.HasCapacity, 10_000); // acks free the window
    }

    [Test]
    public void AMemberThatComesBackAfterAFullWindowWentOutCatchesUp()
    {
        // The window waits for every reachable member; one that was away while it filled needs a catch-up
        // batch that the full window must not hold back (it did: the datacenter stalled for good).
        var c = Build(15, defaults: d => d with { Window = 1 << 20, BatchMaxBytes = 256 << 10 });
        Publish(c, 10, 15);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 5_000);
        c.Network.Cut("eu-p1", "eu-m1");
        var payload = new byte[4096];
        new Random(15).NextBytes(payload); // incompressible: the wire bytes fill the window too
        while (c.LeaderLog.LastIndex < 600) c.Leader.Append(default, payload, c.Network.Clock.NowMicros);
        for (int s = 0; s < 50; s++) c.Network.Step();
        Assert.That(c.Leader.HasCapacity, Is.False, "the window is full");
        c.Network.HealAll();
        RunUntil(c, () => Converged(c, 600) && c.Leader.HasCapacity, 20_000);
        AllMembersHold(c, c.LeaderLog);
    }

    private static long EuWestFailovers(Cluster c)
    {
        var s = c.Leader.Status().Single(s => s.Name == "eu-west");
        return s.Failovers + s.DirectFallbacks + s.RelayReturns;
    }

    [Test]
    public void ARelayPathSlowerThanFailoverAfterSettlesInsteadOfFlapping()
    {
        // Round trips to eu-west of 0.8-2 s against failover-after 500 ms: every fresh relay times out
        // before its first ack. Each quick timeout doubles the limit, so the route settles on a relay and stays.
        var c = Build(21);
        Publish(c, 100, 21);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        foreach (var node in c.Topology.GetDatacenter("eu-west").Relays.Concat(c.Topology.GetDatacenter("eu-west").Members))
            c.Network.Slow(c.Topology.LeaderId, node, 10);
        c.Network.DropBetween(c.Topology.LeaderId, "eu-p1");

        var changesPerSecond = new List<long>();
        for (int second = 0; second < 60; second++)
        {
            Publish(c, 50, 21);
            long before = EuWestFailovers(c);
            for (int s = 0; s < 1000; s++) c.Network.Step();
            changesPerSecond.Add(EuWestFailovers(c) - before);
        }
        long lastHalf = changesPerSecond.Skip(30).Sum();
        Assert.That(lastHalf, Is.LessThanOrEqualTo(3),
            $"the route kept changing: {string.Join(" ", changesPerSecond)} route changes in each second");
        Assert.That(changesPerSecond.Sum(), Is.LessThanOrEqualTo(10));
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 30_000);
    }

    [Test]
    public void AfterTheRouteHasHeldARelayThatGoesSilentIsAbandonedWithinFailoverAfter()
    {
        // Damping is for timeouts in quick succession: a lone one, long after the last, is detected at the plain limit.
        var c = Build(22);
        long failoverAfter = (long)c.Topology.Defaults.FailoverAfter.TotalMilliseconds;
        Publish(c, 100, 22);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        for (int s = 0; s < 60_000; s++) c.Network.Step(); // a minute of quiet
        long quietBefore = EuWestFailovers(c);
        c.Network.Slow(c.Topology.LeaderId, "eu-p1", 1000); // alive but nothing arrives: silent
        int steps = 0;
        while (EuWestFailovers(c) == quietBefore && steps < 10_000)
        {
            c.Network.Step();
            steps++;
        }
        Assert.That(EuWestFailovers(c), Is.EqualTo(quietBefore + 1));
        Assert.That(steps, Is.LessThanOrEqualTo(failoverAfter + 2 * c.Topology.Defaults.Heartbeat.TotalMilliseconds + 200),
            "a silent relay after a long quiet spell is detected at failover-after (plus the time its last frames were on the way)");
    }

    [Test]
    public void AStallOfTheWholeMachineFailsNothingOver()
    {
        // Every node stops for two seconds at once (an overloaded host, a VM pause): nobody sent, nobody read.
        // Afterwards the leader sees silence it did not watch; it must not blame the relays for it.
        var c = Build(23);
        Publish(c, 100, 23);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        var before = c.Leader.Status().ToDictionary(s => s.Name, s => s.Failovers + s.DirectFallbacks);
        c.Network.Clock.NowMicros += 2_000_000;
        Publish(c, 100, 23);
        RunUntil(c, () => Converged(c, c.Leader.LastIndex), 10_000);
        foreach (var s in c.Leader.Status())
            Assert.That(s.Failovers + s.DirectFallbacks, Is.EqualTo(before[s.Name]), $"{s.Name} failed over after a stall of every node");
    }
}
