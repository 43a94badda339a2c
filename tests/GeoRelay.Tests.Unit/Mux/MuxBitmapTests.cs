using FsCheck;
using FsCheck.Fluent;
using PropertyAttribute = FsCheck.NUnit.PropertyAttribute;
using GeoRelay.Codec;
using GeoRelay.Codec.Mux.Internal;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Mux;

public class MuxBitmapTests
{
    [TestCase(1)]
    [TestCase(5)]
    [TestCase(1000)]
    [TestCase(65536)]
    public void All_packets_is_one_zero_byte(int packetCount)
    {
        var bytes = Encode(Range(0, packetCount), packetCount);
        Assert.That(bytes, Is.EqualTo(new byte[] { 0x00 }));
        Assert.That(Decode(bytes, packetCount), Is.EqualTo(Range(0, packetCount)));
    }

    [Test]
    public void Single_packet_below_112_is_one_byte_for_any_batch_size()
    {
        foreach (int packetCount in new[] { 2, 112, 65536 })
        {
            for (int i = 0; i < Math.Min(packetCount, 112); i++)
            {
                var bytes = Encode([i], packetCount);
                Assert.That(bytes, Has.Length.EqualTo(1), $"packet {i} of {packetCount}");
                Assert.That(Decode(bytes, packetCount), Is.EqualTo(new[] { i }));
            }
        }
    }

    [Test]
    public void Every_set_of_up_to_seven_packets_is_one_byte()
    {
        for (int packetCount = 1; packetCount <= 7; packetCount++)
        {
            for (int mask = 1; mask < 1 << packetCount; mask++)
            {
                var set = Range(0, packetCount).Where(i => (mask >> i & 1) != 0).ToArray();
                var bytes = Encode(set, packetCount);
                Assert.That(bytes, Has.Length.EqualTo(1), $"mask {mask:b} of {packetCount}");
                Assert.That(Decode(bytes, packetCount), Is.EqualTo(set));
            }
        }
    }

    [TestCase(112, 1)]
    [TestCase(127, 1)]
    [TestCase(128, 2)]
    [TestCase(16_383, 2)]
    [TestCase(16_384, 3)]
    [TestCase(65_535, 3)]
    public void Single_packet_past_111_is_a_tag_and_a_varint(int index, int varintBytes)
    {
        var bytes = Encode([index], 65536);
        Assert.That(bytes, Has.Length.EqualTo(1 + varintBytes));
        Assert.That(bytes[0], Is.EqualTo(0xF0));
        Assert.That(MuxBitmap.SingleSize(index, 65536), Is.EqualTo(1 + varintBytes));
        Assert.That(Decode(bytes, 65536), Is.EqualTo(new[] { index }));
    }

    private static IEnumerable<TestCaseData> LargeSets()
    {
        const int k = 65536;
        yield return new TestCaseData(new[] { 5, 1000, 60000 }, 0xF1).SetName("sparse");
        yield return new TestCaseData(Range(0, 30000).Concat(Range(40000, 10000)).ToArray(), 0xF2).SetName("runs");
        yield return new TestCaseData(Range(0, k).Where(i => i % 3 != 0).ToArray(), 0xF3).SetName("raw mask");
        yield return new TestCaseData(Range(0, k).Where(i => i != 12345).ToArray(), 0xF8).SetName("all but one");
        yield return new TestCaseData(Range(0, k).Where(i => i is not (7 or 20000 or 65535)).ToArray(), 0xF9).SetName("all but a few");
        yield return new TestCaseData(Range(100, 30000).Concat(Range(40000, 25536)).ToArray(), 0xFA).SetName("all but two runs");
    }

    [TestCaseSource(nameof(LargeSets))]
    public void Large_batches_use_the_smallest_extended_form(int[] set, int tag)
    {
        var bytes = Encode(set, 65536);
        Assert.That(bytes[0], Is.EqualTo(tag));
        Assert.That(bytes, Has.Length.LessThanOrEqualTo(1 + 65536 / 8));
        Assert.That(Decode(bytes, 65536), Is.EqualTo(set));
    }

    [Property(MaxTest = 200)]
    public Property Any_set_round_trips_in_the_size_it_plans() =>
        Prop.ForAll(SetGen().ToArbitrary(), sample =>
        {
            var (set, packetCount) = sample;
            var plan = MuxBitmap.Plan(set, packetCount);
            var bytes = Encode(set, packetCount);
            Assert.That(bytes, Has.Length.EqualTo(plan.Size));
            Assert.That(bytes, Has.Length.LessThanOrEqualTo(set.Length == 1 ? MuxBitmap.SingleSize(set[0], packetCount) : 1 + (packetCount + 7) / 8));
            var runs = new List<int> { 99, 100 }; // a previous chunk's run, which must stay separate
            int consumed = MuxBitmap.Read([.. bytes, 0xAB], packetCount, runs);
            Assert.That(consumed, Is.EqualTo(bytes.Length));
            Assert.That(runs[0] == 99 && runs[1] == 100, Is.True, "the previous chunk's run is untouched");
            Assert.That(Expand(runs.GetRange(2, runs.Count - 2)).AsSpan().SequenceEqual(set), Is.True, "decoded set");
        });

