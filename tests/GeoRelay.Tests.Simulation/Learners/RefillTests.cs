using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Tests.Simulation.Sim;
using GeoRelay.Transport;
using GeoRelay.Engines;
using NUnit.Framework;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Simulation.Learners;

/// <summary>A learner as a sans-IO engine on the simulated network: subscribes once, records what it is sent.</summary>
internal sealed class SimLearner(string id, ulong from) : IEngine
{
    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; } = Hello.ForThisBuild(id, NodeKind.Learner, 0, "", 0);
    public List<(ulong Index, string Payload)> Entries { get; } = new();
    public ulong? SnapshotOldest;
    public ulong Next = from;

    public CodecException? CheckPeer(in Hello hello, PortKind port) => new(CodecError.Protocol, "a learner accepts no connections");

    public void OnConnected(int connection, PeerInfo peer)
    {
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new Subscribe(Next, ReadOnlyMemory<byte>.Empty, SubscribeFlags.None).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Subscribe);
        Outbox.Add(EngineCommand.Send(connection, frame));
    }

    public void OnFrame(int connection, in Frame frame)
    {
        if (frame.Type == FrameType.SnapshotRequired)
        {
            SnapshotOldest = SnapshotRequired.Read(frame.Payload).OldestIndex;
            return;
        }
        if (frame.Type != FrameType.Deliver) return;
        var reader = DeliverFrame.Read(frame.Payload, out ulong first, out _, out ulong through);
        Assert.That(first, Is.EqualTo(Next), "a Deliver frame must start where the learner's stream stands");
        while (reader.TryNext(out var e))
        {
            Entries.Add((e.Index, Encoding.UTF8.GetString(e.Payload.ToArray())));
            Next = e.Index + 1;
        }
        Next = Math.Max(Next, through + 1);
    }

    public void OnDisconnected(int connection) { }
    public void OnDialFailed(string nodeId, string reason) { }
    public void OnTick() { }
}

/// <summary>A relay asked for entries below its retention fills them from a member of its datacenter.</summary>
[TestFixture]
public sealed class RefillTests
{
    /// <summary>
    /// three-regions with 2,000 entries everywhere, but eu-p1 keeps small segments: with the simulated clock's
    /// timestamps far in the past, its once-a-second retention pass drops all but the newest, while the
    /// members keep everything.
    /// </summary>
    private static (SimulatedClusterTests.Cluster, MemoryLog RelayLog) ClusterWhoseRelayDroppedTheStart(int seed)
    {
        var relayLog = new MemoryLog(SegmentLogOptions.Default with { SegmentBytes = 4096 });
        var c = SimulatedClusterTests.Build(seed, p => p == "eu-p1" ? relayLog : new MemoryLog());
        SimulatedClusterTests.Publish(c, 2000, seed);
        SimulatedClusterTests.RunUntil(c, () => SimulatedClusterTests.Converged(c, c.Leader.LastIndex), 20_000);
        SimulatedClusterTests.RunUntil(c, () => relayLog.FirstIndex > 1, 2_000);
        return (c, relayLog);
    }

    [Test]
    public void ALearnerBelowTheRelaysRetentionIsRefilledFromAMemberWithoutGapOrDuplicate()
    {
        var (c, relayLog) = ClusterWhoseRelayDroppedTheStart(11);
        Assert.That(relayLog.LastIndex, Is.EqualTo(c.Leader.LastIndex), "eu-p1 is eu-west's active relay");

        var learner = new SimLearner("refilled-learner", 1);
        c.Placement["refilled-learner"] = "eu-west";
        c.Network.Add("refilled-learner", learner);
        c.Network.Connect("refilled-learner", "eu-p1", PortKind.Learner);
        SimulatedClusterTests.Publish(c, 500, 11);         // the stream goes on while the learner is refilled
        SimulatedClusterTests.RunUntil(c, () => learner.Next > c.Leader.LastIndex || learner.SnapshotOldest is not null, 20_000);

        Assert.That(learner.SnapshotOldest, Is.Null, "a member still holds index 1: no snapshot should be required");
        var expected = new List<LogEntry>();
        c.LeaderLog.Read(1, int.MaxValue, long.MaxValue, expected);
        Assert.That(learner.Entries.Select(e => e.Index), Is.EqualTo(expected.Select(e => e.Index)), "no gap, no duplicate");
        Assert.That(learner.Entries.Select(e => e.Payload), Is.EqualTo(expected.Select(e => Encoding.UTF8.GetString(e.Payload.Span))));
    }

    [Test]
    public void WhenNoMemberHoldsTheIndexEitherTheLearnerIsToldTheOldestAnyoneHolds()
    {
        var (c, _) = ClusterWhoseRelayDroppedTheStart(12);
        // Every eu-west member loses its first entries too (as if their retention had passed them).
        ulong memberOldest = 0;
        foreach (var m in c.Topology.GetDatacenter("eu-west").Members)
        {
            var log = c.MemberLogs[m];
            var keep = new List<LogEntry>();
            log.Read(1001, int.MaxValue, long.MaxValue, keep);
            keep = keep.Select(e => e with { Key = e.Key.ToArray(), Payload = e.Payload.ToArray() }).ToList();
            log.ResetTo(1001);
            foreach (var e in keep) log.Append(e);
            log.Flush();
            memberOldest = log.FirstIndex;
        }

        var learner = new SimLearner("late-learner", 1);
        c.Placement["late-learner"] = "eu-west";
        c.Network.Add("late-learner", learner);
        c.Network.Connect("late-learner", "eu-p1", PortKind.Learner);
        SimulatedClusterTests.RunUntil(c, () => learner.SnapshotOldest is not null, 2_000);
        Assert.That(learner.Entries, Is.Empty, "nothing may be delivered from below every window");
        Assert.That(learner.SnapshotOldest, Is.EqualTo(memberOldest), "the oldest index a member of the datacenter still holds");
    }
}
