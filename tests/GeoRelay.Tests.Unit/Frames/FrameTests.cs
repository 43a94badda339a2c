using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Frames;

[TestFixture]
public sealed class FrameTests
{
    private const int Max = 1 << 20;

    private static byte[] Build(FrameType type, Action<PooledBufferWriter> payload)
    {
        using var w = new PooledBufferWriter();
        int start = FrameWriter.Begin(w);
        payload(w);
        FrameWriter.End(w, start, type);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>One sample of every frame type, with a check that the decoded DTO is the original.</summary>
    private static IEnumerable<TestCaseData> Samples()
    {
        var hello = Hello.ForThisBuild("eu-p1", NodeKind.Relay, 7, "orders", 0xABCDEF, auth: new byte[] { 1, 2, 3 });
        yield return Case("Hello", FrameType.Hello, w => hello.Write(w), p =>
        {
            var h = Hello.Read(p);
            Assert.That((h.NodeId, h.Kind, h.Epoch, h.Cluster, h.TopologyHash, h.Auth.ToArray()), Is.EqualTo((hello.NodeId, hello.Kind, hello.Epoch, hello.Cluster, hello.TopologyHash, new byte[] { 1, 2, 3 })));
        });
        var welcome = new Welcome(1, "us-leader", NodeKind.Leader, 3, Capabilities.Zstd);
        yield return Case("Welcome", FrameType.Welcome, w => welcome.Write(w), p => Assert.That(Welcome.Read(p), Is.EqualTo(welcome)));
        var error = new ErrorFrame(CodecError.SlowConsumer, "more than 8 MiB queued");
        yield return Case("Error", FrameType.Error, w => error.Write(w), p => Assert.That(ErrorFrame.Read(p), Is.EqualTo(error)));
        yield return Case("Heartbeat", FrameType.Heartbeat, w => { var d = new DeltaState(); new Heartbeat(5, 99, 123456).Write(w, ref d); },
            p => { var d = new DeltaState(); Assert.That(Heartbeat.Read(p, ref d), Is.EqualTo(new Heartbeat(5, 99, 123456))); });
        var ack = new Ack(4, 100, 120);
        yield return Case("Ack", FrameType.Ack, w => ack.Write(w), p => Assert.That(Ack.Read(p), Is.EqualTo(ack)));
        var dcAck = new DcAck(4, 130, [new MemberProgress(0, 100, MemberLinkState.Up), new MemberProgress(2, 90, MemberLinkState.Resync)], 3, 120);
        yield return Case("DcAck", FrameType.DcAck, w => dcAck.Write(w), p =>
        {
            var read = DcAck.Read(p);
            Assert.That((read.Epoch, read.RetainedIndex, read.RetainedEpoch, read.RetainedCommit, read.Members),
                Is.EqualTo((dcAck.Epoch, dcAck.RetainedIndex, 3UL, 120UL, dcAck.Members)));
        });
        var sub = new Subscribe(42, Encoding.UTF8.GetBytes("orders/"), SubscribeFlags.Confirms, 41, 6);
        yield return Case("Subscribe", FrameType.Subscribe, w => sub.Write(w), p =>
        {
            var s = Subscribe.Read(p);
            Assert.That((s.FromIndex, s.KeyPrefix.ToArray(), s.Flags, s.LastIndex, s.LastEpoch), Is.EqualTo((sub.FromIndex, sub.KeyPrefix.ToArray(), sub.Flags, 41UL, 6UL)));
        });
        yield return Case("SnapshotRequired", FrameType.SnapshotRequired, w => new SnapshotRequired(77).Write(w), p => Assert.That(SnapshotRequired.Read(p).OldestIndex, Is.EqualTo(77UL)));
        yield return Case("Truncated", FrameType.Truncated, w => new Truncated(41).Write(w), p => Assert.That(Truncated.Read(p).After, Is.EqualTo(41UL)));
        var install = new InstallSnapshot(3, 9, 5000, 4097, 7);
        yield return Case("InstallSnapshot", FrameType.InstallSnapshot, w => install.Write(w), p => Assert.That(InstallSnapshot.Read(p), Is.EqualTo(install)));
        yield return Case("Confirm", FrameType.Confirm, w => new Confirm(88).Write(w), p => Assert.That(Confirm.Read(p).Index, Is.EqualTo(88UL)));
        var ackP = new PublishAck(9, 1000, 512, WaitLevel.Committed);
        yield return Case("PublishAck", FrameType.PublishAck, w => ackP.Write(w), p => Assert.That(PublishAck.Read(p), Is.EqualTo(ackP)));
        yield return Case("Append", FrameType.Append, w =>
        {
            var d = new DeltaState();
            AppendFrame.WriteHeader(w, ref d, 3, 10, 11, 3);
            for (int i = 0; i < 3; i++) EntryRecord.Write(w, 0, 3, 1000 + i, Encoding.UTF8.GetBytes("k" + i), Encoding.UTF8.GetBytes("payload " + i));
        }, p =>
        {
            var d = new DeltaState();
            var entries = AppendFrame.Read(p, ref d, out var epoch, out var commit, out var first, out var count);
            Assert.That((epoch, commit, first, count), Is.EqualTo((3UL, 10UL, 11UL, 3UL)));
            AssertEntries(ref entries, 11, 3);
        });
        yield return Case("Deliver", FrameType.Deliver, w =>
        {
            DeliverFrame.WriteHeader(w, 11, 3, 20);
            for (int i = 0; i < 3; i++) EntryRecord.Write(w, 0, 3, 1000 + i, Encoding.UTF8.GetBytes("k" + i), Encoding.UTF8.GetBytes("payload " + i));
        }, p =>
        {
            var entries = DeliverFrame.Read(p, out var first, out var count, out var through);
            Assert.That((first, count, through), Is.EqualTo((11UL, 3UL, 20UL)));
            AssertEntries(ref entries, 11, 3);
        });
        yield return Case("Publish", FrameType.Publish, w =>
        {
            PublishFrame.WriteHeader(w, 5, WaitLevel.Accepted, 2);
            PublishFrame.WriteEntry(w, "a"u8, "first"u8);
            PublishFrame.WriteEntry(w, ReadOnlySpan<byte>.Empty, "second"u8);
        }, p =>
        {
            var r = PublishFrame.Read(p, out var request, out var wait, out var count);
            Assert.That((request, wait, count), Is.EqualTo((5UL, WaitLevel.Accepted, 2)));
            Assert.That(r.TryNext(out var k1, out var v1) && Encoding.UTF8.GetString(v1) == "first" && Encoding.UTF8.GetString(k1) == "a");
            Assert.That(r.TryNext(out _, out var v2) && Encoding.UTF8.GetString(v2) == "second");
            Assert.That(r.TryNext(out _, out _), Is.False);
        });
        yield return Case("PublishWithProducer", FrameType.Publish, w =>
        {
            var at = new System.Buffers.ArrayBufferWriter<byte>();
            PublishFrame.WriteHeader(at, 300, WaitLevel.Committed, 1, new ProducerSequence(0xABCDEF, 0));
            PublishFrame.WriteEntry(at, "k"u8, "v"u8);
            var bytes = at.WrittenSpan.ToArray();
            PublishFrame.SetFirstSeq(bytes, 41); // numbered once it is sent, after it was encoded
            w.Write(bytes);
        }, p =>
        {
            var r = PublishFrame.Read(p, out var request, out var wait, out var count, out var producer);
            Assert.That((request, wait, count, producer), Is.EqualTo((300UL, WaitLevel.Committed, 1, new ProducerSequence(0xABCDEF, 41))));
            Assert.That(r.TryNext(out _, out var v) && Encoding.UTF8.GetString(v) == "v");
        });
        yield return Case("Batch", FrameType.Batch, w =>
        {
            var d = new DeltaState();
            BatchFrame.WriteHeader(w, ref d, 2, 50, 7, [0, 2], 40, 10, [0, 3, 12]);
            w.Write("muxbytes"u8);
        }, p =>
        {
            var d = new DeltaState();
            var slots = new List<int>();
            var skips = new List<ulong>();
            var mux = BatchFrame.Read(p, ref d, slots, skips, out var epoch, out var commit, out var seq, out var first, out var count);
            Assert.That((epoch, commit, seq, slots, first, count, skips, Encoding.UTF8.GetString(mux)),
                Is.EqualTo((2UL, 50UL, 7UL, new List<int> { 0, 2 }, 40UL, 10UL, new List<ulong> { 0, 3, 12 }, "muxbytes")));
            Assert.That(BatchFrame.Range(first, count, skips[1]), Is.EqualTo((43UL, 7UL)), "a member 3 records in");
            Assert.That(BatchFrame.Range(first, count, skips[2]), Is.EqualTo((52UL, 0UL)), "a member past the records: empty, next index 52");
        });
        yield return Case("BatchWithVoterProgress", FrameType.Batch, w =>
        {
            var d = new DeltaState();
            BatchFrame.WriteHeader(w, ref d, 2, 50, 7, [1], 40, 10, [0, 0], [49, 60, 45, 12]);
            w.Write("muxbytes"u8);
        }, p =>
        {
            var d = new DeltaState();
            var progress = new List<ulong> { 99 };
            var mux = BatchFrame.Read(p, ref d, new List<int>(), new List<ulong>(), out var epoch, out var commit, out var seq, out _, out _, progress);
            Assert.That((epoch, commit, seq, progress, Encoding.UTF8.GetString(mux)),
                Is.EqualTo((2UL, 50UL, 7UL, new List<ulong> { 49, 60, 45, 12 }, "muxbytes")));
        });
    }

    [Test]
    public void ABatchWithoutVoterProgressLeavesNoneAndOnlyABatchMayCarryIt()
    {
        var w = new ArrayBufferWriter<byte>();
        var d = new DeltaState();
        BatchFrame.WriteHeader(w, ref d, 2, 50, 7, [], 40, 0, [0]);
        var progress = new List<ulong> { 99 };
        BatchFrame.Read(new ReadOnlySequence<byte>(w.WrittenMemory), ref d, new List<int>(), new List<ulong>(), out _, out _, out _, out _, out _, progress);
        Assert.That(progress, Is.Empty, "an older leader's batch says nothing of the voters");

        var heartbeat = new ArrayBufferWriter<byte>();
        new DeltaState().WriteEpochCommit(heartbeat, 2, 50, BatchFrame.ProgressBit);
        PayloadWriter.Varint(heartbeat, 123);
        var e = Assert.Throws<CodecException>(() => { var rd = new DeltaState(); Heartbeat.Read(new ReadOnlySequence<byte>(heartbeat.WrittenMemory), ref rd); });
        Assert.That(e!.Reason, Is.EqualTo(CodecError.Corrupt));
    }

    private static void AssertEntries(ref EntriesReader entries, ulong first, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.That(entries.TryNext(out var e), Is.True);
            Assert.That((e.Index, e.Epoch, e.TimestampMicros, Encoding.UTF8.GetString(e.Key), Encoding.UTF8.GetString(e.Payload)),
                Is.EqualTo((first + (ulong)i, 3UL, 1000L + i, "k" + i, "payload " + i)));
        }
        Assert.That(entries.TryNext(out _), Is.False);
    }

