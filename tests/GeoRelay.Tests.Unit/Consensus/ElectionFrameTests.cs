using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Tests.Unit.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Consensus;

[TestFixture]
public sealed class ElectionFrameTests
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

    private static readonly VoteRequest Request = new(7, 6, 1234, VoteRequestFlags.Transfer, "eu-m1");
    private static readonly VoteRequest PreVote = new(9, 3, 0, VoteRequestFlags.PreVote, "us-ä");
    private static readonly VoteResponse Refusal = new(8, VoteResponseFlags.PreVote, "leader us-leader heard 120 ms ago, within the election timeout");
    private static readonly VoteResponse Grant = new(7, VoteResponseFlags.Granted, "");

    private static IEnumerable<TestCaseData> Samples()
    {
        yield return Case("VoteRequest", FrameType.VoteRequest, w => Request.Write(w), p => Assert.That(VoteRequest.Read(p), Is.EqualTo(Request)));
        yield return Case("VoteRequestPreVote", FrameType.VoteRequest, w => PreVote.Write(w), p => Assert.That(VoteRequest.Read(p), Is.EqualTo(PreVote)));
        yield return Case("VoteResponseRefused", FrameType.VoteResponse, w => Refusal.Write(w), p => Assert.That(VoteResponse.Read(p), Is.EqualTo(Refusal)));
        yield return Case("VoteResponseGranted", FrameType.VoteResponse, w => Grant.Write(w), p => Assert.That(VoteResponse.Read(p), Is.EqualTo(Grant)));
        yield return Case("TimeoutNow", FrameType.TimeoutNow, w => new TimeoutNow(ulong.MaxValue).Write(w),
            p => Assert.That(TimeoutNow.Read(p), Is.EqualTo(new TimeoutNow(ulong.MaxValue))));
    }

    private static TestCaseData Case(string name, FrameType type, Action<PooledBufferWriter> write, Action<ReadOnlySequence<byte>> check) =>
        new TestCaseData(type, Build(type, write), check).SetName("ElectionFrame_" + name);

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
            if (cut > 0 && cut < bytes.Length - 1)
            {
                var three = Fragment.Split(bytes, cut / 2, cut);
                Assert.That(FrameReader.TryRead(ref three, Max, out var f3), Is.True);
                check(f3.Payload);
            }
        }
    }

    [TestCaseSource(nameof(Samples))]
    public void EveryTruncatedPayloadIsACodecExceptionNamingTheFrame(FrameType type, byte[] bytes, Action<ReadOnlySequence<byte>> check)
    {
        for (int length = FrameHeader.Size; length < bytes.Length; length++)
        {
            var payload = new ReadOnlySequence<byte>(bytes, FrameHeader.Size, length - FrameHeader.Size);
            var e = Assert.Throws<CodecException>(() => Decode(type, payload), $"payload cut to {length - FrameHeader.Size} bytes");
            Assert.That(e!.Message, Does.Contain(type.ToString()));
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
                Decode(type, payload);
            }
            catch (CodecException) { }
            catch (Exception e)
            {
                Assert.Fail($"{type}: {e.GetType().Name} instead of CodecException: {e.Message}");
            }
        }
    }

    private static object Decode(FrameType type, ReadOnlySequence<byte> payload) => type switch
    {
        FrameType.VoteRequest => VoteRequest.Read(payload),
        FrameType.VoteResponse => VoteResponse.Read(payload),
        FrameType.TimeoutNow => TimeoutNow.Read(payload),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private static ReadOnlySequence<byte> Payload(Action<PooledBufferWriter> write)
    {
        using var w = new PooledBufferWriter();
        write(w);
        return new ReadOnlySequence<byte>(w.WrittenSpan.ToArray());
    }

    [Test]
    public void NonsenseFieldsAreRefusedWithTheFieldNamed()
    {
        var zeroTerm = Assert.Throws<CodecException>(() => VoteRequest.Read(Payload(w => (Request with { Term = 0, LastTerm = 0 }).Write(w))))!;
        Assert.That(zeroTerm.Message, Does.Contain("VoteRequest.term is 0"));

        var lastTermAhead = Assert.Throws<CodecException>(() => VoteRequest.Read(Payload(w => (Request with { LastTerm = 7 }).Write(w))))!;
        Assert.That(lastTermAhead.Message, Does.Contain("VoteRequest.lastTerm 7 is not below the requested term 7"));

        var bothFlags = Assert.Throws<CodecException>(() => VoteRequest.Read(Payload(w =>
            (Request with { Flags = VoteRequestFlags.PreVote | VoteRequestFlags.Transfer }).Write(w))))!;
        Assert.That(bothFlags.Message, Does.Contain("VoteRequest.flags"));

        var unknownFlags = Assert.Throws<CodecException>(() => VoteResponse.Read(Payload(w => (Grant with { Flags = (VoteResponseFlags)0x84 }).Write(w))))!;
        Assert.That(unknownFlags.Message, Does.Contain("VoteResponse.flags has unknown bits 0x84"));

        var noCandidate = Assert.Throws<CodecException>(() => VoteRequest.Read(Payload(w => (Request with { Candidate = "" }).Write(w))))!;
        Assert.That(noCandidate.Message, Does.Contain("VoteRequest.candidate is empty"));

        var trailing = Assert.Throws<CodecException>(() => TimeoutNow.Read(Payload(w => { new TimeoutNow(3).Write(w); PayloadWriter.Byte(w, 0); })))!;
        Assert.That(trailing.Message, Does.Contain("TimeoutNow: 1 unexpected bytes"));
    }

    [Test]
    public void AnOversizedLengthIsRefusedBeforeAnythingIsAllocated()
    {
        // A reason claiming 2^40 bytes, with nothing behind it.
        var payload = Payload(w => { PayloadWriter.Varint(w, 5); PayloadWriter.Byte(w, 0); PayloadWriter.Varint(w, 1UL << 40); });
        var e = Assert.Throws<CodecException>(() => VoteResponse.Read(payload))!;
        Assert.That(e.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(e.Message, Does.Contain("VoteResponse.reason").And.Contain(VoteResponse.MaxReasonLength.ToString()));

        var id = Payload(w => { PayloadWriter.Varint(w, 5); PayloadWriter.Varint(w, 1); PayloadWriter.Varint(w, 1); PayloadWriter.Byte(w, 0); PayloadWriter.Varint(w, 300); });
        Assert.That(Assert.Throws<CodecException>(() => VoteRequest.Read(id))!.Message, Does.Contain("VoteRequest.candidate"));
    }

    [Test]
    public void ALongReasonIsShortenedToFitWhatTheReaderAccepts()
    {
        var reason = new string('€', 1000); // 3 UTF-8 bytes each
        var read = VoteResponse.Read(Payload(w => new VoteResponse(4, VoteResponseFlags.None, reason).Write(w)));
        Assert.That(read.Reason, Is.EqualTo(reason[..(VoteResponse.MaxReasonLength / 4)]));
    }

    [Test]
    public void ElectionFramesAreKnownTypesAndInTheHandshakeDefinitions()
    {
        foreach (var type in new[] { FrameType.VoteRequest, FrameType.VoteResponse, FrameType.TimeoutNow })
        {
            Assert.That(FrameHeader.IsKnown(type), Is.True, type.ToString());
            Assert.That(ProtocolVersion.Definitions, Does.Contain(type + ":"));
        }
    }
}
