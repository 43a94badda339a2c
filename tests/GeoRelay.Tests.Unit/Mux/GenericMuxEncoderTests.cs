using FsCheck;
using System.Buffers;
using FsCheck.Fluent;
using GeoRelay.Codec;
using GeoRelay.Codec.Mux;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Mux.MuxTestData;
using PropertyAttribute = FsCheck.NUnit.PropertyAttribute;

namespace GeoRelay.Tests.Unit.Mux;

public class GenericMuxEncoderTests
{
    [Test]
    public void No_packets_is_a_single_zero_byte()
    {
        var batch = EncodeGeneric([]);
        Assert.That(batch, Is.EqualTo(new byte[] { 0 }));
        AssertDecodes(batch, []);
    }

    [Test]
    public void Empty_packets_cost_nothing_but_the_count()
    {
        var packets = new byte[300][];
        Array.Fill(packets, []);
        var batch = EncodeGeneric(packets);
        Assert.That(batch, Is.EqualTo(new byte[] { 0xAC, 0x02 }));
        AssertDecodes(batch, packets);
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(7)]
    [TestCase(8)]
    [TestCase(112)]
    [TestCase(113)]
    [TestCase(1024)]
    public void Edited_copies_round_trip(int packetCount)
    {
        var random = new Random(packetCount);
        var packets = EditedCopies(random, packetCount, random.Next(0, 3000));
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.LessThanOrEqualTo(NoSharingLength(packets)));
    }

    [Property(MaxTest = 40)]
    public Property Any_number_of_edited_copies_round_trips() =>
        Prop.ForAll(Gen.Choose(1, 1024).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), sample =>
        {
            var random = new Random(sample.Item2);
            var packets = EditedCopies(random, sample.Item1, random.Next(0, 2000));
            var batch = EncodeGeneric(packets);
            AssertDecodes(batch, packets);
            Assert.That(batch.Length, Is.LessThanOrEqualTo(NoSharingLength(packets)));
        });

    [TestCase(2, 10)]
    [TestCase(9, 5000)]
    [TestCase(1024, 40)]
    [TestCase(200, 70_000)]
    public void Identical_packets_are_stored_once(int packetCount, int length)
    {
        var body = RandomBytes(new Random(length), length);
        var packets = Enumerable.Repeat(body, packetCount).ToArray();
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        // count + one "all packets" chunk
        Assert.That(batch.Length, Is.EqualTo(Varint.SizeOf((ulong)packetCount) + 1 + Varint.SizeOf((ulong)length) + length));
    }

    [Test]
    public void Packets_sharing_a_body_behind_different_headers_cost_little_more_than_one_copy()
    {
        var random = new Random(9);
        var body = RandomBytes(random, 64 * 1024);
        var packets = Enumerable.Range(0, 9).Select(_ => (byte[])[.. RandomBytes(random, 20), .. body]).ToArray();
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.LessThan(1.2 * packets[0].Length));
        // in fact: the body once plus nine small header chunks
        Assert.That(batch.Length, Is.LessThan(body.Length + 9 * 20 + 64));
    }

    [Test]
    public void Packets_that_are_prefixes_of_each_other_share_their_common_part()
    {
        var random = new Random(7);
        var longest = RandomBytes(random, 200_000);
        var packets = Enumerable.Range(0, 12).Select(_ => longest[..random.Next(longest.Length + 1)]).Append(longest).Append([]).ToArray();
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.LessThan(longest.Length + packets.Length * 16));
    }

    [Test]
    public void Shared_runs_are_found_at_any_offset_and_in_any_order()
    {
        var random = new Random(3);
        var a = RandomBytes(random, 30_000);
        var b = RandomBytes(random, 30_000);
        var c = RandomBytes(random, 5_000);
        byte[][] packets =
        [
            [.. a, .. b],
            [.. b, .. a],            // order swapped: only one of a, b can be shared with packet 0
            [.. c, .. a, .. c],
            [.. RandomBytes(random, 777), .. a[123..], .. c],
        ];
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        // a and b once, plus one more of them for the swapped packet; c twice (packet 2 holds it twice)
        Assert.That(batch.Length, Is.LessThan(a.Length + b.Length + 30_000 + 2 * c.Length + 777 + 400));
    }

    [Test]
    public void Disjoint_packets_cost_exactly_the_unshared_layout()
    {
        var random = new Random(1);
        var packets = Enumerable.Range(0, 300).Select(i => RandomBytes(random, i % 7 == 0 ? 0 : random.Next(1, 3000))).ToArray();
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.EqualTo(NoSharingLength(packets)));
    }

    [Property(MaxTest = 60)]
    public Property Incompressible_packets_stay_within_the_worst_case_bound() =>
        Prop.ForAll(Gen.Choose(1, 300).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), sample =>
        {
            var random = new Random(sample.Item2);
            var packets = Enumerable.Range(0, sample.Item1).Select(_ => RandomBytes(random, random.Next(0, random.Next(2) == 0 ? 100 : 4000))).ToArray();
            var batch = EncodeGeneric(packets);
            AssertDecodes(batch, packets);
            Assert.That(batch.Length, Is.LessThanOrEqualTo(WorstCaseBound(packets)));
        });

    [Test]
    public void Large_random_packets_round_trip()
    {
        var random = new Random(1 << 20);
        var baseline = RandomBytes(random, 1 << 20);
        var packets = new List<byte[]>
        {
            baseline,
            RandomBytes(random, random.Next(1 << 20)),
            Edit(random, baseline),
            Edit(random, Edit(random, baseline)),
            baseline[random.Next(1 << 19)..],
        };
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.LessThan(packets[1].Length + (1 << 20) + 200_000));
    }

    [Test]
    public void Thousands_of_headers_in_front_of_one_body_are_each_written_once()
    {
        var random = new Random(4096);
        var body = RandomBytes(random, 3000);
        var packets = Enumerable.Range(0, 4096).Select(_ => (byte[])[.. RandomBytes(random, 40), .. body]).ToArray();
        var batch = EncodeGeneric(packets);
        AssertDecodes(batch, packets);
        Assert.That(batch.Length, Is.LessThan(body.Length + 4096 * (40 + 5) + 1000));
    }

    [Test]
    public void Sixty_five_thousand_packets_in_two_groups_take_two_chunks()
    {
        var packets = Enumerable.Range(0, 65536).Select(i => i < 30000 ? new byte[] { 1, 2, 3 } : [4, 5, 6, 7]).ToArray();
        var batch = EncodeGeneric(packets);
        Assert.That(batch.Length, Is.LessThan(30), "two runs-form bitmaps, not 65,536 chunks");
        var parsed = MuxBatch.Parse(batch);
        var decoded = parsed.DecodeAll();
        for (int i = 0; i < packets.Length; i++)
            Assert.That(decoded[i], Is.EqualTo(packets[i]));
        Assert.That(parsed.GetPacket(65535).ToArray(), Is.EqualTo(packets[65535]));
    }

    [Test]
    public void Sixty_five_thousand_distinct_packets_cost_the_unshared_layout()
    {
        var packets = Enumerable.Range(0, 65536).Select(i => new byte[] { (byte)i, (byte)(i >> 8), 0xEE }).ToArray();
        var batch = EncodeGeneric(packets);
        Assert.That(batch.Length, Is.EqualTo(WorstCaseBound(packets)));
        var decoded = MuxBatch.Parse(batch).DecodeAll();
        for (int i = 0; i < packets.Length; i++)
            Assert.That(decoded[i], Is.EqualTo(packets[i]));
    }

    [Property(MaxTest = 60)]
    public Property Repetitive_packets_round_trip() =>
        Prop.ForAll(Gen.Choose(1, 40).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), sample =>
        {
            // Few distinct bytes and long runs: many equal fingerprints, cuts everywhere or nowhere.
            var random = new Random(sample.Item2);
            var packets = new byte[sample.Item1][];
            for (int p = 0; p < packets.Length; p++)
            {
                var packet = new byte[random.Next(0, 6000)];
                for (int i = 0; i < packet.Length;)
                {
                    byte value = (byte)random.Next(3);
                    for (int run = random.Next(1, random.Next(2) == 0 ? 4 : 300); run > 0 && i < packet.Length; run--)
                        packet[i++] = value;
                }
                packets[p] = packet;
            }
            var batch = EncodeGeneric(packets);
            AssertDecodes(batch, packets);
            Assert.That(batch.Length, Is.LessThanOrEqualTo(NoSharingLength(packets)));
        });

    [Test]
    public void Null_arguments_are_refused()
    {
        Assert.Throws<ArgumentNullException>(() => GenericMuxEncoder.Encode(null!, []));
        Assert.Throws<ArgumentNullException>(() => GenericMuxEncoder.Encode(new System.Buffers.ArrayBufferWriter<byte>(), null!));
    }

    /// <summary>The bound as documented: varint(K) + Σ over non-empty packets of (bytes + varint(length) + bitmap(i)).</summary>
    internal static long WorstCaseBound(IReadOnlyList<byte[]> packets)
    {
        long bound = Varint.SizeOf((ulong)packets.Count);
        for (int i = 0; i < packets.Count; i++)
        {
            int length = packets[i].Length;
            if (length > 0)
                bound += length + Varint.SizeOf((ulong)length) + (packets.Count == 1 || i < 112 ? 1 : 1 + Varint.SizeOf((ulong)i));
        }
        Assert.That(NoSharingLength(packets), Is.EqualTo(bound), "MuxFormat.NoSharingLength matches its documentation");
        return bound;
    }

    /// <summary>Copies of one random base, each cut, spliced and patched differently: sharing in every shape.</summary>
    private static byte[][] EditedCopies(Random random, int packetCount, int baseLength)
    {
        var baseline = RandomBytes(random, baseLength);
        var packets = new byte[packetCount][];
        for (int i = 0; i < packetCount; i++)
        {
            packets[i] = random.Next(10) switch
            {
                0 => [],
                1 => RandomBytes(random, random.Next(300)),
                2 => baseline,
                _ => Edit(random, baseline),
            };
        }
        return packets;
    }

    private static byte[] Edit(Random random, byte[] source)
    {
        var result = new List<byte>(source);
        for (int edits = random.Next(1, 5); edits > 0; edits--)
        {
            int at = random.Next(result.Count + 1);
            switch (random.Next(5))
            {
                case 0:
                    result.InsertRange(at, RandomBytes(random, random.Next(1, 200)));
                    break;
                case 1:
                    result.RemoveRange(at, random.Next(result.Count - at + 1));
                    break;
                case 2:
                    result.RemoveRange(0, at);
                    break;
                case 3:
                    result.RemoveRange(at, result.Count - at);
                    break;
                default:
                    if (at < result.Count)
                        result[at] ^= 0x5A;
                    break;
            }
        }
        return [.. result];
    }
}
