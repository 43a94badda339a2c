using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Leader;
using GeoRelay.Storage;
using GeoRelay.Tests.Simulation.Sim;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Engines;

/// <summary>What a leader may acknowledge and commit in its epoch: Raft's commit rule, the no-op, and refusals once deposed.</summary>
[TestFixture]
public sealed class LeaderEpochTests
{
    [Test]
    public void ANewEpochCommitsEarlierEntriesOnlyThroughItsOwnNoOp()
    {
        var c = SimulatedClusterTests.Build(21);
        SimulatedClusterTests.Publish(c, 100, 21);
        SimulatedClusterTests.RunUntil(c, () => SimulatedClusterTests.Converged(c, 100), 10_000);

        // A successor in epoch 2 on the same 100 entries: every member already holds them, durable, of epoch 1.
        c.Network.Crash(c.Topology.LeaderId);
        var log = new MemoryLog();
        for (ulong i = 1; i <= 100; i++)
        {
            Assert.That(c.LeaderLog.TryGet(i, out var e), Is.True);
            log.Append(e);
        }
        log.Flush();
        var successor = new LeaderEngine(c.Topology, 2, log, new SimEnvironment(c.Network.Clock), LeaderOptions.Default with { Seed = 21 });
        Assert.That(log.LastIndex, Is.EqualTo(101UL), "the epoch begins with a no-op");
        Assert.That(log.TryGet(101, out var noOp) && InternalEntries.IsInternal(noOp.Key.Span) && noOp.Epoch == 2, Is.True);
        c.Network.Restart(c.Topology.LeaderId, successor);

        // Counting copies of epoch 1's entries would commit 100 at the members' first acks; the rule waits until a
        // quorum holds the no-op, and then commits everything at once.
        int steps = 0;
        for (; steps < 20_000 && successor.CommitIndex < 101; steps++)
        {
            c.Network.Step();
            if (successor.CommitIndex == 0) continue;
            Assert.That(successor.CommitIndex, Is.EqualTo(101UL), "nothing of epoch 1 commits on its own");
            Assert.That(c.MemberLogs.Values.Count(l => l.DurableIndex >= 101 && l.TryGet(101, out var e) && e.Epoch == 2),
                Is.GreaterThanOrEqualTo(c.Topology.RequiredAcks));
        }
        Assert.That(successor.CommitIndex, Is.EqualTo(101UL), $"committed within {steps} steps");
    }

    [Test]
    public void AFreshLogStartsWithoutANoOp()
    {
        var c = SimulatedClusterTests.Build(22);
        Assert.That(c.LeaderLog.LastIndex, Is.Zero, "index 1 is the first publish, as before elections");
    }

    [Test]
    public void ALeaderRestartedInItsOwnEpochKeepsCommittingItsEntries()
    {
        var log = new MemoryLog();
        var topology = SimulatedClusterTests.Build(23).Topology;
        var env = new SimEnvironment(new SimClock());
        var first = new LeaderEngine(topology, 3, log, env);
        for (int i = 0; i < 5; i++) first.Append(default, "x"u8.ToArray(), 1);
        log.Flush();
        _ = new LeaderEngine(topology, 3, log, env);
        Assert.That(log.LastIndex, Is.EqualTo(5UL), "no no-op: the epoch's own entries are already there");
    }

    [Test]
    public void PublishersOfADeposedLeaderAreToldItNoLongerLeadsAndNothingMoreIsAppended()
    {
        var (leader, log) = Leader(epoch: 1);
        leader.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(1, PublishFrameOf(1, ("k", "v1")));
        Assert.That(log.LastIndex, Is.EqualTo(1UL));

        // A member says a later epoch exists: the waiting publish is never acknowledged.
        leader.OnConnected(2, new PeerInfo("us-m1", NodeKind.Member, 2, PortKind.Outbound));
        Assert.That(leader.Deposed, Is.True);
        var refusal = leader.Outbox.Single(c => c.Kind == CommandKind.Close && c.Connection == 1);
        Assert.That(refusal.Reason, Is.EqualTo(CodecError.NotLeader));
        Assert.That(refusal.Text, Does.Contain("no longer leads"));
        leader.Outbox.Clear();

        leader.OnConnected(3, new PeerInfo("pub2", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(3, PublishFrameOf(7, ("k", "v2")));
        Assert.That(log.LastIndex, Is.EqualTo(1UL), "a deposed leader appends nothing");
        Assert.That(leader.Outbox.Single(c => c.Connection == 3).Reason, Is.EqualTo(CodecError.NotLeader));
        log.Flush();
        leader.OnTick();
        Assert.That(leader.Outbox.Any(c => c.Kind == CommandKind.Send && c.Connection is 1 or 3), Is.False, "no PublishAck");
    }

    [Test]
    public void APublishWithAReservedKeyIsRefusedWholeWithNoPartOfItAppended()
    {
        var (leader, log) = Leader(epoch: 1);
        leader.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        var e = Assert.Throws<CodecException>(() => leader.OnFrame(1, PublishFrameOf(9, ("ok", "1"), ("\0mine", "2"))))!;
        Assert.That(e.Reason, Is.EqualTo(CodecError.Protocol));
        Assert.That(e.Message, Does.Contain("publish request 9: keys starting with a zero byte are reserved"));
        Assert.That(log.LastIndex, Is.Zero);
        Assert.That(() => leader.Append("\0x"u8.ToArray(), "p"u8.ToArray(), 1), Throws.ArgumentException.With.Message.Contains("reserved"));
    }

    private static (LeaderEngine, MemoryLog) Leader(ulong epoch)
    {
        var topology = SimulatedClusterTests.Build(24).Topology;
        var log = new MemoryLog();
        return (new LeaderEngine(topology, epoch, log, new SimEnvironment(new SimClock())), log);
    }

    private static Frame PublishFrameOf(ulong request, params (string Key, string Value)[] entries)
    {
        var w = new ArrayBufferWriter<byte>();
        PublishFrame.WriteHeader(w, request, WaitLevel.Accepted, entries.Length);
        foreach (var (k, v) in entries) PublishFrame.WriteEntry(w, Encoding.UTF8.GetBytes(k), Encoding.UTF8.GetBytes(v));
        return new Frame(FrameType.Publish, FrameFlags.None, new ReadOnlySequence<byte>(w.WrittenMemory));
    }
}
