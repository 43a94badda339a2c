using GeoRelay.Engines;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.MembershipTestFiles;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// `voter: false`: a member that takes the log but neither votes, leads nor counts toward the quorum.
[TestFixture]
public sealed class MembershipNonVoterTests
{
    [Test]
    public void ANonVoterIsAMemberButNotAVoter()
    {
        var config = Valid(WithNonVoter);
        Assert.Multiple(() =>
        {
            Assert.That(config.Nodes["a3"].Voter, Is.False);
            Assert.That(config.Nodes["a3"].Role, Is.EqualTo(NodeRole.Member));
            Assert.That(config.Nodes["a2"].Voter, Is.True, "voter defaults to true");
            Assert.That(config.Voters, Is.EqualTo(new[] { "ldr", "h1", "h2", "a1", "a2" }));
            Assert.That(config.IsVoter("a3"), Is.False);
            Assert.That(config.CanLead("a3"), Is.False, "it has a publish address, but a non-voter never leads");
            Assert.That(config.MemberCount, Is.EqualTo(5));
            Assert.That(config.VotingMemberCount, Is.EqualTo(4));
            Assert.That(config.AllMembers.Select(m => m.Id), Is.EqualTo(new[] { "h1", "h2", "a1", "a2", "a3" }));
            Assert.That(config.RequiredAcks, Is.EqualTo(3), "a majority of the 4 voting members, not of all 5");
        });
    }

    [Test]
    public void ANonVoterCannotLeadAView()
    {
        var config = Valid(WithNonVoter);
        Assert.That(() => config.LedBy("a3"), Throws.ArgumentException.With.Message.Contains("not a voter"));
        var view = config.LedBy("a1");
        Assert.Multiple(() =>
        {
            Assert.That(view.Voters, Is.EquivalentTo(config.Voters));
            Assert.That(view.RequiredAcks, Is.EqualTo(config.RequiredAcks));
            Assert.That(view.IsVoter("a3"), Is.False);
        });
    }

    [Test]
    public void ARelayCannotBeANonVoter() =>
        AssertOnlyProblem(WithNonVoter.Replace("feed-from: [p1] }", "feed-from: [p1], voter: false }"), 16, 94,
            "node 'p2' is a relay; only members can be non-voters");

    [Test]
    public void TheLeaderCannotBeANonVoter() =>
        AssertOnlyProblem(WithNonVoter.Replace("listen: 127.0.0.1:7001 }", "listen: 127.0.0.1:7001, voter: false }"), 12, 76,
            "node 'ldr' is a leader; only members can be non-voters");

    [Test]
    public void AFixedQuorumCountsOnlyVotingMembers() =>
        AssertOnlyProblem(WithNonVoter.Replace("leader: ldr", "leader: ldr\nquorum: 5"), 3, 9,
            "quorum 5 is larger than the 4 voting members of the cluster (1 of its 5 members have voter: false)");

    [Test]
    public void AQuorumOfAllVotingMembersIsFine() =>
        Assert.That(Valid(WithNonVoter.Replace("leader: ldr", "leader: ldr\nquorum: 4")).RequiredAcks, Is.EqualTo(4));

    [Test]
    public void SomeMemberMustVote()
    {
        var yaml = WithNonVoter.Replace("7011 }", "7011, voter: false }").Replace("7021 }", "7021, voter: false }")
            .Replace("7121 }", "7121, voter: false }").Replace("7131 }", "7131, voter: false }");
        var problems = Problems(yaml);
        Assert.That(problems, Has.Count.EqualTo(1), string.Join("\n", problems));
        Assert.That(problems[0].Message, Does.Contain("every member has voter: false; at least one member must vote"));
    }

    [Test]
    public void ANonVoterCannotBeALeaderCandidate() =>
        AssertOnlyProblem(WithNonVoter.Replace("leader: ldr", "leader: ldr\nleader-candidates: [ldr, a3]"), 3, 26,
            "leader-candidates: 'a3' is a non-voting member (voter: false); only voters may lead");

    [Test]
    public void VoterMustBeABoolean() =>
        AssertOnlyProblem(WithNonVoter.Replace("voter: false", "voter: maybe"), 19, 76, "node 'a3' voter must be true or false, not 'maybe'");

    [Test]
    public void VoterTrueIsTheSameAsNoVoterKey()
    {
        var plain = Valid(WithNonVoter.Replace(", voter: false", ""));
        var explicitTrue = Valid(WithNonVoter.Replace("voter: false", "voter: true"));
        Assert.That(TopologyFingerprint.Of(explicitTrue), Is.EqualTo(TopologyFingerprint.Of(plain)));
        Assert.That(explicitTrue.VotingMemberCount, Is.EqualTo(5));
    }

    [Test]
    public void ANonVoterChangesTheFingerprint()
    {
        var plain = Valid(WithNonVoter.Replace(", voter: false", ""));
        Assert.That(TopologyFingerprint.Of(Valid(WithNonVoter)), Is.Not.EqualTo(TopologyFingerprint.Of(plain)),
            "nodes that disagree on who votes must refuse each other");
    }

    [Test]
    public void ThePlanCountsVotingMembersAndNamesTheNonVoters()
    {
        var config = Valid(WithNonVoter);
        string plan = PlanPrinter.Format(config, RoutePlanner.Plan(config, _ => true));
        Assert.That(plan, Does.Contain("quorum    majority: 3 of 4 member acks commit an entry (1 non-voting member)\n"));
        Assert.That(plan, Does.Contain("a2 127.0.0.1:7131, a3 127.0.0.1:7141 (non-voter)\n"));
    }
}
