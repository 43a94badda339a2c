using GeoRelay.Storage;
using GeoRelay.Topology;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>Faults the voter chaos run injects.</summary>
public enum VoterFault
{
    /// <summary>A voter crashes with its whole log (what it appended, synced or not, survives).</summary>
    CrashVoter,
    /// <summary>A voter crashes and loses what it had not synced.</summary>
    CrashVoterLosingTail,
    CrashRelay,
    /// <summary>The current leader is cut off from every other node until the next heal.</summary>
    IsolateLeader,
    /// <summary>A voter's process is killed: nothing is lost, and peers see its links close a latency later.</summary>
    KillVoter,
    /// <summary>Every packet to and from the current leader is dropped, its connections staying open, until the next heal.</summary>
    SilenceLeader,
}

/// <summary>What one voter chaos run did.</summary>
public sealed record VoterChaosResult(int Seed, ulong TraceHash, long Steps, ulong Entries, ulong Term, int LeaderTerms,
    int Truncations, long LearnerReconnects, IReadOnlyDictionary<VoterFault, int> Faults, int SnapshotInstalls = 0, int LearnerSnapshots = 0, long KeyedImagesInstalled = 0, int DeliveredAhead = 0)
{
    public int MembershipChanges { get; init; }
    public int ConfigurationsCommitted { get; init; }
}

/// <summary>
/// One seeded run of <see cref="VoterCluster"/> (the three-region sample with every voter a <c>VoterEngine</c>) under
/// 30 rounds of faults while entries are published at whoever leads: voter crashes that may lose unsynced tails,
/// voters killed, restarts, the leader cut off (connections reset) or silenced (packets dropped), relays lost. The cluster's invariants hold after every step; after everything heals, a
/// leader commits all it holds with every voter caught up, every acknowledged publish is in its log once, and every
/// learner ends with exactly its application entries (with durable delivery: what was taken back was announced).
/// Same seed, same run.
/// </summary>
public static class VoterChaos
{
    /// <summary>
    /// The voters' logs in retention runs: 1 KiB segments, 4 KiB kept (a few dozen entries). Leaders drop what followers
    /// that were down or cut off still need, so those come back through InstallSnapshot. Age never applies (it follows
    /// the wall clock, which the simulation does not).
    /// </summary>
    public static SegmentLogOptions SmallRetention { get; } = SegmentLogOptions.Default with
    {
        SegmentBytes = 1024, RetentionMaxBytes = 4096, RetentionMaxAge = TimeSpan.MaxValue, CacheBytes = 1024,
    };

    /// <summary>Runs one seed; throws <see cref="InvariantViolationException"/> at the first broken invariant.</summary>
    /// <param name="retention">Voters keep only <see cref="SmallRetention"/>.</param>
    /// <param name="keyed">Keyed compaction on every node (with <see cref="SmallRetention"/>): keyed writes and tombstones, and learners behind retention take snapshots.</param>
    /// <param name="membership">Membership changes too: the leader promotes, demotes, removes and re-adds members, one at a time.</param>
    public static VoterChaosResult Run(int seed, LearnerDelivery delivery = LearnerDelivery.Committed, bool retention = false, bool keyed = false, bool membership = false)
    {
        var c = new VoterCluster(seed, d => d with { Delivery = delivery, Compaction = keyed ? LogCompaction.Keyed : LogCompaction.None },
            retention || keyed ? SmallRetention : null, keyed);
        try
        {
            return Run(seed, c, membership);
        }
        catch (Exception e) when (e is not InvariantViolationException)
        {
            throw c.Violation($"an engine threw {e}");
        }
    }

    /// <summary>The command that runs <paramref name="seed"/> again with <paramref name="delivery"/>, with its trace.</summary>
    public static string ReplayCommand(int seed, LearnerDelivery delivery, bool retention = false, bool keyed = false) =>
        $"GEORELAY_SEED={seed} dotnet test tests/GeoRelay.Tests.Simulation -c Release --filter FullyQualifiedName~VoterChaosTests." +
        (keyed ? "KeyedCompactionGivesEveryLearnerTheLeadersKeyedState" : retention ? (delivery == LearnerDelivery.Durable ? "SmallRetentionWithDurableDeliveryKeepsEveryLearnersStreamTheLeaders" : "SmallRetentionInstallsSnapshotsAndKeepsTheInvariants")
            : delivery == LearnerDelivery.Durable ? "DurableDeliveryTellsLearnersWhatWasTakenBack" : "EverySeedKeepsTheInvariantsAndConverges");

