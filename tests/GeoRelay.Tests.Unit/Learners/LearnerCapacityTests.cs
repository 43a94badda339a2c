using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Relay.Learners;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Learners;

// A node at its max-learners, or draining, refuses the next learner and names others of its datacenter.
[TestFixture]
public sealed class LearnerCapacityTests
{
    // away: relays p1 (limit 2), p2, p3, p9 (no learner port); members a1, a2 (no learner port), a3. home is another datacenter.
    private const string Yaml = """
        cluster: test
        leader: ldr
        datacenters:
          home:
            members: [h1]
          away:
            relays: [p1, p2, p3, p9]
            members: [a1, a2, a3]
        nodes:
          ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
          h1: { dc: home, listen: 127.0.0.1:7011, learners: 127.0.0.1:7012 }
          p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, max-learners: 2 }
          p2: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032 }
          p3: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042 }
          p9: { dc: away, listen: 127.0.0.1:7091 }
          a1: { dc: away, listen: 127.0.0.1:7051, learners: 127.0.0.1:7052 }
          a2: { dc: away, listen: 127.0.0.1:7061 }
          a3: { dc: away, listen: 127.0.0.1:7071, learners: 127.0.0.1:7072 }
        """;

    private static CodecException? Check(TopologyConfig topology, string node, int learners, bool draining, ref int refusals) =>
        LearnerCapacity.Check(topology, node, learners, draining, ref refusals);

    [Test]
    public void BelowTheLimitEveryLearnerIsTaken()
    {
        var topology = Valid(Yaml);
        int refusals = 0;
        Assert.Multiple(() =>
        {
            Assert.That(Check(topology, "p1", 0, false, ref refusals), Is.Null);
            Assert.That(Check(topology, "p1", 1, false, ref refusals), Is.Null);
            Assert.That(Check(topology, "p2", 100_000, false, ref refusals), Is.Null, "no max-learners: no limit");
            Assert.That(refusals, Is.Zero);
        });
    }

    [Test]
    public void AtTheLimitTheRefusalSaysWhatAndWhereAndNamesTheOtherServersRelaysFirst()
    {
        var topology = Valid(Yaml);
        int refusals = 0;
        var refused = Check(topology, "p1", 2, false, ref refusals);
        Assert.That(refused, Is.Not.Null);
        Assert.That(refused!.Reason, Is.EqualTo(CodecError.LimitExceeded));
        Assert.That(refused.Detail, Is.EqualTo("p1 is full: it serves 2 learners, the limit set by max-learners of node 'p1' in t.yaml; "
            + "try p2 at 127.0.0.1:7032 or p3 at 127.0.0.1:7042 or a1 at 127.0.0.1:7052 or a3 at 127.0.0.1:7072"));
        Assert.That(refusals, Is.EqualTo(1));
    }

    [Test]
    public void TheFirstNodeNamedTurnsWithEachRefusal()
    {
        var topology = Valid(Yaml);
        int refusals = 0;
        var firsts = new List<string>();
        var members = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            var hint = RefusalHint.Addresses(Check(topology, "p1", 2, false, ref refusals)!.Detail);
            firsts.Add(hint[0]);
            members.Add(string.Join(",", hint.Skip(2)));
        }
        Assert.That(firsts, Is.EqualTo(new[] { "127.0.0.1:7032", "127.0.0.1:7042", "127.0.0.1:7032", "127.0.0.1:7042" }));
        Assert.That(members, Is.EqualTo(new[] { "127.0.0.1:7052,127.0.0.1:7072", "127.0.0.1:7072,127.0.0.1:7052",
            "127.0.0.1:7052,127.0.0.1:7072", "127.0.0.1:7072,127.0.0.1:7052" }), "members come after every relay, turning too");
    }

    [Test]
    public void TheNodesOwnLimitOverridesTheDefaultsAndTheDefaultsApplyElsewhere()
    {
        var topology = Valid(Yaml.Replace("leader: ldr", "leader: ldr\ndefaults:\n  max-learners: 1"));
        int refusals = 0;
        Assert.Multiple(() =>
        {
            Assert.That(LearnerCapacity.MaxLearners(topology, "p1"), Is.EqualTo(2));
            Assert.That(LearnerCapacity.MaxLearners(topology, "p2"), Is.EqualTo(1));
            Assert.That(Check(topology, "p1", 1, false, ref refusals), Is.Null);
            Assert.That(Check(topology, "a1", 1, false, ref refusals)?.Detail,
                Does.StartWith("a1 is full: it serves 1 learners, the limit set by defaults.max-learners in t.yaml; try p1 at 127.0.0.1:7022 or p2 at"));
        });
    }

    [Test]
    public void ADrainingNodeRefusesWithShutdownAndTheSameHint()
    {
        var topology = Valid(Yaml);
        int refusals = 0;
        var refused = Check(topology, "p2", 0, true, ref refusals);
        Assert.That(refused?.Reason, Is.EqualTo(CodecError.Shutdown));
        Assert.That(refused!.Detail, Is.EqualTo("p2 is draining and takes no new learners; "
            + "try p1 at 127.0.0.1:7022 or p3 at 127.0.0.1:7042 or a1 at 127.0.0.1:7052 or a3 at 127.0.0.1:7072"));
    }

    [Test]
    public void ANodeAloneInItsDatacenterSaysSo()
    {
        var topology = Valid(Yaml.Replace("h1: { dc: home, listen: 127.0.0.1:7011, learners: 127.0.0.1:7012 }",
            "h1: { dc: home, listen: 127.0.0.1:7011, learners: 127.0.0.1:7012, max-learners: 1 }"));
        int refusals = 0;
        Assert.That(Check(topology, "h1", 1, false, ref refusals)?.Detail,
            Is.EqualTo("h1 is full: it serves 1 learners, the limit set by max-learners of node 'h1' in t.yaml; no other node of datacenter 'home' serves learners"));
    }

    [Test]
    public void TheHintNamesOnlyWholeAddressesWithinWhatAnErrorFrameCarries()
    {
        // Twenty relays with long ids: not all fit in an Error frame's message; those named must be whole.
        var relays = Enumerable.Range(0, 20).Select(i => $"relay-with-a-rather-long-name-{i:D2}").ToList();
        string yaml = $$"""
            cluster: test
            leader: ldr
            datacenters:
              home:
                members: [h1]
              away:
                relays: [p1, {{string.Join(", ", relays)}}]
                members: [a1]
            nodes:
              ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
              h1: { dc: home, listen: 127.0.0.1:7011 }
              p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, max-learners: 2 }
              a1: { dc: away, listen: 127.0.0.1:7051, learners: 127.0.0.1:7052 }
            """ + string.Concat(relays.Select((r, i) => $"\n  {r}: {{ dc: away, listen: 127.0.0.1:{7100 + i}, learners: 127.0.0.1:{7200 + i} }}"));
        var topology = Valid(yaml);
        int refusals = 0;
        string detail = Check(topology, "p1", 2, false, ref refusals)!.Detail;
        var named = RefusalHint.Addresses(detail);
        Assert.Multiple(() =>
        {
            Assert.That(detail.Length, Is.LessThanOrEqualTo(ErrorFrame.MaxMessageLength / 4));
            Assert.That(named, Has.Count.GreaterThanOrEqualTo(2).And.Count.LessThan(20));
            Assert.That(named, Is.EqualTo(Enumerable.Range(0, named.Count).Select(i => $"127.0.0.1:{7200 + i}")));
        });
    }
}
