using GeoRelay.Engines.Consensus;
using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Voters;

/// <summary>Elections driving the real data path: leaders come and go, writes continue, nothing committed is lost.</summary>
[TestFixture]
public sealed class VoterElectionTests
{
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void AVoterIsElectedAndLeadershipSettlesOnThePreferredLeader(int seed)
    {
        var c = new VoterCluster(seed);
        string preferred = c.Topology.PreferredLeaderId;
        c.RunUntil(() => c.CurrentLeader() is not null, 20_000, "a first leader");
        c.Publish(10);
        c.RunUntil(() => c.CurrentLeader()?.NodeId == preferred && c.CurrentLeader()!.Leader!.CommitIndex >= 10, 60_000, $"leadership on {preferred}");
    }

    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    public void WhenTheLeaderDiesAnotherVoterLeadsAndTheOldLeaderRejoinsAndLeadsAgain(int seed)
    {
        var c = new VoterCluster(seed);
        string preferred = c.Topology.PreferredLeaderId;
        c.RunUntil(() => c.CurrentLeader()?.NodeId == preferred, 60_000, "the preferred leader leading");
        c.Publish(100);
        c.RunUntil(() => c.CurrentLeader()!.Leader!.CommitIndex >= 100, 20_000, "100 entries committed");
        ulong term = c.CurrentLeader()!.Election.Term;

        c.Crash(preferred, tornTail: true);
        c.RunUntil(() => c.CurrentLeader() is { } l && l.NodeId != preferred, 20_000, "a new leader");
        var successor = c.CurrentLeader()!;
        Assert.That(successor.Election.Term, Is.GreaterThan(term));
        c.Publish(50);
        c.RunUntil(() => c.CurrentLeader() is { Leader: { } l } && l.CommitIndex >= l.LastIndex && l.LastIndex >= 151, 30_000, "the successor's entries committed");

        c.Restart(preferred);
        c.RunUntil(() => c.CurrentLeader()?.NodeId == preferred, 60_000, "leadership back on the preferred leader");
        c.Publish(10);
        var back = c.CurrentLeader()!;
        c.RunUntil(() => back.Leader!.CommitIndex >= back.Leader.LastIndex, 20_000, "its new entries committed");
        // Every application entry published was committed once, in order, on the leader's log.
        var entries = VoterCluster.ApplicationPayloads(c.Logs[preferred], back.Leader!.CommitIndex);
        Assert.That(entries, Has.Count.EqualTo(160));
        Assert.That(entries.Distinct().Count(), Is.EqualTo(160));
    }
}