    private static VoterChaosResult Run(int seed, VoterCluster c, bool membership)
    {
        var random = new Random(seed ^ 0x5EED);
        var voters = c.Voters;
        var relays = c.Topology.Datacenters.SelectMany(d => d.Relays).ToList();
        var down = new HashSet<string>();
        var cut = new List<(string, string)>();
        var faults = new Dictionary<VoterFault, int>();
        void Count(VoterFault kind) => faults[kind] = faults.GetValueOrDefault(kind) + 1;
        for (int round = 0; round < 30; round++)
        {
            c.Publish(random.Next(1, 20));
            c.Publisher.Publish(random.Next(1, 5));
            switch (random.Next(8))
            {
                case 7 when membership:
                    c.ChangeMembership(random);
                    break;
                case 0 when down.Count < 2: // a voter crashes; a quorum of the nine stays up
                {
                    var v = voters[random.Next(voters.Count)];
                    if (down.Add(v))
                    {
                        bool tornTail = random.Next(2) == 0;
                        c.Crash(v, tornTail);
                        Count(tornTail ? VoterFault.CrashVoterLosingTail : VoterFault.CrashVoter);
                    }
                    break;
                }
                case 1 when down.Count > 0:
                {
                    var v = down.First();
                    down.Remove(v);
                    if (voters.Contains(v)) c.Restart(v);
                    else c.RestartRelay(v);
                    break;
                }
                case 2: // the current leader is cut off from everyone
                {
                    if (c.CurrentLeader() is { } l)
                    {
                        foreach (var other in c.Topology.Nodes.Keys)
                            if (other != l.NodeId) { c.Network.Cut(l.NodeId, other); cut.Add((l.NodeId, other)); }
                        Count(VoterFault.IsolateLeader);
                    }
                    c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: isolate the leader");
                    break;
                }
                case 3:
                    foreach (var (a, b) in cut) c.Network.Heal(a, b);
                    cut.Clear();
                    c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: heal");
                    break;
                case 5 when down.Count < 2:
                {
                    var v = voters[random.Next(voters.Count)];
                    if (down.Add(v))
                    {
                        c.Kill(v);
                        Count(VoterFault.KillVoter);
                    }
                    break;
                }
                case 6: // the current leader behind a firewall that drops everything
                {
                    if (c.CurrentLeader() is { } l)
                    {
                        foreach (var other in c.Topology.Nodes.Keys)
                            if (other != l.NodeId) { c.Network.Silence(l.NodeId, other); cut.Add((l.NodeId, other)); }
                        Count(VoterFault.SilenceLeader);
                    }
                    c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: silence the leader");
                    break;
                }
                case 4 when down.Count < 2 && relays.Count > 0:
                {
                    var p = relays[random.Next(relays.Count)];
                    if (down.Add(p))
                    {
                        c.Network.Crash(p);
                        c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: crash relay {p}");
                        Count(VoterFault.CrashRelay);
                    }
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
            else c.RestartRelay(v);
        }
        c.Trace.Add($"{c.Network.Clock.NowMicros / 1000} ms: everything healed and restarted");
        if (membership) c.StopRemoved();
        c.Publish(1); // commits what earlier terms left, if the leader has not yet
        c.RunUntil(() => c.CurrentLeader() is { Leader: { } l } && l.CommitIndex == l.LastIndex && l.CommitIndex > 0
            && c.Publisher.AllAcknowledged && c.Members().All(v => c.Logs[v].DurableIndex >= l.LastIndex), 60_000,
            "a leader with every voter caught up, and every publish acknowledged");
        c.CheckExactlyOnce(c.Logs[c.CurrentLeader()!.NodeId]);
        // With durable delivery a learner may hold a deposed leader's entries beyond the leader's log; they are taken
        // back once the leader writes there, so the leader publishes past them (leadership may still move home meanwhile).
        // A learner is done once its last entry is the leader's: a node compares a reconnected learner's last entry only
        // once it holds that index, so reaching the leader's last index alone does not mean it was told yet.
        c.RunUntil(() =>
        {
            if (c.CurrentLeader() is not { Leader: { } l } voter) return false;
            ulong ahead = c.Learners.Max(x => x.Next);
            if (ahead > l.LastIndex + 1) c.Publish((int)(ahead - l.LastIndex));
            return l.CommitIndex == l.LastIndex && c.Learners.All(x => x.Next == l.LastIndex + 1 && c.HoldsLastOf(x, c.Logs[voter.NodeId]))
                && c.RelaysHold(voter.NodeId, l.LastIndex);
        }, 60_000, () => "every learner at the leader's last index, holding its entry there, and every relay holding it too; not holding it: " +
            string.Join(", ", c.CurrentLeader() is { } v ? c.Learners.Where(x => !c.HoldsLastOf(x, c.Logs[v.NodeId])).Select(x => $"{x.Id} (last {x.Stream.LastOrDefault().Index} epoch {x.Stream.LastOrDefault().Epoch})") : []));
        var leader = c.CurrentLeader()!;
        ulong last = leader.Leader!.LastIndex;
        c.CheckRelayRetention(c.Logs[leader.NodeId], last);
        c.CheckLearnerStreams(c.Logs[leader.NodeId], last);
        c.CheckEveryDeliveredEntryCommitted();
        if (c.Keyed)
        {
            // Every node installed past its keyed state gets the state from whoever feeds it. It merges that state once
            // it has folded as far, and a relay folds only what it knows final: one still holding a deposed leader's
            // suffix past the leader's last index learns where it ends only when the log grows past it (its feed
            // parent compares there), so the leader publishes that far, as above for learners.
            c.RunUntil(() =>
            {
                if (c.IncompleteKeyedStates().Count == 0) return true;
                if (c.CurrentLeader() is { Leader: { } l } && c.HighestRelayIndex() > l.LastIndex) c.Publish((int)(c.HighestRelayIndex() - l.LastIndex));
                return false;
            }, 60_000,
                () => "every node's keyed state whole; still incomplete: " + string.Join(", ", c.IncompleteKeyedStates()));
        }
        c.CheckKeyedStates();
        return new VoterChaosResult(seed, c.Network.TraceHash, c.Network.Clock.NowMicros / 1000, last, leader.Election.Term,
            c.LeaderTerms, c.Learners.Sum(l => l.Truncations), c.Learners.Sum(l => l.Reconnects), faults, c.SnapshotInstalls, c.LearnerSnapshots, c.KeyedImagesInstalled, c.DeliveredAhead)
        {
            MembershipChanges = c.MembershipChanges,
            ConfigurationsCommitted = c.ConfigurationsCommitted,
        };
    }
}
