using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Voters;

/// <summary>
/// Write unavailability in simulated time (deterministic, the same on any machine) with the sample's WAN delays and
/// <c>election-timeout: 1s</c>. A killed leader's connections close, so the voters campaign at once in rank order and
/// one round of votes replaces it; a silenced leader is noticed only by the election timeout. These bounds are the
/// protocol's, not this machine's: a real run adds scheduling and disk on top (<c>bench/run failover</c>).
/// </summary>
[TestFixture]
public sealed class VoterFailoverTests
{
    private static int Seeds => int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_FAILOVER_SEEDS"), out int n) ? n : 100;

    [Test]
    public void AKilledLeaderIsReplacedAndWritesCommitWithinOneElectionTimeout() =>
        Check(LeaderLoss.Killed, boundMicros: 1_000_000);

    /// <summary>
    /// Nothing tells the voters: a timeout of silence, then the first candidate in rank order asks (each draws its timeout
    /// in its own slice of [T, 2T), so they do not ask at once and split the vote).
    /// </summary>
    [Test]
    public void ASilencedLeaderIsReplacedAndWritesCommitWithinTwoElectionTimeouts() =>
        Check(LeaderLoss.Silenced, boundMicros: 2_000_000);

    private static void Check(LeaderLoss loss, long boundMicros)
    {
        var results = Enumerable.Range(1, Seeds).Select(seed => VoterFailover.Run(seed, loss)).ToList();
        var committed = results.Select(r => r.CommittedMicros / 1000).Order().ToList();
        TestContext.Out.WriteLine($"{loss}, {results.Count} seeds: first commit of the new term after {committed[0]} ms (min), " +
            $"{committed[committed.Count / 2]} ms (median), {committed[^1]} ms (max)");
        var slow = results.Where(r => r.CommittedMicros > boundMicros).Select(r => $"seed {r.Seed}: {r.CommittedMicros / 1000} ms ({r.NewLeader}, term {r.Term})");
        Assert.That(slow, Is.Empty, $"writes were unavailable longer than {boundMicros / 1000} ms");
    }
}
