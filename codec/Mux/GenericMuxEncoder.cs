using System.Buffers;
using GeoRelay.Codec.Mux.Internal;

namespace GeoRelay.Codec.Mux;

/// <summary>
/// Mux encoder for arbitrary packets: finds byte runs that several packets share and writes them once.
/// </summary>
/// <remarks>
/// Packets are cut into content-defined chunks (gear rolling hash, ~64 B..4 KiB, ~320 B on average); a chunk
/// seen in an earlier packet is confirmed by comparing bytes and the match is then stretched byte-exactly in
/// both directions, so shared runs are found wherever they sit and whatever their length beyond ~one chunk.
/// Time and memory are linear in the total input (see <c>Internal/SharingPlan.cs</c>). The output is never
/// larger than <see cref="MuxFormat.NoSharingLength"/>: if sharing would not pay, the unshared layout is written.
/// </remarks>
public static class GenericMuxEncoder
{
    public static void Encode(IBufferWriter<byte> output, IReadOnlyList<ReadOnlyMemory<byte>> packets)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(packets);
        int packetCount = packets.Count;
        var memories = ArrayPool<ReadOnlyMemory<byte>>.Shared.Rent(packetCount);
        try
        {
            long unsharedSize = 0, totalBytes = 0;
            for (int p = 0; p < packetCount; p++)
            {
                memories[p] = packets[p];
                totalBytes += memories[p].Length;
                unsharedSize += UnsharedLayout.ChunkSize(p, packetCount, memories[p].Length);
            }

            Varint.Write(output, (ulong)packetCount);
            var writer = new WriterSink(output);
            if (packetCount > 1 && totalBytes > 0)
            {
                using var plan = new SharingPlan(memories, packetCount, totalBytes);
                for (int p = 0; p < packetCount; p++)
                    plan.AddPacket(p);
                var size = new SizeSink();
                plan.Emit(ref size);
                if (size.Total <= unsharedSize)
                {
                    plan.Emit(ref writer);
                    return;
                }
            }
            for (int p = 0; p < packetCount; p++)
            {
                var packet = memories[p].Span;
                if (packet.IsEmpty)
                    continue;
                writer.Chunk(new ReadOnlySpan<int>(in p), packetCount, packet.Length);
                writer.Bytes(packet);
            }
        }
        finally
        {
            ArrayPool<ReadOnlyMemory<byte>>.Shared.Return(memories, clearArray: true);
        }
    }
}
