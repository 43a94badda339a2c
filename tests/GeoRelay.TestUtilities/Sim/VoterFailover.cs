namespace GeoRelay.TestUtilities.Sim;

/// <summary>How the leader is lost in a <see cref="VoterFailover"/> run.</summary>
public enum LeaderLoss
{
    /// <summary>Its process is killed: peers see its connections close one link latency later.</summary>
    Killed,
    /// <summary>A firewall drops its packets: nothing closes, peers only stop hearing it.</summary>
    Silenced,
}

/// <summary>One failover in simulated time: from the loss to the first commit of a later term (write unavailability).</summary>
public sealed record VoterFailoverResult(int Seed, LeaderLoss Loss, string Lost, string NewLeader, ulong Term, long ElectedMicros, long CommittedMicros);

/// <summary>
/// Write unavailability in the simulation (virtual time, so the same on any machine): the three-region sample with its
/// WAN delays (40-100 ms one way) and the default <c>election-timeout: 1s</c>; the leader is lost while entries are
/// published every 10 ms, and the run steps until a new leader commits an entry of its own term. Invariants hold
/// throughout, as in every <see cref="VoterCluster"/> run.
/// </summary>
public static class VoterFailover
{
    public static VoterFailoverResult Run(int seed, LeaderLoss loss)
    {
        var c = new VoterCluster(seed);
        var random = new Random(seed ^ 0xFA11);
        c.RunUntil(() => c.CurrentLeader() is not null, 30_000, "a first leader");
        // Then a while of steady publishing, over however many leader changes the start brings (failback included).
        int warm = random.Next(3_000, 6_000);
        for (int ms = 0; ms < warm; ms++)
        {
            if (ms % 10 == 0) c.Publish(1);
            c.Step();
        }
        // Not in the middle of a handover (failback to the preferred leader), which is a leader change of its own.
        c.RunUntil(() => c.CurrentLeader() is { Election.TransferTarget: null }, 30_000, "a leader after the warm-up");
        var lost = c.CurrentLeader()!.NodeId;
        long start = c.Network.Clock.NowMicros;
        if (loss == LeaderLoss.Killed) c.Kill(lost);
        else foreach (var other in c.Topology.Nodes.Keys) if (other != lost) c.Network.Silence(lost, other);
        long elected = -1;
        for (int ms = 0; ms < 30_000; ms++)
        {
            if (ms % 10 == 0) c.Publish(1);
            c.Step();
            if (c.CurrentLeader() is not { } leader || leader.NodeId == lost) continue;
            if (elected < 0) elected = c.Network.Clock.NowMicros - start;
            // Committed in its own term: the entry at its commit index is of its term.
            if (leader.LastLed is { } led && led.Term == leader.Election.Term && c.Logs[leader.NodeId].TryGet(led.Commit, out var entry) && entry.Epoch == led.Term)
                return new VoterFailoverResult(seed, loss, lost, leader.NodeId, led.Term, elected, c.Network.Clock.NowMicros - start);
        }
        throw c.Violation($"no new leader committed within 30 s of {lost} being {loss.ToString().ToLowerInvariant()}");
    }
}
