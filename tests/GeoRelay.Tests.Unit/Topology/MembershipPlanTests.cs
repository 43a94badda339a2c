using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.MembershipTestFiles;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// MembershipPlan on hand-made changes whose steps an operator would read.
[TestFixture]
public sealed class MembershipPlanTests
{
    private static TopologyConfig ThreeRegions() => TopologyLoader.LoadFile(Sample("three-regions.yaml")).GetConfigOrThrow();

    /// <summary>The file's membership with its YAML edited; each edit must find its text.</summary>
    private static Membership Edited(TopologyConfig file, params (string From, string To)[] edits)
    {
        var yaml = Membership.Of(file).ToYaml();
        foreach (var (from, to) in edits)
        {
            Assert.That(yaml, Does.Contain(from));
            yaml = yaml.Replace(from, to);
        }
        return Membership.Of(Valid("cluster: x\ninsecure: true\n" + yaml));
    }

    [Test]
    public void ANewMemberJoinsAsANonVoterAndIsThenPromoted()
    {
        var file = ThreeRegions();
        var target = Edited(file, ("members: [eu-m1, eu-m2, eu-m3]", "members: [eu-m1, eu-m2, eu-m3, eu-m4]"),
            ("\n\n  ap-p1:", "\n  eu-m4: { dc: eu-west, publish: 127.0.0.1:7250, listen: 127.0.0.1:7251 }\n\n  ap-p1:"));
        var steps = MembershipPlan.Steps(file, Membership.Of(file), target, "us-leader");
        Assert.That(steps.Select(s => (s.Kind, s.Description, s.Node)), Is.EqualTo(new[]
        {
            (MembershipStepKind.Change, "add eu-m4 to eu-west as a non-voter", (string?)null),
            (MembershipStepKind.Promote, "promote eu-m4 to voter once it has caught up", "eu-m4"),
        }));
        Assert.That(steps[0].Next!.ApplyTo(file).IsVoter("eu-m4"), Is.False);
        Assert.That(steps[0].Next!.ApplyTo(file).RequiredAcks, Is.EqualTo(5), "the non-voter does not raise the quorum");
        Assert.That(steps[1].Next, Is.EqualTo(target));
    }

    [Test]
    public void TheLeaderIsHandedOnBeforeItIsRemoved()
    {
        var file = ThreeRegions();
        var current = Membership.Of(file);
        var desired = new Membership(current.PreferredLeader, null,
            [.. current.Datacenters.Select(d => d.Name == "eu-west" ? d with { Members = ["eu-m1", "eu-m2"] } : d)],
            current.Nodes.Values.Where(n => n.Id != "eu-m3"));
        var steps = MembershipPlan.Steps(file, Membership.Of(file), desired, "eu-m3");
        Assert.That(steps.Select(s => s.Description), Is.EqualTo(new[]
        {
            "transfer leadership from eu-m3 to us-leader",
            "remove voter eu-m3 from eu-west",
        }));
        Assert.That(steps[0].Kind, Is.EqualTo(MembershipStepKind.TransferLeadership));
        Assert.That(steps[0].Node, Is.EqualTo("us-leader"));
    }

    [Test]
    public void RemovingThePreferredLeaderMakesTheDesiredOneLeadFirst()
    {
        var file = Valid(WithNonVoter);
        var current = Membership.Of(file);
        var desired = new Membership("h1", null,
            [new MembershipDatacenter("home", [], ["h2"]), current.Datacenters[1]], current.Nodes.Values.Where(n => n.Id != "ldr"));
        Assert.That(desired.Problems(file), Is.Empty);
        var steps = MembershipPlan.Steps(file, current, desired, "ldr");
        Assert.That(steps.Select(s => s.Description), Is.EqualTo(new[]
        {
            "make h1 the preferred leader in place of ldr",
            "transfer leadership from ldr to h1",
            "remove voter ldr from home",
        }));
    }

