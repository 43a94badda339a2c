using GeoRelay.Engines;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// The topology's election settings and the view of the cluster while a voter other than the preferred leader leads.
[TestFixture]
public sealed class ElectionTopologyTests
{
    [Test]
    public void VotersAreThePreferredLeaderAndEveryMember()
    {
        var config = Valid(Small);
        Assert.That(config.Voters, Is.EqualTo(new[] { "ldr", "h1", "a1", "a2" }));
        Assert.That(config.IsVoter("p1"), Is.False);
        Assert.That(config.CanLead("ldr"), Is.True);
        Assert.That(config.CanLead("a2"), Is.False, "a voter without a publish address could take no writes");
        Assert.That(config.CanLead("p1"), Is.False);
        Assert.That(config.Defaults.ElectionTimeout, Is.EqualTo(TimeSpan.FromSeconds(1)));
    }

    [Test]
    public void AMemberLeadingTakesTheLeadersRoleAndTheOldLeaderBecomesAMemberOfItsDatacenter()
    {
        var file = Valid(Small);
        var view = file.LedBy("a1");
        Assert.Multiple(() =>
        {
            Assert.That(view.LeaderId, Is.EqualTo("a1"));
            Assert.That(view.PreferredLeaderId, Is.EqualTo("ldr"));
            Assert.That(view.Nodes["a1"].Role, Is.EqualTo(NodeRole.Leader));
            Assert.That(view.Nodes["ldr"].Role, Is.EqualTo(NodeRole.Member));
            Assert.That(view.GetDatacenter("home").Members, Is.EqualTo(new[] { "h1", "ldr" }));
            Assert.That(view.GetDatacenter("away").Members, Is.EqualTo(new[] { "a2" }));
            Assert.That(view.LeaderDatacenter.Name, Is.EqualTo("away"));
            Assert.That(view.Datacenters.Select(d => d.IsLeaderDatacenter), Is.EqualTo(new[] { false, true }));
            Assert.That(view.Voters, Is.EquivalentTo(file.Voters));
            Assert.That(view.MemberCount, Is.EqualTo(file.MemberCount));
            Assert.That(file.LeaderId, Is.EqualTo("ldr"), "the file's view is unchanged");
        });
    }

    [Test]
    public void EveryPathToTheSameLeaderGivesTheSameViewAndTheSameFingerprint()
    {
        var file = Valid(Small);
        var direct = file.LedBy("a2");
        var viaOthers = file.LedBy("a1").LedBy("h1").LedBy("a2");
        Assert.That(viaOthers.GetDatacenter("away").Members, Is.EqualTo(direct.GetDatacenter("away").Members));
        Assert.That(viaOthers.GetDatacenter("home").Members, Is.EqualTo(direct.GetDatacenter("home").Members));
        Assert.That(file.LedBy("a1").LedBy("ldr"), Is.SameAs(file));
        Assert.That(TopologyFingerprint.Of(direct), Is.EqualTo(TopologyFingerprint.Of(file)));
    }

    [Test]
    public void ARelayCannotLead() =>
        Assert.That(() => Valid(Small).LedBy("p1"), Throws.ArgumentException.With.Message.Contains("'p1' is not a voter"));

    [Test]
    public void AMemberWithAPublishAddressMayLeadByDefault()
    {
        var config = Valid(WithPublishingMembers);
        Assert.That(config.Defaults.Elections, Is.True, "elections are the default");
        Assert.That(config.Voters.Where(config.CanLead), Is.EqualTo(new[] { "ldr", "a1", "a2" }));
    }

    [Test]
    public void ACandidateWithoutAPublishAddressIsNamed()
    {
        var result = TopologyLoader.Parse(Small + "\nleader-candidates: [ldr, h1]", "t.yaml");
        Assert.That(result.Problems.Select(p => p.ToString()),
            Has.Some.Contains("leader-candidates: 'h1' has no publish address"));
    }

    private static readonly string WithPublishingMembers = SmallWith("a1:", "  a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, publish: 127.0.0.1:7040 }")
        .Replace("  a2: { dc: away, listen: 127.0.0.1:7051 }", "  a2: { dc: away, listen: 127.0.0.1:7051, publish: 127.0.0.1:7050 }", StringComparison.Ordinal);

    [Test]
    public void CandidatesLimitWhoMayLead()
    {
        var config = Valid(WithPublishingMembers + "\nleader-candidates: [ldr, a1]");
        Assert.That(config.CanLead("a1"), Is.True);
        Assert.That(config.CanLead("a2"), Is.False, "a voter, but not a candidate");
        Assert.That(config.Voters, Does.Contain("a2"));
        Assert.That(TopologyFingerprint.Of(config), Is.Not.EqualTo(TopologyFingerprint.Of(Valid(WithPublishingMembers))));
    }

    [Test]
    public void ACandidateMustBeAVoter() =>
        AssertOnlyProblem(Small + "\nleader-candidates: [ldr, p1]", 16, 26, "leader-candidates: 'p1' is a relay; only the leader and members vote and may lead");

    [Test]
    public void AnUnknownCandidateIsNamedWithASuggestion() =>
        AssertOnlyProblem(Small + "\nleader-candidates: [ldr, a3]", 16, 26, "leader-candidates: 'a3' is not a node; did you mean");

    [Test]
    public void CandidatesMustIncludeThePreferredLeader() =>
        AssertOnlyProblem(WithPublishingMembers + "\nleader-candidates: [a1, a2]", 16, 21, "leader-candidates must include the preferred leader 'ldr'");

    [Test]
    public void AnEmptyCandidateListIsRefused() =>
        AssertOnlyProblem(Small + "\nleader-candidates: []", 16, 20, "leader-candidates is empty");

    [Test]
    public void ElectionTimeoutReadsLikeEveryDuration()
    {
        var config = Valid(Small + "\ndefaults:\n  election-timeout: 3");
        Assert.That(config.Defaults.ElectionTimeout, Is.EqualTo(TimeSpan.FromSeconds(3)));
    }

    [Test]
    public void ElectionTimeoutMustCoverTwoHeartbeats() =>
        AssertOnlyProblem(Small + "\ndefaults:\n  heartbeat: 100ms\n  election-timeout: 150ms", 18, 21,
            "defaults.election-timeout (150ms) must be at least twice defaults.heartbeat (100ms)");
}
