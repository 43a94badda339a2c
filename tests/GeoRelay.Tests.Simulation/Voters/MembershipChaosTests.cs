using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Voters;

/// <summary>
/// <see cref="VoterChaos"/> with membership changes interleaved with the faults: the leader promotes, demotes, removes and
/// re-adds members one at a time while voters crash, leaders are cut off or silenced, and relays die. Beside the cluster's
/// invariants (one leader per term, committed entries survive, logs match), every configuration a node acts on is the newest
/// its log holds, its election counts that configuration's voters, and a leader never holds two uncommitted configurations.
/// <c>GEORELAY_MEMBERSHIP_SEEDS</c> sets the number of seeds (default 12; more in the soak); <c>GEORELAY_SEED=N</c> replays one.
/// </summary>
[TestFixture]
public sealed class MembershipChaosTests
{
    private static int Seeds => int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_MEMBERSHIP_SEEDS"), out int n) ? n : 12;

    /// <summary>The first seed (<c>GEORELAY_MEMBERSHIP_FROM</c>, default 1), so a long run can continue where another stopped.</summary>
    private static int From => int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_MEMBERSHIP_FROM"), out int n) ? n : 1;

    private static int? OneSeedAsked =>
        int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_SEED"), out int seed) ? seed : null;

    [Test]
    public void MembershipChangesUnderFaultsKeepTheInvariants()
    {
        var failures = new List<string>();
        int changes = 0, committed = 0, passed = 0;
        IEnumerable<int> seeds = OneSeedAsked is { } one ? [one] : Enumerable.Range(From, Seeds);
        foreach (int seed in seeds)
        {
            try
            {
                var r = VoterChaos.Run(seed, membership: true);
                changes += r.MembershipChanges;
                committed += r.ConfigurationsCommitted;
                passed++;
            }
            catch (InvariantViolationException e) { failures.Add(e.Message); }
            if (failures.Count >= 3) break;
        }
        TestContext.Out.WriteLine($"{passed} of {passed + failures.Count} seeds passed: {changes} membership changes proposed, {committed} configurations seen committed");
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures));
        if (OneSeedAsked is null) Assert.That(committed, Is.GreaterThan(Seeds), "membership changes were proposed and committed across the seeds");
    }

    /// <summary>
    /// Relays number a datacenter's members by position, and a leader sets aside a relay's report whose count is not its
    /// own; so a change that moves members without changing their count (a reorder, or one non-voter swapped for another)
    /// is refused, and the same members in another count are not.
    /// </summary>
    [Test]
    public void AChangeThatMovesMembersWithoutChangingTheirCountIsRefused()
    {
        var c = new VoterCluster(3);
        c.RunUntil(() => c.CurrentLeader() is not null, 20_000, "a leader");
        c.Publish(1);
        c.RunUntil(() => c.CurrentLeader() is { Leader.CommittedOwnEpoch: true }, 20_000, "a leader with an entry of its term committed");
        var leader = c.CurrentLeader()!;
        var m = leader.Memberships.LatestMembership;
        var reordered = new GeoRelay.Topology.Membership(m.PreferredLeader, m.LeaderCandidates,
            m.Datacenters.Select(d => d.Name == "eu-west" ? d with { Members = d.Members.Reverse().ToList() } : d).ToList(), m.Nodes.Values);
        Assert.That(leader.ProposeMembership(reordered, out var refusal), Is.EqualTo(0UL));
        Assert.That(refusal, Does.Contain("eu-west").And.Contain("without changing how many"));
        var demoted = new GeoRelay.Topology.Membership(m.PreferredLeader, m.LeaderCandidates, m.Datacenters,
            m.Nodes.Values.Select(n => n.Id == "eu-m3" ? n with { Voter = false } : n));
        Assert.That(leader.ProposeMembership(demoted, out refusal), Is.GreaterThan(0UL), refusal);
    }
}