    [Test]
    public void ANodeTakingTheAddressOfOneThatLeavesIsAddedAfterItLeaves()
    {
        var file = Valid(WithNonVoter);
        var current = Membership.Of(file);
        var a2 = current.Nodes["a2"];
        var desired = new Membership("ldr", null,
            [current.Datacenters[0], current.Datacenters[1] with { Members = ["a1", "a3", "a4"] }],
            current.Nodes.Values.Where(n => n.Id != "a2").Append(a2 with { Id = "a4" }));
        var steps = MembershipPlan.Steps(file, current, desired, "ldr");
        Assert.That(steps.Select(s => s.Description), Is.EqualTo(new[]
        {
            "remove voter a2 from away",
            "add a4 to away as a non-voter",
            "promote a4 to voter once it has caught up",
        }));
    }

    [Test]
    public void NewDatacenterComesWithItsRelaysAndFirstMemberAndGoesWithItsLastMember()
    {
        var file = Valid(WithNonVoter);
        var current = Membership.Of(file);
        var desired = new Membership("ldr", null,
            [current.Datacenters[0], new MembershipDatacenter("far", ["f-p1"], ["f-m1", "f-m2"])],
            current.Nodes.Values.Where(n => n.Datacenter == "home").Concat(
            [
                new MembershipNode { Id = "f-p1", Datacenter = "far", Listen = NodeEndpoint.Parse("127.0.0.1:7201") },
                new MembershipNode { Id = "f-m1", Datacenter = "far", Listen = NodeEndpoint.Parse("127.0.0.1:7211") },
                new MembershipNode { Id = "f-m2", Datacenter = "far", Listen = NodeEndpoint.Parse("127.0.0.1:7221") },
            ]));
        var steps = MembershipPlan.Steps(file, current, desired, "ldr");
        Assert.That(steps.Select(s => s.Description), Is.EqualTo(new[]
        {
            "add datacenter far with relays f-p1 and with f-m1 as a non-voter",
            "add f-m2 to far as a non-voter",
            "promote f-m1 to voter once it has caught up",
            "promote f-m2 to voter once it has caught up",
            "remove voter a1 from away",
            "remove voter a2 from away",
            "remove non-voter a3 from away, and datacenter away with it",
        }));
    }

    [Test]
    public void NothingToDoIsNoSteps()
    {
        var file = ThreeRegions();
        Assert.That(MembershipPlan.Steps(file, Membership.Of(file), Membership.Of(file), "us-leader"), Is.Empty);
    }

    [Test]
    public void AnInvalidDesiredMembershipIsRefusedWithItsProblems()
    {
        var file = ThreeRegions();
        var broken = new Membership("us-leader", null, [.. Membership.Of(file).Datacenters.Take(2)], Membership.Of(file).Nodes.Values);
        Assert.That(() => MembershipPlan.Steps(file, Membership.Of(file), broken, "us-leader"),
            Throws.ArgumentException.With.Message.Contains("desired membership has problems").And.Message.Contains("'ap-m1' is listed nowhere"));
    }

    [Test]
    public void ANodeChangingDatacenterIsRefused()
    {
        var file = Valid(WithNonVoter);
        var current = Membership.Of(file);
        var desired = new Membership("ldr", null,
            [current.Datacenters[0] with { Members = ["h1", "h2", "a2"] }, current.Datacenters[1] with { Members = ["a1", "a3"] }],
            current.Nodes.Values.Select(n => n.Id == "a2" ? n with { Datacenter = "home" } : n));
        Assert.That(() => MembershipPlan.Steps(file, current, desired, "ldr"),
            Throws.ArgumentException.With.Message.Contains("~ a2 moves: member of away -> member of home"));
    }

    [Test]
    public void ALeaderThatIsNotAVoterIsRefused()
    {
        var file = Valid(WithNonVoter);
        Assert.That(() => MembershipPlan.Steps(file, Membership.Of(file), Membership.Of(file), "a3"),
            Throws.ArgumentException.With.Message.Contains("'a3' is not a voter"));
    }
}
