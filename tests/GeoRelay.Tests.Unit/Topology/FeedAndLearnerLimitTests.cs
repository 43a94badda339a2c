using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// feed-from (second-tier relays), max-learners and failback-after: what the loader takes, and what it reports where.
// Line numbers refer to TopologyTestFiles.Small (p1 on line 12, p2 on 13, a1 on 14, a2 on 15).
[TestFixture]
public sealed class FeedAndLearnerLimitTests
{
    private const string P2 = "  p2: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032, ";
    // Column of the first character after P2 (1-based), where each test's extra key starts.
    private const int AfterP2 = 69;

    private static string P2With(string extra) => SmallWith("p2:", P2 + extra + " }");

    [Test]
    public void FeedFromASameDatacenterRelayMakesASecondTierRelay()
    {
        var config = Valid(P2With("feed-from: [p1]"));
        Assert.Multiple(() =>
        {
            Assert.That(config.Nodes["p2"].FeedFrom, Is.EqualTo(new[] { "p1" }));
            Assert.That(config.Nodes["p2"].IsFirstTier, Is.False);
            Assert.That(config.Nodes["p1"].FeedFrom, Is.Empty);
            Assert.That(config.Nodes["p1"].IsFirstTier, Is.True);
        });
    }

    [Test]
    public void TheLeaderNeverRoutesToASecondTierRelayButItsLearnersAreOffered()
    {
        var config = Valid(P2With("feed-from: [p1]"));
        var away = RoutePlanner.Plan(config, id => id != "p1").Single(r => r.Datacenter == "away");
        Assert.Multiple(() =>
        {
            Assert.That(away.Kind, Is.EqualTo(RouteKind.Direct), "p1 is down and p2 is fed by relays, not the leader");
            Assert.That(away.LearnerEndpoints, Does.Contain(new NodeEndpoint("127.0.0.1", 7032)));
        });
    }

    [Test]
    public void CheckConfigShowsASecondTierRelayAndWhatFeedsIt()
    {
        var config = Valid(P2With("feed-from: [p1]"));
        string text = PlanPrinter.Format(config, RoutePlanner.Plan(config, _ => true));
        Assert.That(text, Does.Contain("relays   1. p1 127.0.0.1:7021 (active), 2. p2 127.0.0.1:7031 (tier 2, feeds from p1)\n"));
    }

    [Test]
    public void FeedFromNamingItself() =>
        AssertOnlyProblem(P2With("feed-from: [p2]"), 13, AfterP2 + 12, "node 'p2' feed-from names itself");

    [Test]
    public void FeedFromNamingAnUnknownNodeSuggestsTheClosest() =>
        AssertOnlyProblem(P2With("feed-from: [p0]"), 13, AfterP2 + 12, "node 'p2' feed-from: 'p0' is not a node; did you mean 'p1'?");

    [Test]
    public void FeedFromNamingAMember() =>
        AssertOnlyProblem(P2With("feed-from: [a1]"), 13, AfterP2 + 12,
            "node 'p2' feed-from: 'a1' is not a relay of datacenter 'away'; a relay feeds from relays of its own datacenter");

    [Test]
    public void FeedFromNamingARelayOfAnotherDatacenter()
    {
        string yaml = P2With("feed-from: [q1]")
            .Replace("    members: [a1, a2]", "    members: [a1, a2]\n  far:\n    relays: [q1]\n    members: [f1]")
            + "\n  q1: { dc: far, listen: 127.0.0.1:7061 }\n  f1: { dc: far, listen: 127.0.0.1:7071 }";
        // Three lines were added above the nodes: p2 is on line 16.
        AssertOnlyProblem(yaml, 16, AfterP2 + 12, "node 'p2' feed-from: 'q1' is not a relay of datacenter 'away'");
    }

    [Test]
    public void FeedFromListingARelayTwice() =>
        AssertOnlyProblem(P2With("feed-from: [p1, p1]"), 13, AfterP2 + 16, "node 'p2' feed-from lists 'p1' twice");

