using System.Buffers;

namespace GeoRelay.Codec.Mux.Internal;

/// <summary>
/// Where an encoder's chunks go. Encoders run their layout once into <see cref="SizeSink"/> to learn
/// the size, then, if sharing paid off, again into <see cref="WriterSink"/>; as generic struct
/// arguments both passes compile to direct calls.
/// </summary>
internal interface IChunkSink
{
    /// <summary>Starts a chunk; exactly <paramref name="length"/> bytes follow through <see cref="Bytes"/>.</summary>
    void Chunk(ReadOnlySpan<int> members, int packetCount, long length);

    void Bytes(ReadOnlySpan<byte> bytes);
}

internal struct SizeSink : IChunkSink
{
    public long Total;

    public void Chunk(ReadOnlySpan<int> members, int packetCount, long length) =>
        Total += MuxBitmap.Plan(members, packetCount).Size + Varint.SizeOf((ulong)length) + length;

    public readonly void Bytes(ReadOnlySpan<byte> bytes)
    {
    }
}

internal readonly struct WriterSink(IBufferWriter<byte> output) : IChunkSink
{
    public void Chunk(ReadOnlySpan<int> members, int packetCount, long length)
    {
        var plan = MuxBitmap.Plan(members, packetCount);
        var span = output.GetSpan(plan.Size + Varint.MaxLength);
        int written = MuxBitmap.Write(span, members, packetCount, plan);
        written += Varint.Write(span[written..], (ulong)length);
        output.Advance(written);
    }

    public void Bytes(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var span = output.GetSpan();
            int n = Math.Min(span.Length, bytes.Length);
            bytes[..n].CopyTo(span);
            output.Advance(n);
            bytes = bytes[n..];
        }
    }
}

/// <summary>The layout shared by both encoders' fallback: each packet as one single-recipient chunk.</summary>
internal static class UnsharedLayout
{
    /// <summary>Size of chunk i's bitmap, length and bytes when nothing is shared; 0 for an empty packet.</summary>
    public static long ChunkSize(int packet, int packetCount, long length) =>
        length == 0 ? 0 : MuxBitmap.SingleSize(packet, packetCount) + Varint.SizeOf((ulong)length) + length;
}
