using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Leader;
using GeoRelay.Tests.Simulation.Sim;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Engines;

/// <summary>
/// Exactly-once publishing at the leader: a request retried under the same producer id and sequence is never
/// appended twice, by this leader or by one that leads after it on the same log.
/// </summary>
[TestFixture]
public sealed class ExactlyOnceTests
{
    private const ulong Producer = 0xFEED_0000_0000_0001;

    [Test]
    public void ARetriedRequestIsAnsweredWithWhereItWentAndNotAppendedAgain()
    {
        var (leader, log) = Leader(epoch: 1);
        leader.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(1, Publish(1, 1, "a", "b", "c"));
        Assert.That(log.LastIndex, Is.EqualTo(4UL), "a producer marker, then the three entries");
        Assert.That(log.TryGet(1, out var marker) && InternalEntries.IsInternal(marker.Key.Span), Is.True);

        // The same request again (the answer was lost), on a new connection.
        leader.OnConnected(2, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(2, Publish(7, 1, "a", "b", "c"));
        Assert.That(log.LastIndex, Is.EqualTo(4UL), "nothing appended for the retry");
        log.Flush();
        leader.OnTick();
        var acks = Acks(leader);
        Assert.That(acks[1], Is.EqualTo(new PublishAck(1, 2, 3, WaitLevel.Accepted)));
        Assert.That(acks[2], Is.EqualTo(new PublishAck(7, 2, 3, WaitLevel.Accepted)), "the retry names the same indexes");

        // The next request follows on.
        leader.OnFrame(2, Publish(8, 4, "d"));
        Assert.That(log.LastIndex, Is.EqualTo(6UL));
    }

    [Test]
    public void ALeaderOnTheSameLogRecognizesRetriesAndAppendsOnlyWhatItsLogLacks()
    {
        var (old, log) = Leader(epoch: 1);
        old.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        old.OnFrame(1, Publish(1, 1, "a", "b"));
        old.OnFrame(1, Publish(2, 3, "c"));
        log.Flush();

        // The successor's log has the first request only (the second was never replicated to it).
        var copy = new MemoryLog();
        for (ulong i = 1; i <= 3; i++) { Assert.That(log.TryGet(i, out var e), Is.True); copy.Append(e); }
        copy.Flush();
        var successor = new LeaderEngine(SimulatedClusterTests.Build(31).Topology, 2, copy, new SimEnvironment(new SimClock()));
        ulong afterNoOp = copy.LastIndex;
        successor.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        successor.OnFrame(1, Publish(1, 1, "a", "b"));
        Assert.That(copy.LastIndex, Is.EqualTo(afterNoOp), "the first request is in its log: not appended again");
        successor.OnFrame(1, Publish(2, 3, "c"));
        Assert.That(copy.LastIndex, Is.EqualTo(afterNoOp + 2), "the second is not: appended once (marker and entry)");
        successor.OnFrame(1, Publish(3, 3, "c"));
        Assert.That(copy.LastIndex, Is.EqualTo(afterNoOp + 2), "and now recognized");
        var payloads = new List<string>();
        for (ulong i = 1; i <= copy.LastIndex; i++)
            if (copy.TryGet(i, out var e) && !InternalEntries.IsInternal(e.Key.Span)) payloads.Add(Encoding.UTF8.GetString(e.Payload.Span));
        Assert.That(payloads, Is.EqualTo(new[] { "a", "b", "c" }));
    }

    [Test]
    public void ARequestCutShortByALeaderChangeGetsOnlyItsRestAppendedOnRetry()
    {
        var (old, log) = Leader(epoch: 1);
        old.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        old.OnFrame(1, Publish(1, 1, "a", "b", "c")); // marker at 1, a b c at 2..4
        log.Flush();

        // The successor received the marker and "a" only before the old leader died.
        var copy = new MemoryLog();
        for (ulong i = 1; i <= 2; i++) { Assert.That(log.TryGet(i, out var e), Is.True); copy.Append(e); }
        copy.Flush();
        var successor = new LeaderEngine(SimulatedClusterTests.Build(33).Topology, 2, copy, new SimEnvironment(new SimClock()));
        successor.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        successor.OnFrame(1, Publish(9, 1, "a", "b", "c"));
        successor.OnFrame(1, Publish(10, 1, "a", "b", "c")); // and once more
        successor.OnFrame(1, Publish(11, 4, "d"));
        var payloads = new List<string>();
        for (ulong i = 1; i <= copy.LastIndex; i++)
            if (copy.TryGet(i, out var e) && !InternalEntries.IsInternal(e.Key.Span)) payloads.Add(Encoding.UTF8.GetString(e.Payload.Span));
        Assert.That(payloads, Is.EqualTo(new[] { "a", "b", "c", "d" }), "each entry once");
        copy.Flush();
        successor.OnTick();
        var acks = successor.Outbox.Where(c => c.Kind == CommandKind.Send).Select(c =>
        {
            var bytes = new ReadOnlySequence<byte>(c.Buffer!.Memory);
            return FrameReader.TryRead(ref bytes, 1 << 20, out var f) && f.Type == FrameType.PublishAck ? PublishAck.Read(f.Payload) : (PublishAck?)null;
        }).Where(a => a is not null).Select(a => a!.Value).ToList();
        Assert.That(acks.Where(a => a.Request is 9 or 10).Select(a => (a.FirstIndex, a.Count)), Is.EqualTo(new[] { (2UL, 3UL), (2UL, 3UL) }),
            "both retries are answered, naming where the request began");
    }

    [Test]
    public void ASequenceThatSkipsOrOverlapsIsRefusedWithNothingAppended()
    {
        var (leader, log) = Leader(epoch: 1);
        leader.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(1, Publish(1, 1, "a", "b"));
        var gap = Assert.Throws<CodecException>(() => leader.OnFrame(1, Publish(2, 5, "e")))!;
        Assert.That(gap.Message, Does.Contain("sent sequence 5, but this log holds its entries through 2 only"));
        var overlap = Assert.Throws<CodecException>(() => leader.OnFrame(1, Publish(3, 2, "b", "c")))!;
        Assert.That(overlap.Message, Does.Contain("sequences 2..3, which overlap the end of what this log holds (2)"));
        Assert.That(log.LastIndex, Is.EqualTo(3UL));
    }

    [Test]
    public void PublishersWithoutAProducerIdAreNotDeduplicated()
    {
        var (leader, log) = Leader(epoch: 1);
        leader.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        leader.OnFrame(1, Publish(1, 0, "a"));
        leader.OnFrame(1, Publish(2, 0, "a"));
        Assert.That(log.LastIndex, Is.EqualTo(2UL), "two entries, no markers");
    }

    [Test]
    public void TheTableIsRebuiltFromTheLogWhenANodeStartsToLead()
    {
        var log = new MemoryLog();
        var first = new LeaderEngine(SimulatedClusterTests.Build(32).Topology, 1, log, new SimEnvironment(new SimClock()));
        first.OnConnected(1, new PeerInfo("pub", NodeKind.Publisher, 0, PortKind.Publish));
        for (ulong seq = 1; seq <= 20; seq += 2) first.OnFrame(1, Publish(seq, seq, $"x{seq}", $"y{seq}"));
        log.Flush();
        var table = ProducerTable.Rebuild(log);
        Assert.That(table.Count, Is.EqualTo(1));
        Assert.That(table.Check(new ProducerSequence(Producer, 5), 2, out ulong index, out _), Is.EqualTo(ProducerVerdict.Duplicate));
        Assert.That(log.TryGet(index, out var e) && Encoding.UTF8.GetString(e.Payload.Span) == "x5", Is.True);
        Assert.That(table.Check(new ProducerSequence(Producer, 21), 1, out _, out _), Is.EqualTo(ProducerVerdict.Append));
    }

    private static (LeaderEngine, MemoryLog) Leader(ulong epoch)
    {
        var log = new MemoryLog();
        return (new LeaderEngine(SimulatedClusterTests.Build(30).Topology, epoch, log, new SimEnvironment(new SimClock())), log);
    }

    private static Frame Publish(ulong request, ulong firstSeq, params string[] payloads)
    {
        var w = new ArrayBufferWriter<byte>();
        PublishFrame.WriteHeader(w, request, WaitLevel.Accepted, payloads.Length, firstSeq == 0 ? default : new ProducerSequence(Producer, firstSeq));
        foreach (var p in payloads) PublishFrame.WriteEntry(w, default, Encoding.UTF8.GetBytes(p));
        return new Frame(FrameType.Publish, FrameFlags.None, new ReadOnlySequence<byte>(w.WrittenMemory));
    }

    /// <summary>The PublishAcks in the outbox, by connection (the last one each).</summary>
    private static Dictionary<int, PublishAck> Acks(LeaderEngine leader)
    {
        var acks = new Dictionary<int, PublishAck>();
        foreach (var c in leader.Outbox)
        {
            if (c.Kind != CommandKind.Send) continue;
            var bytes = new ReadOnlySequence<byte>(c.Buffer!.Memory);
            if (!FrameReader.TryRead(ref bytes, 1 << 20, out var frame) || frame.Type != FrameType.PublishAck) continue;
            acks[c.Connection] = PublishAck.Read(frame.Payload);
        }
        return acks;
    }
}
