using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;
using GeoRelay.Engines;
using GeoRelay.Relay;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Engines;

/// <summary>
/// The relay's own count of the leader's quorum, frame by frame: 4 members (a commit needs 3 of their acks and the
/// leader), two at home, two behind the relay. What its learners may have is <see cref="LearnerFanout.Head"/>; the
/// leader's commit index in these batches stays 0, so everything released here was counted by the relay.
/// </summary>
[TestFixture]
public sealed class RelayQuorumTests
{
    private const string Yaml = """
        cluster: quorum
        leader: ldr
        insecure: true
        datacenters:
          home:
            members: [h1, h2]
          away:
            relays: [p1]
            members: [a1, a2]
        nodes:
          ldr: { dc: home, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }
          h1: { dc: home, listen: 127.0.0.1:7011 }
          h2: { dc: home, listen: 127.0.0.1:7021 }
          p1: { dc: away, listen: 127.0.0.1:7031, learners: 127.0.0.1:7032 }
          a1: { dc: away, listen: 127.0.0.1:7041 }
          a2: { dc: away, listen: 127.0.0.1:7051 }
        """;

    private static readonly TopologyConfig Topology = TopologyLoader.Parse(Yaml, "quorum.yaml").GetConfigOrThrow();
    private const int Leader = 1, A1 = 2, A2 = 3;

    private sealed class Relay
    {
        public readonly RelayEngine Engine = new(Topology, "p1", new MemoryLog(), new SimEnvironment(new SimClock()));
        private DeltaState _toRelay;

        public Relay(ulong epoch)
        {
            Engine.OnConnected(Leader, new PeerInfo("ldr", NodeKind.Leader, epoch, PortKind.Peer, Hello.ForThisBuild("ldr", NodeKind.Leader, epoch, "", 0).Capabilities));
            Engine.OnConnected(A1, new PeerInfo("a1", NodeKind.Member, epoch, PortKind.Outbound));
            Engine.OnConnected(A2, new PeerInfo("a2", NodeKind.Member, epoch, PortKind.Outbound));
        }

        /// <summary>A batch from the leader of <paramref name="epoch"/> with entries from <paramref name="first"/> of the given epochs, commit 0.</summary>
        public void Batch(ulong epoch, ulong first, ulong[] entryEpochs, ulong[] progress)
        {
            var records = new ArrayBufferWriter<byte>();
            foreach (var e in entryEpochs) EntryRecord.Write(records, 0, e, 1, "k"u8, "v"u8);
            var payload = new ArrayBufferWriter<byte>();
            BatchFrame.WriteHeader(payload, ref _toRelay, epoch, 0, 1, [], first, (ulong)entryEpochs.Length, [0], progress);
            GenericMuxEncoder.Encode(payload, [records.WrittenMemory]);
            Engine.OnFrame(Leader, new Frame(FrameType.Batch, FrameFlags.None, new ReadOnlySequence<byte>(payload.WrittenMemory)));
        }

        public void Ack(int member, ulong epoch, ulong durable, ulong durableEpoch)
        {
            var payload = new ArrayBufferWriter<byte>();
            new Ack(epoch, durable, durable, durableEpoch).Write(payload);
            Engine.OnFrame(member, new Frame(FrameType.Ack, FrameFlags.None, new ReadOnlySequence<byte>(payload.WrittenMemory)));
        }

        public ulong Released => Engine.Learners.Head;
    }

    [Test]
    public void ItsMembersAcksCompleteTheQuorumWithTheLeadersProgress()
    {
        var r = new Relay(epoch: 2);
        r.Batch(2, 1, [2, 2, 2], progress: [3, 3, 0]); // the leader and h1 hold 3
        r.Ack(A1, 2, 3, 2);
        Assert.That(r.Released, Is.EqualTo(0UL), "the leader, h1 and a1: one member short");
        r.Ack(A2, 2, 3, 2);
        Assert.That(r.Released, Is.EqualTo(3UL), "the leader, h1, a1 and a2");
    }

    [Test]
    public void AnAckForADeposedLeadersEntryDoesNotCount()
    {
        var r = new Relay(epoch: 3);
        r.Batch(3, 1, [3, 3], progress: [2, 2, 0]);
        r.Ack(A1, 3, 2, 2); // a1 holds another entry at 2, of the deposed epoch 2
        r.Ack(A2, 3, 2, 3);
        Assert.That(r.Released, Is.EqualTo(0UL), "a1's log is not the leader's at 2");
        r.Ack(A1, 3, 2, 3); // rewritten by the leader
        Assert.That(r.Released, Is.EqualTo(2UL));
    }

    [Test]
    public void AnOlderEpochsEntryOnAQuorumIsReleasedOnlyWithOneOfTheLeadersOwn()
    {
        var r = new Relay(epoch: 3);
        r.Batch(3, 1, [2, 2], progress: [2, 2, 2]);
        r.Ack(A1, 3, 2, 2);
        r.Ack(A2, 3, 2, 2);
        Assert.That(r.Released, Is.EqualTo(0UL), "entries of epoch 2 on every voter, none yet of epoch 3 (Raft §5.4.2)");
        r.Batch(3, 3, [3], progress: [3, 3, 3]); // the new leader's no-op
        r.Ack(A1, 3, 3, 3);
        r.Ack(A2, 3, 3, 3);
        Assert.That(r.Released, Is.EqualTo(3UL), "with it, every entry before it");
    }

    [Test]
    public void ANewLeadersConnectionEndsTheCountWithTheOldLeadersProgress()
    {
        var r = new Relay(epoch: 2);
        r.Batch(2, 1, [2, 2], progress: [2, 2, 0]);
        r.Ack(A1, 2, 1, 2);
        r.Engine.OnConnected(4, new PeerInfo("ldr", NodeKind.Leader, 3, PortKind.Peer, Hello.ForThisBuild("ldr", NodeKind.Leader, 3, "", 0).Capabilities));
        r.Ack(A1, 3, 2, 2);
        r.Ack(A2, 3, 2, 2);
        Assert.That(r.Released, Is.EqualTo(0UL), "the leader of term 3 may rewrite entry 2; nothing counts until its own batch");
    }

    [Test]
    public void NothingCountsOnceAMemberHasHeardOfANewerTerm()
    {
        var r = new Relay(epoch: 2);
        r.Batch(2, 1, [2, 2], progress: [2, 2, 0]);
        r.Ack(A1, 3, 2, 2); // a1 follows a leader of term 3 now: the upstream is deposed
        r.Ack(A2, 2, 2, 2);
        Assert.That(r.Released, Is.EqualTo(0UL));
    }
}