    [TestCase(new byte[] { 0x85 }, 5, TestName = "single byte past K")]
    [TestCase(new byte[] { 0x20 }, 5, TestName = "inline mask past K")]
    [TestCase(new byte[] { 0xF0, 0x05 }, 5, TestName = "extended single past K")]
    [TestCase(new byte[] { 0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, 5, TestName = "huge varint index")]
    [TestCase(new byte[] { 0xF1, 0x01, 0x03, 0x01 }, 5, TestName = "sparse walks past K")]
    [TestCase(new byte[] { 0xF1, 0x05 }, 5, TestName = "sparse count past K")]
    [TestCase(new byte[] { 0xF2, 0x00, 0x02, 0x03 }, 5, TestName = "run ends past K")]
    [TestCase(new byte[] { 0xF3, 0x20 }, 5, TestName = "raw mask bit past K")]
    [TestCase(new byte[] { 0xFB, 0x01 }, 5, TestName = "complemented raw mask")]
    [TestCase(new byte[] { 0xF4 }, 5, TestName = "reserved form")]
    [TestCase(new byte[] { 0xFF }, 5, TestName = "reserved complemented form")]
    [TestCase(new byte[] { 0xFA, 0x00, 0x00, 0x04 }, 5, TestName = "complement of everything")]
    [TestCase(new byte[] { 0x00 }, 0, TestName = "any chunk when K is zero")]
    public void Reader_rejects_sets_outside_the_batch(byte[] bitmap, int packetCount)
    {
        var error = Assert.Throws<CodecException>(() => MuxBitmap.Read(bitmap, packetCount, []));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.Corrupt));
    }

    [TestCase(new byte[] { })]
    [TestCase(new byte[] { 0xF0 })]
    [TestCase(new byte[] { 0xF0, 0x80 })]
    [TestCase(new byte[] { 0xF1, 0x02, 0x01 })]
    [TestCase(new byte[] { 0xF2, 0x00, 0x01 })]
    [TestCase(new byte[] { 0xF3 })]
    public void Reader_reports_a_truncated_bitmap(byte[] bitmap)
    {
        var error = Assert.Throws<CodecException>(() => MuxBitmap.Read(bitmap, 200, []));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.Truncated));
    }

    /// <summary>K from tiny to 65,536, and sets from one packet to all of them, dense, sparse, or in runs.</summary>
    private static Gen<(int[] Set, int PacketCount)> SetGen() =>
        from packetCount in Gen.OneOf(Gen.Choose(1, 20), Gen.Choose(1, 300), Gen.Choose(1, 65536), Gen.Constant(65536))
        from seed in Gen.Choose(0, int.MaxValue)
        from shape in Gen.Choose(0, 4)
        select (RandomSet(new Random(seed), packetCount, shape), packetCount);

    private static int[] RandomSet(Random random, int packetCount, int shape)
    {
        var member = new bool[packetCount];
        switch (shape)
        {
            case 0: // a few scattered
                for (int i = random.Next(1, 8); i > 0; i--)
                    member[random.Next(packetCount)] = true;
                break;
            case 1: // dense
                for (int i = 0; i < packetCount; i++)
                    member[i] = random.Next(4) != 0;
                break;
            case 2: // runs
                for (int runs = random.Next(1, 6); runs > 0; runs--)
                {
                    int start = random.Next(packetCount);
                    member.AsSpan(start, Math.Min(packetCount - start, random.Next(1, packetCount / 3 + 2))).Fill(true);
                }
                break;
            case 3: // all but a few
                member.AsSpan().Fill(true);
                for (int i = random.Next(1, 5); i > 0; i--)
                    member[random.Next(packetCount)] = false;
                break;
            default: // coin flips
                for (int i = 0; i < packetCount; i++)
                    member[i] = random.Next(2) == 0;
                break;
        }
        member[random.Next(packetCount)] = true; // never empty
        var set = new List<int>();
        for (int i = 0; i < packetCount; i++)
        {
            if (member[i])
                set.Add(i);
        }
        return [.. set];
    }

    private static byte[] Encode(int[] set, int packetCount)
    {
        var plan = MuxBitmap.Plan(set, packetCount);
        var bytes = new byte[plan.Size];
        Assert.That(MuxBitmap.Write(bytes, set, packetCount, plan), Is.EqualTo(plan.Size));
        return bytes;
    }

    private static int[] Decode(byte[] bytes, int packetCount)
    {
        var runs = new List<int>();
        Assert.That(MuxBitmap.Read(bytes, packetCount, runs), Is.EqualTo(bytes.Length));
        return Expand(runs);
    }

    private static int[] Expand(List<int> runs)
    {
        var members = new List<int>();
        for (int r = 0; r < runs.Count; r += 2)
        {
            if (runs[r] >= runs[r + 1] || (r > 0 && runs[r] <= runs[r - 1]))
                Assert.Fail($"runs must be non-empty, sorted and apart: [{runs[r]}, {runs[r + 1]}) at {r / 2}");
            for (int i = runs[r]; i < runs[r + 1]; i++)
                members.Add(i);
        }
        return [.. members];
    }

    private static int[] Range(int start, int count) => Enumerable.Range(start, count).ToArray();
}
