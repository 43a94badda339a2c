using System.Buffers;
using GeoRelay.Codec.Mux;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Mux;

internal static class MuxTestData
{
    public static byte[] EncodeGeneric(IReadOnlyList<byte[]> packets)
    {
        var memories = new ReadOnlyMemory<byte>[packets.Count];
        for (int i = 0; i < packets.Count; i++)
            memories[i] = packets[i];
        var output = new ArrayBufferWriter<byte>();
        GenericMuxEncoder.Encode(output, memories);
        return output.WrittenSpan.ToArray();
    }

    public static byte[] EncodeStructured(StructuredPacket[] packets, byte[] entries, int[] offsets)
    {
        var output = new ArrayBufferWriter<byte>();
        StructuredMuxEncoder.Encode(output, packets, entries, offsets);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>What a structured packet means, built the slow and obvious way.</summary>
    public static byte[] Expected(StructuredPacket packet, byte[] entries, int[] offsets)
    {
        if (packet.FromEntry == packet.ToEntryExclusive)
            return packet.Header.ToArray();
        var body = entries.AsSpan(offsets[packet.FromEntry]..offsets[packet.ToEntryExclusive]);
        return [.. packet.Header.Span, .. body];
    }

    /// <summary>Parses the batch and checks every read path returns exactly <paramref name="expected"/>.</summary>
    public static void AssertDecodes(byte[] batch, IReadOnlyList<byte[]> expected)
    {
        var parsed = MuxBatch.Parse(batch);
        Assert.That(parsed.PacketCount, Is.EqualTo(expected.Count));
        var all = parsed.DecodeAll();
        var slices = new List<ReadOnlyMemory<byte>>();
        for (int p = 0; p < expected.Count; p++)
        {
            Assert.That(parsed.GetPacketLength(p), Is.EqualTo(expected[p].Length), $"length of packet {p}");
            Assert.That(all[p].AsSpan().SequenceEqual(expected[p]), Is.True, $"DecodeAll packet {p}");

            // The other paths are O(chunks) per packet; on big batches spot-check a few packets.
            if (expected.Count > 64 && p % 61 != 0 && p != expected.Count - 1)
                continue;
            slices.Clear();
            parsed.GetPacketSlices(p, slices);
            Assert.That(Concat(slices).AsSpan().SequenceEqual(expected[p]), Is.True, $"slices of packet {p}");
            Assert.That(parsed.GetPacket(p).ToArray().AsSpan().SequenceEqual(expected[p]), Is.True, $"sequence of packet {p}");
            var copy = new byte[expected[p].Length];
            parsed.CopyPacketTo(p, copy);
            Assert.That(copy.AsSpan().SequenceEqual(expected[p]), Is.True, $"copy of packet {p}");
        }
    }

    public static long NoSharingLength(IReadOnlyList<byte[]> packets)
    {
        var lengths = new int[packets.Count];
        for (int i = 0; i < lengths.Length; i++)
            lengths[i] = packets[i].Length;
        return MuxFormat.NoSharingLength(lengths);
    }

    public static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Concat(List<ReadOnlyMemory<byte>> slices)
    {
        var result = new ArrayBufferWriter<byte>();
        foreach (var slice in slices)
            result.Write(slice.Span);
        return result.WrittenSpan.ToArray();
    }
}