    [Test]
    public void FeedFromOnAMember() =>
        AssertOnlyProblem(SmallWith("a1:", "  a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, feed-from: [p1] }"), 14, 80,
            "node 'a1' is a member; only relays take feed-from (members are fed by the leader's route)");

    [Test]
    public void FeedFromCycleIsReportedOnceAndNamed()
    {
        string yaml = P2With("feed-from: [p3]").Replace("relays: [p1, p2]", "relays: [p1, p2, p3]")
            + "\n  p3: { dc: away, listen: 127.0.0.1:7061, feed-from: [p2] }";
        AssertOnlyProblem(yaml, 13, AfterP2 + 11,
            "feed-from forms a cycle: p2 -> p3 -> p2; at least one relay of the cycle must take its feed from the leader (no feed-from)");
    }

    [Test]
    public void AChainOfTiersIsNoCycle()
    {
        string yaml = P2With("feed-from: [p1]").Replace("relays: [p1, p2]", "relays: [p1, p2, p3]")
            + "\n  p3: { dc: away, listen: 127.0.0.1:7061, feed-from: [p2, p1] }";
        Assert.That(Valid(yaml).Nodes["p3"].FeedFrom, Is.EqualTo(new[] { "p2", "p1" }));
    }

    [Test]
    public void MaxLearnersOnANodeAndInDefaults()
    {
        var config = Valid(P2With("max-learners: 2").Replace("leader: ldr", "leader: ldr\ndefaults:\n  max-learners: 500"));
        Assert.Multiple(() =>
        {
            Assert.That(config.Nodes["p2"].MaxLearners, Is.EqualTo(2));
            Assert.That(config.Nodes["p1"].MaxLearners, Is.Null);
            Assert.That(config.Defaults.MaxLearners, Is.EqualTo(500));
            Assert.That(Valid(Small).Defaults.MaxLearners, Is.Null, "no limit unless the file sets one");
        });
    }

    [TestCase("0")]
    [TestCase("-1")]
    [TestCase("1.5")]
    [TestCase("two")]
    [TestCase("99999999999")]
    public void MaxLearnersMustBeAPositiveWholeNumber(string value)
    {
        AssertOnlyProblem(P2With("max-learners: " + value), 13, AfterP2 + 14,
            $"node 'p2' max-learners must be a whole number from 1 to {int.MaxValue}, not '{value}'");
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  max-learners: " + value), 4, 17,
            $"defaults.max-learners must be a whole number from 1 to {int.MaxValue}, not '{value}'");
    }

    [Test]
    public void MaxLearnersOnANodeWithoutALearnersAddress() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051, max-learners: 5 }"), 15, 57,
            "node 'a2' has max-learners but no 'learners' address; it serves no learners");

    [Test]
    public void FailbackAfterIsADuration()
    {
        var config = Valid(SmallWith("leader:", "leader: ldr\ndefaults:\n  failback-after: 2m"));
        Assert.Multiple(() =>
        {
            Assert.That(config.Defaults.FailbackAfter, Is.EqualTo(TimeSpan.FromMinutes(2)));
            Assert.That(Valid(Small).Defaults.FailbackAfter, Is.EqualTo(TimeSpan.FromSeconds(10)), "the default");
        });
    }

    [TestCase("1.5s", "defaults.failback-after: '1.5s' is not a duration")]
    [TestCase("soon", "defaults.failback-after: 'soon' is not a duration")]
    [TestCase("0s", "defaults.failback-after must be longer than 0")]
    public void FailbackAfterThatIsNotADuration(string value, string message) =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  failback-after: " + value), 4, 19, message);

    [Test]
    public void SegmentFormatIsOneOrTwo()
    {
        Assert.That(Valid(SmallWith("leader:", "leader: ldr\ndefaults:\n  segment-format: 1")).Defaults.SegmentFormat, Is.EqualTo(1));
        Assert.That(Valid(Small).Defaults.SegmentFormat, Is.EqualTo(2), "the default");
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  segment-format: 3"), 4, 19,
            "defaults.segment-format must be 1 (headerless, while a rollback to an older build is possible) or 2, not '3'");
    }
}
