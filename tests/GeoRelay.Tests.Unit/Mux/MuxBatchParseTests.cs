using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using GeoRelay.Codec;
using GeoRelay.Codec.Mux;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Mux.MuxTestData;
using PropertyAttribute = FsCheck.NUnit.PropertyAttribute;

namespace GeoRelay.Tests.Unit.Mux;

public class MuxBatchParseTests
{
    private static readonly byte[][] SamplePackets = SampleSet();
    private static readonly byte[] Sample = EncodeGeneric(SamplePackets);

    [Test]
    public void Sample_batch_uses_shared_and_private_chunks()
    {
        AssertDecodes(Sample, SamplePackets);
        Assert.That(Sample.Length, Is.LessThan(SamplePackets.Sum(p => p.Length) / 2));
    }

    [Test]
    public void Truncation_at_every_offset_is_refused_or_yields_packet_prefixes()
    {
        for (int length = 0; length < Sample.Length; length++)
        {
            MuxBatch parsed;
            try
            {
                parsed = MuxBatch.Parse(Sample.AsMemory(0, length));
            }
            catch (CodecException error)
            {
                Assert.That(error.Reason, Is.AnyOf(CodecError.Truncated, CodecError.Corrupt), $"cut at {length}");
                continue;
            }
            // Cut between two chunks: a valid, shorter batch in which every packet is a prefix of the original.
            var packets = parsed.DecodeAll();
            Assert.That(packets, Has.Length.EqualTo(SamplePackets.Length));
            for (int p = 0; p < packets.Length; p++)
                Assert.That(SamplePackets[p].AsSpan().StartsWith(packets[p]), Is.True, $"cut at {length}, packet {p}");
        }
    }

    [Property(MaxTest = 1000)]
    public Property Bit_flips_are_refused_or_parse_consistently() =>
        Prop.ForAll(Gen.Choose(0, Sample.Length * 8 - 1).ArrayOf().ToArbitrary(), bits =>
        {
            var corrupt = (byte[])Sample.Clone();
            foreach (int bit in bits.Take(4))
                corrupt[bit / 8] ^= (byte)(1 << (bit % 8));
            AssertRefusedOrConsistent(corrupt);
        });

    [Property(MaxTest = 500)]
    public Property Random_bytes_are_refused_or_parse_consistently() =>
        Prop.ForAll(Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().ToArbitrary(), bytes => AssertRefusedOrConsistent(bytes));

