using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Frames;

[TestFixture]
public sealed class ConfigurationFrameTests
{
    private static readonly ConfigurationFrame Sample = new(4097, 9, 0xfeed_beef_0123_4567, Encoding.UTF8.GetBytes("eu:relay-eu,eu-m1,eu-m2;us:relay-us,us-m1"));

    private static byte[] Encode(in ConfigurationFrame frame)
    {
        var w = new ArrayBufferWriter<byte>();
        frame.Write(w);
        return w.WrittenSpan.ToArray();
    }

    private static void AssertSame(ConfigurationFrame read, ConfigurationFrame expected)
    {
        Assert.That((read.Index, read.Epoch, read.Hash, read.Membership.ToArray()),
            Is.EqualTo((expected.Index, expected.Epoch, expected.Hash, expected.Membership.ToArray())));
    }

    [Test]
    public void RoundTripsSplitAtEveryOffset()
    {
        var bytes = Encode(Sample);
        for (int cut = 1; cut < bytes.Length; cut++)
            AssertSame(ConfigurationFrame.Read(Fragment.Split(bytes, cut)), Sample);
        AssertSame(ConfigurationFrame.Read(new ReadOnlySequence<byte>(bytes)), Sample);
    }

    [Test]
    public void TheMembershipIsCopiedOutOfThePayload()
    {
        var bytes = Encode(Sample);
        var read = ConfigurationFrame.Read(new ReadOnlySequence<byte>(bytes));
        Array.Clear(bytes); // the receive buffer is reused once the pipe advances
        Assert.That(read.Membership.ToArray(), Is.EqualTo(Sample.Membership.ToArray()));
    }

    [Test]
    public void BootstrapAndEmptyMembershipRoundTrip()
    {
        var bootstrap = new ConfigurationFrame(0, 0, 1, ReadOnlyMemory<byte>.Empty);
        AssertSame(ConfigurationFrame.Read(new ReadOnlySequence<byte>(Encode(bootstrap))), bootstrap);
    }

    [Test]
    public void AMembershipOfExactlyTheMaximumIsAccepted()
    {
        var big = new ConfigurationFrame(1, 1, 2, new byte[ConfigurationFrame.MaxMembershipBytes]);
        Assert.That(ConfigurationFrame.Read(new ReadOnlySequence<byte>(Encode(big))).Membership.Length, Is.EqualTo(ConfigurationFrame.MaxMembershipBytes));
    }

    [Test]
    public void AMembershipOverTheMaximumIsRefusedByTheWriter()
    {
        var big = new ConfigurationFrame(1, 1, 2, new byte[ConfigurationFrame.MaxMembershipBytes + 1]);
        var e = Assert.Throws<ArgumentException>(() => Encode(big));
        Assert.That(e!.Message, Does.Contain("over the maximum of 1048576"));
    }

    [Test]
    public void AnOversizedMembershipLengthIsRefusedBeforeAllocating()
    {
        var w = new ArrayBufferWriter<byte>();
        PayloadWriter.Varint(w, 5);
        PayloadWriter.Varint(w, 2);
        PayloadWriter.UInt64(w, 3);
        PayloadWriter.Varint(w, ConfigurationFrame.MaxMembershipBytes + 1UL); // a length with nothing behind it
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<CodecException>(() => ConfigurationFrame.Read(new ReadOnlySequence<byte>(w.WrittenMemory)));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(ConfigurationFrame.MaxMembershipBytes / 4));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(e.Message, Does.Contain("Configuration.membership").And.Contain("1048577"));
    }

    [Test]
    public void EveryTruncationIsRefusedNamingTheField()
    {
        var bytes = Encode(Sample);
        for (int length = 0; length < bytes.Length; length++)
        {
            var e = Assert.Throws<CodecException>(() => ConfigurationFrame.Read(new ReadOnlySequence<byte>(bytes, 0, length)), $"{length} bytes");
            Assert.That(e!.Reason, Is.EqualTo(CodecError.Truncated), $"{length} bytes");
            Assert.That(e.Message, Does.Contain("Configuration."), $"{length} bytes");
        }
    }

    [Test]
    public void TrailingBytesAreRefused()
    {
        var bytes = Encode(Sample).Append((byte)0).ToArray();
        var e = Assert.Throws<CodecException>(() => ConfigurationFrame.Read(new ReadOnlySequence<byte>(bytes)));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.Corrupt));
        Assert.That(e.Message, Does.Contain("Configuration: 1 unexpected bytes"));
    }

    [Test]
    public void TheLayoutIsTheOneTheDefinitionsDescribe()
    {
        // v index · v epoch · u64 hash · bytes membership
        var bytes = Encode(new ConfigurationFrame(1, 2, 0x0807060504030201, new byte[] { 0xAA }));
        Assert.That(bytes, Is.EqualTo(new byte[] { 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0xAA }));
        Assert.That(ProtocolVersion.Definitions, Does.EndWith(";Configuration:v index,v epoch,u64 hash,bytes membership"));
    }

    [Test]
    public void AConfigurationFrameIsReadOnlyOnProtocol3Connections()
    {
        var frame = new ArrayBufferWriter<byte>();
        FrameWriter.Write(frame, FrameType.Configuration, FrameFlags.None, Encode(Sample));

        var v3 = new ReadOnlySequence<byte>(frame.WrittenMemory);
        Assert.That(FrameReader.TryRead(ref v3, 1 << 20, 3, out var read), Is.True);
        Assert.That(read.Type, Is.EqualTo(FrameType.Configuration));
        AssertSame(ConfigurationFrame.Read(read.Payload), Sample);

        var v2 = new ReadOnlySequence<byte>(frame.WrittenMemory[..FrameHeader.Size]); // refused on the header alone
        var e = Assert.Throws<CodecException>(() => FrameReader.TryRead(ref v2, 1 << 20, 2, out _));
        Assert.That(e!.Reason, Is.EqualTo(CodecError.Protocol));
        Assert.That(e.Message, Does.Contain("Configuration frame (type 22) is not part of protocol 2"));
    }

    [Test]
    public void FramesOfProtocol2AreReadOnProtocol2Connections()
    {
        var frame = new ArrayBufferWriter<byte>();
        FrameWriter.Write(frame, FrameType.SnapshotChunk, FrameFlags.None, [1, 2, 3]);
        var sequence = new ReadOnlySequence<byte>(frame.WrittenMemory);
        Assert.That(FrameReader.TryRead(ref sequence, 1 << 20, 2, out var read), Is.True);
        Assert.That(read.Type, Is.EqualTo(FrameType.SnapshotChunk));
    }
}
