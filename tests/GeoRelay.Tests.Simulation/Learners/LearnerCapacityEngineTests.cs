using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Relay;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Learners;

// The relay and member engines admit learners up to max-learners, counting learner connections only, and none while draining.
[TestFixture]
public sealed class LearnerCapacityEngineTests
{
    private const string Yaml = """
        cluster: caps
        leader: ldr
        insecure: true
        datacenters:
          home:
            members: [h1]
          away:
            relays: [p1, p2]
            members: [a1]
        nodes:
          ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
          h1: { dc: home, listen: 127.0.0.1:7011 }
          p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, max-learners: 2 }
          p2: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032 }
          a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, max-learners: 2 }
        """;

    private static readonly TopologyConfig Topology = TopologyLoader.Parse(Yaml, "caps.yaml").GetConfigOrThrow();
    private static readonly Hello Learner = Hello.ForThisBuild("learner", NodeKind.Learner, 0, "", 0);

    private static PeerInfo LearnerPeer(string id) => new(id, NodeKind.Learner, 0, PortKind.Learner);

    private static void AssertFull(CodecException? refused, CodecError code, string node)
    {
        Assert.That(refused, Is.Not.Null, $"{node} should refuse");
        Assert.That(refused!.Reason, Is.EqualTo(code));
        Assert.That(refused.Detail, Does.StartWith(node + " is "));
        Assert.That(refused.Detail, Does.Contain("; try "));
    }

    [Test]
    public void AMemberTakesLearnersUpToItsLimitCountingOnlyLearnerConnections()
    {
        using var member = new MemberEngine(Topology, "a1", new MemoryLog(), new SimEnvironment(new SimClock()));
        var relay = Hello.ForThisBuild("p1", NodeKind.Relay, 0, Topology.Cluster, TopologyFingerprint.Of(Topology));

        Assert.That(member.CheckPeer(Learner, PortKind.Learner), Is.Null);
        member.OnConnected(1, LearnerPeer("l1"));
        Assert.That(member.CheckPeer(relay, PortKind.Peer), Is.Null, "its relay is no learner");
        member.OnConnected(2, new PeerInfo("p1", NodeKind.Relay, 0, PortKind.Peer));
        Assert.That(member.CheckPeer(Learner, PortKind.Learner), Is.Null, "one learner of two: the relay's link does not count");
        member.OnConnected(3, LearnerPeer("l2"));

        AssertFull(member.CheckPeer(Learner, PortKind.Learner), CodecError.LimitExceeded, "a1");
        Assert.That(member.CheckPeer(relay, PortKind.Peer), Is.Null, "a full learner port does not shut out peers");

        member.OnDisconnected(1);
        Assert.That(member.CheckPeer(Learner, PortKind.Learner), Is.Null, "room again once a learner left");
        member.BeginDrain();
        AssertFull(member.CheckPeer(Learner, PortKind.Learner), CodecError.Shutdown, "a1");
    }

    [Test]
    public void ARelayRefusesTheLearnerPastItsLimitAndEveryNewOneWhileDraining()
    {
        using var relay = new RelayEngine(Topology, "p1", new MemoryLog(), new SimEnvironment(new SimClock()));
        relay.OnConnected(1, LearnerPeer("l1"));
        // p2 taking its feed here is served by the same fan-out, on the peer port: no learner.
        relay.OnConnected(2, new PeerInfo("p2", NodeKind.Relay, 0, PortKind.Peer));
        Assert.That((relay.Learners.LearnerCount, relay.Learners.LearnerPortConnections), Is.EqualTo((2, 1)));
        Assert.That(relay.CheckPeer(Learner, PortKind.Learner), Is.Null, "one learner of two; the relay feed does not count");
        relay.OnConnected(3, LearnerPeer("l2"));
        var refused = relay.CheckPeer(Learner, PortKind.Learner);
        AssertFull(refused, CodecError.LimitExceeded, "p1");
        Assert.That(refused!.Detail, Does.EndWith("try p2 at 127.0.0.1:7032 or a1 at 127.0.0.1:7042"));

        using var unlimited = new RelayEngine(Topology, "p2", new MemoryLog(), new SimEnvironment(new SimClock()));
        for (int i = 1; i <= 50; i++) unlimited.OnConnected(i, LearnerPeer("l" + i));
        Assert.That(unlimited.Learners.LearnerPortConnections, Is.EqualTo(50));
        unlimited.OnDisconnected(7);
        Assert.That(unlimited.Learners.LearnerPortConnections, Is.EqualTo(49));
        Assert.That(unlimited.CheckPeer(Learner, PortKind.Learner), Is.Null, "no max-learners: no limit");
        unlimited.BeginDrain();
        Assert.That(unlimited.CheckPeer(Learner, PortKind.Learner)?.Detail,
            Is.EqualTo("p2 is draining and takes no new learners; try p1 at 127.0.0.1:7022 or a1 at 127.0.0.1:7042"));
    }
}
