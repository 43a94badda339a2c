using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.MembershipTestFiles;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// MembershipDiff: one line per difference, in the order an operator reviews them.
[TestFixture]
public sealed class MembershipDiffTests
{
    private static Membership Current() => Membership.Of(Valid(WithNonVoter));

    private static Membership Rewritten(Func<string, string> edit) =>
        Membership.Of(Valid(edit(WithNonVoter)));

    [Test]
    public void EqualMembershipsHaveNoChanges() =>
        Assert.That(MembershipDiff.Between(Current(), Current()), Is.Empty);

    [Test]
    public void EachKindOfChangeReadsAsOneLine()
    {
        var desired = Rewritten(y => y
            .Replace("leader: ldr", "leader: h1\nleader-candidates: [h1, a1]")
            .Replace("members: [h1, h2]", "members: [h2, ldr]")
            .Replace("relays: [p1, p2]", "relays: [p2]")
            .Replace("members: [a1, a2, a3]", "members: [a2, a1, a3, a4]\n  far:\n    relays: []\n    members: [f1]")
            .Replace("  p1:  { dc: away, listen: 127.0.0.1:7101, learners: 127.0.0.1:7102 }\n", "")
            .Replace("learners: 127.0.0.1:7112, feed-from: [p1] }", "learners: 127.0.0.1:7112, max-learners: 50 }")
            .Replace("a1:  { dc: away, publish: 127.0.0.1:7120, listen: 127.0.0.1:7121 }", "a1:  { dc: away, publish: 127.0.0.1:7120, listen: 127.0.0.1:7321 }")
            .Replace("a2:  { dc: away, listen: 127.0.0.1:7131 }", "a2:  { dc: away, listen: 127.0.0.1:7131, voter: false }")
            .Replace("listen: 127.0.0.1:7141, voter: false }", "listen: 127.0.0.1:7141 }\n  a4:  { dc: away, listen: 127.0.0.1:7151, voter: false }\n  f1:  { dc: far, listen: 127.0.0.1:7161 }"));
        Assert.That(MembershipDiff.Between(Current(), desired).Select(c => c.ToString()), Is.EqualTo(new[]
        {
            "+ datacenter far",
            "+ member a4 in away (non-voter)",
            "+ member f1 in far",
            "~ p2 feed-from p1 -> none",
            "~ p2 max-learners default -> 50",
            "v demote a2 to non-voter",
            "~ a1 listen 127.0.0.1:7121 -> 127.0.0.1:7321",
            "^ promote a3 to voter",
            "~ away members a1, a2, a3 -> a2, a1, a3",
            "- relay p1 from away",
            "~ leader ldr -> h1",
            "~ leader-candidates (every voter) -> h1, a1",
        }));
    }

    [Test]
    public void ChangesCarryTheirKindNodeAndDatacenter()
    {
        var desired = Rewritten(y => y.Replace("relays: [p1, p2]", "relays: [p2, p1]").Replace("listen: 127.0.0.1:7021 }", "listen: 127.0.0.1:7021, admin: 127.0.0.1:9000 }"));
        var changes = MembershipDiff.Between(Current(), desired);
        Assert.That(changes.Select(c => (c.Kind, c.Node, c.Datacenter, c.Key, c.Old, c.New)), Is.EqualTo(new[]
        {
            (MembershipChangeKind.EndpointChanged, (string?)"h2", (string?)"home", (string?)"admin", (string?)"none", (string?)"127.0.0.1:9000"),
            (MembershipChangeKind.RelayOrderChanged, null, "away", null, "p1, p2", "p2, p1"),
        }));
    }

    [Test]
    public void RemovalsNameTheRoleAndWhereFrom()
    {
        var current = Current();
        var without = new Membership("ldr", null, [current.Datacenters[0]], current.Nodes.Values.Where(n => n.Datacenter == "home"));
        Assert.That(MembershipDiff.Between(current, without).Select(c => c.ToString()), Is.EqualTo(new[]
        {
            "- relay p1 from away", "- relay p2 from away", "- member a1 from away", "- member a2 from away", "- member a3 from away", "- datacenter away",
        }));
    }

    [Test]
    public void AddingOrRemovingAMemberIsNotAnOrderChange()
    {
        var desired = Rewritten(y => y.Replace("members: [a1, a2, a3]", "members: [a1, a3]").Replace("  a2:  { dc: away, listen: 127.0.0.1:7131 }\n", ""));
        Assert.That(MembershipDiff.Between(Current(), desired).Select(c => c.Kind), Is.EqualTo(new[] { MembershipChangeKind.NodeRemoved }));
    }
}
