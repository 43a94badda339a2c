using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Voters;

/// <summary>
/// Many seeds of faults against the voters and relays of the three-region sample while entries are published at
/// whoever leads: crashes that lose unsynced tails, restarts, a voter or a datacenter cut off, relays lost. The
/// invariants of <see cref="VoterCluster"/> hold after every step; after the faults heal, a leader commits
/// everything it holds and every voter converges on its log.
/// </summary>
[TestFixture]
public sealed class VoterChaosTests
{
    private static int Seeds => int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_VOTER_SEEDS"), out int n) ? n : 120;

    [Test]
    public void EverySeedKeepsTheInvariantsAndConverges()
    {
        var failures = new List<string>();
        for (int seed = 1; seed <= Seeds; seed++)
        {
            try { Run(seed); }
            catch (AssertionException e) { failures.Add(e.Message); }
            if (failures.Count >= 3) break;
        }
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures));
    }

    /// <summary>
    /// <c>delivery: durable</c>: learners get entries before they commit, and leader changes take some back. Each learner
    /// must end with exactly the leader's log (so every entry taken back was announced with Truncated), and across the
    /// seeds some must have been told, or the run did not exercise it. <c>GEORELAY_VOTER_SEEDS</c> / 2 seeds (default 60).
    /// </summary>
    [Test]
    [Explicit("open: about 1 seed in 150 ends with a learner holding an entry a leader change took back without a Truncated (see docs/decisions.md)")]
    public void DurableDeliveryTellsLearnersWhatWasTakenBack()
    {
        var failures = new List<string>();
        int truncations = 0;
        for (int seed = 1; seed <= Seeds / 2; seed++)
        {
            try { truncations += Run(seed, LearnerDelivery.Durable); }
            catch (AssertionException e) { failures.Add(e.Message); }
            if (failures.Count >= 3) break;
        }
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures));
        TestContext.Out.WriteLine($"{Seeds / 2} seeds with durable delivery: {truncations} Truncated frames to learners");
        Assert.That(truncations, Is.GreaterThan(0), "some learner received entries a new leader took back");
    }

    [TestCase(7)]
    [TestCase(204)]
    public void OneSeed(int seed) => Run(seed);

    /// <summary>Runs one seed; returns how many Truncated frames learners received.</summary>
    private static int Run(int seed, LearnerDelivery delivery = LearnerDelivery.Committed)
    {
        var c = new VoterCluster(seed, d => d with { Delivery = delivery });
        var random = new Random(seed ^ 0x5EED);
        var voters = c.Voters;
        var relays = c.Topology.Datacenters.SelectMany(d => d.Relays).ToList();
        var down = new HashSet<string>();
        var cut = new List<(string, string)>();
        for (int round = 0; round < 30; round++)
        {
            c.Publish(random.Next(1, 20));
            c.Publisher.Publish(random.Next(1, 5));
            switch (random.Next(8))
            {
                case 0 when down.Count < 2: // a voter crashes; a quorum of the nine stays up
                {
                    var v = voters[random.Next(voters.Count)];
                    if (down.Add(v)) c.Crash(v, tornTail: random.Next(2) == 0);
                    break;
                }
                case 1 when down.Count > 0:
                {
                    var v = down.First();
                    down.Remove(v);
                    if (voters.Contains(v)) c.Restart(v);
                    else c.Network.Restart(v, new GeoRelay.Relay.RelayEngine(c.Topology, v, new GeoRelay.TestUtilities.MemoryLog(), new GeoRelay.TestUtilities.Sim.SimEnvironment(c.Network.Clock), seed: seed));
                    break;
                }
                case 2: // the current leader is cut off from everyone
                {
                    if (c.CurrentLeader() is { } l)
                        foreach (var other in c.Topology.Nodes.Keys)
                            if (other != l.NodeId) { c.Network.Cut(l.NodeId, other); cut.Add((l.NodeId, other)); }
                    c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: isolate the leader");
                    break;
                }
                case 3:
                    foreach (var (a, b) in cut) c.Network.Heal(a, b);
                    cut.Clear();
                    c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: heal");
                    break;
                case 4 when down.Count < 2 && relays.Count > 0:
                {
                    var p = relays[random.Next(relays.Count)];
                    if (down.Add(p)) { c.Network.Crash(p); c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: crash relay {p}"); }
                    break;
                }
            }
            int steps = random.Next(100, 2_000);
            for (int s = 0; s < steps; s++) c.Step();
        }
        foreach (var (a, b) in cut) c.Network.Heal(a, b);
        foreach (var v in down)
        {
            if (voters.Contains(v)) c.Restart(v);
            else c.Network.Restart(v, new GeoRelay.Relay.RelayEngine(c.Topology, v, new GeoRelay.TestUtilities.MemoryLog(), new GeoRelay.TestUtilities.Sim.SimEnvironment(c.Network.Clock), seed: seed));
        }
        c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: everything healed and restarted");
        c.Publish(1); // commits what earlier terms left, if the leader has not yet
        c.RunUntil(() => c.CurrentLeader() is { Leader: { } l } && l.CommitIndex == l.LastIndex && l.CommitIndex > 0
            && c.Publisher.AllAcknowledged && c.Voters.All(v => c.Logs[v].DurableIndex >= l.LastIndex), 60_000,
            "a leader with every voter caught up, and every publish acknowledged");
        c.CheckExactlyOnce(c.Logs[c.CurrentLeader()!.NodeId]);
        // With durable delivery a learner may hold a deposed leader's entries beyond the leader's log; they are taken
        // back once the leader writes there, so the leader publishes past them (leadership may still move home meanwhile).
        c.RunUntil(() =>
        {
            if (c.CurrentLeader() is not { Leader: { } l }) return false;
            ulong ahead = c.Learners.Max(x => x.Next);
            if (ahead > l.LastIndex + 1) c.Publish((int)(ahead - l.LastIndex));
            return l.CommitIndex == l.LastIndex && c.Learners.All(x => x.Next == l.LastIndex + 1);
        }, 60_000, "every learner at the leader's last index");
        var leader = c.CurrentLeader()!;
        ulong last = leader.Leader!.LastIndex;
        c.CheckRelayRetention(c.Logs[leader.NodeId], last);
        c.CheckLearnerStreams(c.Logs[leader.NodeId], last);
        return c.Learners.Sum(l => l.Truncations);
    }
}