    [TestCase(new byte[] { 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01 }, CodecError.Truncated, TestName = "length near 2^63")]
    [TestCase(new byte[] { 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, CodecError.Corrupt, TestName = "length past 64 bits")]
    [TestCase(new byte[] { 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01 }, CodecError.Truncated, TestName = "length of 2 GiB")]
    [TestCase(new byte[] { 0x01, 0x00, 0x80 }, CodecError.Truncated, TestName = "length cut short")]
    [TestCase(new byte[] { 0x01, 0x00 }, CodecError.Truncated, TestName = "no length")]
    [TestCase(new byte[] { 0x01, 0x00, 0x00 }, CodecError.Corrupt, TestName = "empty chunk")]
    [TestCase(new byte[] { 0x02, 0x82, 0x01, 0x41 }, CodecError.Corrupt, TestName = "bitmap names packet 2 of 2")]
    [TestCase(new byte[] { 0x00, 0x00, 0x01, 0x41 }, CodecError.Corrupt, TestName = "chunk in an empty batch")]
    [TestCase(new byte[] { 0x80 }, CodecError.Truncated, TestName = "count cut short")]
    [TestCase(new byte[] { }, CodecError.Truncated, TestName = "nothing at all")]
    [TestCase(new byte[] { 0x81, 0x80, 0x04 }, CodecError.TooLarge, TestName = "65537 packets")]
    [TestCase(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, CodecError.TooLarge, TestName = "2^64 - 1 packets")]
    public void Malformed_batches_are_refused_with_a_reason(byte[] batch, CodecError reason)
    {
        var error = Assert.Throws<CodecException>(() => MuxBatch.Parse(batch));
        Assert.That(error!.Reason, Is.EqualTo(reason));
    }

    [Test]
    public void Packet_limit_is_the_callers()
    {
        var batch = EncodeGeneric(Enumerable.Repeat(new byte[] { 1, 2, 3 }, 10).ToArray());
        Assert.That(MuxBatch.Parse(batch, maxPackets: 10).PacketCount, Is.EqualTo(10));
        Assert.That(Assert.Throws<CodecException>(() => MuxBatch.Parse(batch, maxPackets: 9))!.Reason, Is.EqualTo(CodecError.TooLarge));
    }

    [Test]
    public void Amplifying_batch_parses_in_memory_proportional_to_its_size()
    {
        // 65,536 packets and 100,000 one-byte "all packets" chunks: 6.5 G decoded bytes from 300 kB.
        var batch = new byte[3 + 100_000 * 3];
        batch[0] = 0x80;
        batch[1] = 0x80;
        batch[2] = 0x04;
        for (int c = 0; c < 100_000; c++)
        {
            batch[3 + 3 * c + 1] = 1;
            batch[3 + 3 * c + 2] = (byte)c;
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var parsed = MuxBatch.Parse(batch);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(parsed.PacketCount, Is.EqualTo(65536));
        Assert.That(parsed.GetPacketLength(65535), Is.EqualTo(100_000));
        Assert.That(allocated, Is.LessThan(32L * batch.Length + 16L * 65536), "no per-packet expansion of chunks");
        var slices = new List<ReadOnlyMemory<byte>>();
        parsed.GetPacketSlices(12345, slices);
        Assert.That(slices, Has.Count.EqualTo(100_000));
    }

    [Test]
    public void Reading_a_packet_that_does_not_exist_is_an_argument_error()
    {
        var parsed = MuxBatch.Parse(Sample);
        Assert.Throws<ArgumentOutOfRangeException>(() => parsed.GetPacketLength(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => parsed.GetPacket(SamplePackets.Length));
        Assert.Throws<ArgumentException>(() => parsed.CopyPacketTo(0, new byte[SamplePackets[0].Length - 1]));
    }

    [Test]
    public void Packets_are_slices_of_the_batch()
    {
        var parsed = MuxBatch.Parse(Sample);
        var slices = new List<ReadOnlyMemory<byte>>();
        parsed.GetPacketSlices(1, slices);
        Assert.That(slices, Has.Count.GreaterThan(1));
        foreach (var slice in slices)
            Assert.That(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(slice, out var segment) && segment.Array == Sample, Is.True);
        Assert.That(parsed.GetPacket(1).IsSingleSegment, Is.False);
    }

    private static void AssertRefusedOrConsistent(byte[] batch)
    {
        MuxBatch parsed;
        try
        {
            parsed = MuxBatch.Parse(batch, maxPackets: 4096);
        }
        catch (CodecException)
        {
            return;
        }
        var packets = parsed.DecodeAll();
        var slices = new List<ReadOnlyMemory<byte>>();
        for (int p = 0; p < Math.Min(packets.Length, 50); p++)
        {
            Assert.That(parsed.GetPacketLength(p), Is.EqualTo(packets[p].Length));
            Assert.That(parsed.GetPacket(p).ToArray(), Is.EqualTo(packets[p]));
            slices.Clear();
            parsed.GetPacketSlices(p, slices);
            Assert.That(slices.Sum(s => s.Length), Is.EqualTo(packets[p].Length));
        }
    }

    private static byte[][] SampleSet()
    {
        var random = new Random(42);
        var body = RandomBytes(random, 700);
        return
        [
            [.. RandomBytes(random, 5), .. body],
            [.. RandomBytes(random, 9), .. body, .. RandomBytes(random, 3)],
            body,
            [],
            body[..400],
        ];
    }
}
