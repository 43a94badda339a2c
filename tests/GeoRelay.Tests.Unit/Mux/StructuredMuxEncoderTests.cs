using FsCheck;
using FsCheck.Fluent;
using GeoRelay.Codec;
using GeoRelay.Codec.Mux;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Mux.MuxTestData;
using PropertyAttribute = FsCheck.NUnit.PropertyAttribute;

namespace GeoRelay.Tests.Unit.Mux;

public class StructuredMuxEncoderTests
{
    [Test]
    public void Members_at_different_positions_receive_each_entry_byte_once()
    {
        var random = new Random(5);
        var (entries, offsets) = Entries(random, count: 100, maxSize: 200);
        StructuredPacket[] packets =
        [
            new(RandomBytes(random, 20), 20, 100),  // learner stream
            new(RandomBytes(random, 20), 20, 100),  // up-to-date members
            new(RandomBytes(random, 20), 20, 100),
            new(RandomBytes(random, 20), 0, 100),   // lagging member catching up
            new(RandomBytes(random, 20), 20, 90),   // told less
            new(RandomBytes(random, 20), 50, 50),   // heartbeat only
            new(ReadOnlyMemory<byte>.Empty, 20, 100),
        ];
        var batch = EncodeStructured(packets, entries, offsets);
        AssertDecodes(batch, packets.Select(p => Expected(p, entries, offsets)).ToArray());

        long union = offsets[100] - offsets[0];
        Assert.That(batch.Length, Is.LessThan(union + 6 * 20 + 24));
    }

    [Test]
    public void Disjoint_ranges_cost_exactly_the_unshared_layout()
    {
        var random = new Random(6);
        var (entries, offsets) = Entries(random, count: 300, maxSize: 50);
        var packets = Enumerable.Range(0, 150).Select(i => new StructuredPacket(RandomBytes(random, i % 3), 2 * i, 2 * i + 1 + i % 2)).ToArray();
        var expected = packets.Select(p => Expected(p, entries, offsets)).ToArray();
        var batch = EncodeStructured(packets, entries, offsets);
        AssertDecodes(batch, expected);
        Assert.That(batch.Length, Is.EqualTo(NoSharingLength(expected)));
        Assert.That(batch.Length, Is.EqualTo(GenericMuxEncoderTests.WorstCaseBound(expected)));
    }

    [Property(MaxTest = 200)]
    public Property Any_range_layout_round_trips_and_writes_the_union_once() =>
        Prop.ForAll(Gen.Choose(0, 80).Zip(Gen.Choose(0, int.MaxValue)).ToArbitrary(), sample =>
        {
            var random = new Random(sample.Item2);
            int packetCount = sample.Item1;
            var (entries, offsets) = Entries(random, count: random.Next(0, 60), maxSize: random.Next(1, 400));
            int entryCount = offsets.Length - 1;
            var packets = new StructuredPacket[packetCount];
            for (int p = 0; p < packetCount; p++)
            {
                int from = random.Next(entryCount + 1), to = random.Next(from, entryCount + 1);
                packets[p] = new StructuredPacket(RandomBytes(random, random.Next(3) == 0 ? 0 : random.Next(40)), from, to);
            }
            var expected = packets.Select(p => Expected(p, entries, offsets)).ToArray();

            var batch = EncodeStructured(packets, entries, offsets);
            AssertDecodes(batch, expected);
            Assert.That(batch.Length, Is.LessThanOrEqualTo(NoSharingLength(expected)));

            // Bytes: headers + each covered entry byte once. Chunks: ≤ one per header plus one per piece
            // between range boundaries, each with a bitmap of at most 1 + ceil(80 / 8) and a 2-byte length.
            long headers = packets.Sum(p => (long)p.Header.Length);
            long union = Covered(packets, offsets).Sum(e => (long)offsets[e + 1] - offsets[e]);
            long chunks = packetCount + 2L * packetCount;
            Assert.That(batch.Length, Is.LessThanOrEqualTo(1 + headers + union + chunks * (11 + 2)));
        });

    [Test]
    public void Staggered_ranges_over_a_thousand_members_round_trip()
    {
        var random = new Random(1024);
        var (entries, offsets) = Entries(random, count: 2048, maxSize: 20);
        var packets = Enumerable.Range(0, 1024).Select(i => new StructuredPacket(RandomBytes(random, 8), i, i + 1024)).ToArray();
        var expected = packets.Select(p => Expected(p, entries, offsets)).ToArray();
        var batch = EncodeStructured(packets, entries, offsets);
        AssertDecodes(batch, expected);
        Assert.That(batch.Length, Is.LessThan(offsets[^1] + 1024 * 8 + 2048 * 8));
    }

    [Test]
    public void Empty_entries_and_headers_encode_to_the_count_alone()
    {
        var batch = EncodeStructured([new(default, 0, 0), new(default, 1, 1), new(default, 0, 2)], [], [0, 0, 0]);
        Assert.That(batch, Is.EqualTo(new byte[] { 3 }));
        AssertDecodes(batch, [[], [], []]);
        Assert.That(EncodeStructured([], [], []), Is.EqualTo(new byte[] { 0 }));
    }

    [TestCase(-1, 2)]
    [TestCase(3, 2)]
    [TestCase(0, 4)]
    public void Ranges_outside_the_entries_are_argument_errors(int from, int to)
    {
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentException>(() => StructuredMuxEncoder.Encode(output, [new(default, from, to)], new byte[9], [0, 3, 6, 9]));
        Assert.Throws<ArgumentException>(() => StructuredMuxEncoder.Encode(output, [new(default, 1, 2)], new byte[9], [0, 6, 3, 9]));
        Assert.That(output.WrittenCount, Is.Zero, "nothing is written for bad arguments");
    }

    private static (byte[] Entries, int[] Offsets) Entries(Random random, int count, int maxSize)
    {
        var offsets = new int[count + 1];
        for (int e = 0; e < count; e++)
            offsets[e + 1] = offsets[e] + (random.Next(8) == 0 ? 0 : random.Next(1, maxSize + 1));
        return (RandomBytes(random, offsets[count]), offsets);
    }

    private static IEnumerable<int> Covered(StructuredPacket[] packets, int[] offsets)
    {
        var covered = new bool[offsets.Length - 1];
        foreach (var packet in packets)
        {
            for (int e = packet.FromEntry; e < packet.ToEntryExclusive; e++)
                covered[e] = true;
        }
        return Enumerable.Range(0, covered.Length).Where(e => covered[e]);
    }
}