    private static TestCaseData Case(string name, FrameType type, Action<PooledBufferWriter> write, Action<ReadOnlySequence<byte>> check) =>
        new TestCaseData(type, Build(type, write), check).SetName("Frame_" + name);

    [TestCaseSource(nameof(Samples))]
    public void ParsesWhenSplitAtEveryOffset(FrameType type, byte[] bytes, Action<ReadOnlySequence<byte>> check)
    {
        for (int cut = 0; cut <= bytes.Length; cut++)
        {
            var sequence = Fragment.Split(bytes, cut);
            Assert.That(FrameReader.TryRead(ref sequence, Max, out var frame), Is.True, $"cut at {cut}");
            Assert.That(frame.Type, Is.EqualTo(type));
            Assert.That(sequence.Length, Is.Zero);
            check(frame.Payload);
            // three pieces too: the payload itself split in two
            if (cut > 0 && cut < bytes.Length - 1)
            {
                var three = Fragment.Split(bytes, cut / 2, cut);
                Assert.That(FrameReader.TryRead(ref three, Max, out var f3), Is.True);
                check(f3.Payload);
            }
        }
    }

    [TestCaseSource(nameof(Samples))]
    public void EveryPrefixIsNeedMore(FrameType type, byte[] bytes, Action<ReadOnlySequence<byte>> check)
    {
        for (int length = 0; length < bytes.Length; length++)
        {
            var partial = new ReadOnlySequence<byte>(bytes, 0, length);
            Assert.That(FrameReader.TryRead(ref partial, Max, out _), Is.False, $"prefix of {length} bytes");
            Assert.That(partial.Length, Is.EqualTo(length), "a partial frame leaves the buffer as it was");
        }
    }

    [TestCaseSource(nameof(Samples))]
    public void CorruptedPayloadsGiveCodecExceptionOrAValue(FrameType type, byte[] bytes, Action<ReadOnlySequence<byte>> check)
    {
        var random = new Random(bytes.Length * 31 + (int)type);
        for (int round = 0; round < 400; round++)
        {
            var damaged = (byte[])bytes.Clone();
            int flips = random.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(FrameHeader.Size, damaged.Length);
                damaged[at] ^= (byte)(1 << random.Next(8));
            }
            int length = random.Next(2) == 0 ? damaged.Length : random.Next(FrameHeader.Size, damaged.Length + 1);
            var payload = new ReadOnlySequence<byte>(damaged, FrameHeader.Size, length - FrameHeader.Size);
            try
            {
                DecodeAny(type, payload);
            }
            catch (CodecException) { }
            catch (Exception e)
            {
                Assert.Fail($"{type}: {e.GetType().Name} instead of CodecException: {e.Message}");
            }
        }
    }

    /// <summary>Decodes a payload of any type to the end, asserting nothing (the corruption test's probe).</summary>
    private static void DecodeAny(FrameType type, ReadOnlySequence<byte> payload)
    {
        var delta = new DeltaState();
        switch (type)
        {
            case FrameType.Hello: Hello.Read(payload); break;
            case FrameType.Welcome: Welcome.Read(payload); break;
            case FrameType.Error: ErrorFrame.Read(payload); break;
            case FrameType.Heartbeat: Heartbeat.Read(payload, ref delta); break;
            case FrameType.Ack: Ack.Read(payload); break;
            case FrameType.DcAck: DcAck.Read(payload); break;
            case FrameType.Subscribe: Subscribe.Read(payload); break;
            case FrameType.SnapshotRequired: SnapshotRequired.Read(payload); break;
            case FrameType.Confirm: Confirm.Read(payload); break;
            case FrameType.PublishAck: PublishAck.Read(payload); break;
            case FrameType.Append:
            {
                var r = AppendFrame.Read(payload, ref delta, out _, out _, out _, out _);
                while (r.TryNext(out _)) { }
                break;
            }
            case FrameType.Deliver:
            {
                var r = DeliverFrame.Read(payload, out _, out _, out _);
                while (r.TryNext(out _)) { }
                break;
            }
            case FrameType.Publish:
            {
                var r = PublishFrame.Read(payload, out _, out _, out _);
                while (r.TryNext(out _, out _)) { }
                break;
            }
            case FrameType.Batch: BatchFrame.Read(payload, ref delta, new List<int>(), new List<ulong>(), out _, out _, out _, out _, out _); break;
        }
    }

    [Test]
    public void LengthOverTheMaximumIsRefusedBeforeThePayloadArrives()
    {
        var header = new byte[FrameHeader.Size];
        new FrameHeader(int.MaxValue, FrameType.Deliver, FrameFlags.None).Write(header);
        var sequence = new ReadOnlySequence<byte>(header);
        var e = Assert.Throws<CodecException>(() => FrameReader.TryRead(ref sequence, Max, out _));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(e.Message, Does.Contain(Max.ToString()));
    }

    [Test]
    public void UnknownTypeAndFlagsAreRefused()
    {
        var bytes = new byte[] { 0, 0, 0, 0, 200, 0 };
        var s1 = new ReadOnlySequence<byte>(bytes);
        Assert.That(Assert.Throws<CodecException>(() => FrameReader.TryRead(ref s1, Max, out _))!.Reason, Is.EqualTo(CodecError.UnknownType));
        bytes = [0, 0, 0, 0, (byte)FrameType.Ack, 0x80];
        var s2 = new ReadOnlySequence<byte>(bytes);
        Assert.That(Assert.Throws<CodecException>(() => FrameReader.TryRead(ref s2, Max, out _))!.Reason, Is.EqualTo(CodecError.Corrupt));
    }

    [Test]
    public void HugeCountsInsidePayloadsAreRefusedWithoutAllocating()
    {
        using var w = new PooledBufferWriter();
        PayloadWriter.Varint(w, 1);            // epoch
        PayloadWriter.Varint(w, 1);            // retained
        PayloadWriter.Varint(w, 1);            // retained epoch
        PayloadWriter.Varint(w, 0);            // retained commit
        PayloadWriter.Varint(w, 60_000);       // member count, with nothing behind it
        var e = Assert.Throws<CodecException>(() => DcAck.Read(new ReadOnlySequence<byte>(w.WrittenMemory)));
        Assert.That(e!.Message, Does.Contain("count"));

        w.Clear();
        DeliverFrame.WriteHeader(w, 1, ulong.MaxValue / 2, ulong.MaxValue);
        Assert.Throws<CodecException>(() => DeliverFrame.Read(new ReadOnlySequence<byte>(w.WrittenMemory), out _, out _, out _));
    }

    [Test]
    public void NegotiationPicksTheHighestCommonVersionOrNamesBothRanges()
    {
        var ours = Hello.ForThisBuild("a", NodeKind.Leader, 1, "c", 0) with { MinVersion = 1, MaxVersion = 3 };
        var theirs = ours with { NodeId = "b", MinVersion = 2, MaxVersion = 5 };
        Assert.That(ProtocolVersion.Negotiate(ours, theirs), Is.EqualTo(3));
        var old = ours with { NodeId = "b", MinVersion = 4, MaxVersion = 6 };
        var e = Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, old));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.VersionMismatch));
        Assert.That(e.Message, Does.Contain("a speaks 1..3").And.Contain("b speaks 4..6"));
    }

    [Test]
    public void ARelayFeedSubscribeHasNoKeyPrefix()
    {
        using var w = new PooledBufferWriter();
        new Subscribe(5, Encoding.UTF8.GetBytes("orders/"), SubscribeFlags.RelayFeed, 4, 1).Write(w);
        var e = Assert.Throws<CodecException>(() => Subscribe.Read(new ReadOnlySequence<byte>(w.WrittenMemory)));
        Assert.That(e!.Message, Does.Contain("a relay feed takes every entry; it has no key prefix"));
        w.Clear();
        new Subscribe(5, default, SubscribeFlags.RelayFeed, 4, 1).Write(w);
        Assert.That(Subscribe.Read(new ReadOnlySequence<byte>(w.WrittenMemory)).Flags, Is.EqualTo(SubscribeFlags.RelayFeed));
    }

    [Test]
    public void ChangedFrameDefinitionsAreCaughtAtTheHandshake()
    {
        var ours = Hello.ForThisBuild("a", NodeKind.Leader, 1, "c", 0);
        var theirs = ours with { NodeId = "b", DefinitionsHash = ours.DefinitionsHash ^ 1 };
        Assert.That(Assert.Throws<CodecException>(() => ProtocolVersion.Negotiate(ours, theirs))!.Reason, Is.EqualTo(CodecError.DefinitionsMismatch));
    }

    [Test]
    public void DeltaStateOmitsUnchangedFieldsAndRestoresThem()
    {
        using var w = new PooledBufferWriter();
        var tx = new DeltaState();
        new Heartbeat(5, 10, 1).Write(w, ref tx);
        int full = w.WrittenCount;
        new Heartbeat(5, 10, 2).Write(w, ref tx);
        int second = w.WrittenCount - full;
        Assert.That(second, Is.LessThan(full), "unchanged epoch and commit are not sent again");
        var rx = new DeltaState();
        Assert.That(Heartbeat.Read(new ReadOnlySequence<byte>(w.WrittenMemory[..full]), ref rx), Is.EqualTo(new Heartbeat(5, 10, 1)));
        Assert.That(Heartbeat.Read(new ReadOnlySequence<byte>(w.WrittenMemory[full..]), ref rx), Is.EqualTo(new Heartbeat(5, 10, 2)));
        var fresh = new DeltaState();
        Assert.That(Assert.Throws<CodecException>(() => Heartbeat.Read(new ReadOnlySequence<byte>(w.WrittenMemory[full..]), ref fresh))!.Reason,
            Is.EqualTo(CodecError.Corrupt), "a field omitted before it was ever sent is refused");
    }
}
