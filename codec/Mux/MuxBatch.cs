using System.Buffers;
using System.Runtime.InteropServices;
using GeoRelay.Codec.Mux.Internal;

namespace GeoRelay.Codec.Mux;

/// <summary>
/// A parsed mux batch (see <see cref="MuxFormat"/>). Packets are read as slices of the batch, without copying.
/// Immutable, so safe to read from several threads.
/// </summary>
/// <remarks>
/// Parsing is O(batch bytes + K) in time and memory whatever the input: chunk bitmaps are kept as runs of
/// packet indexes, never expanded per packet. Reading one packet walks the chunk table once
/// (O(chunks · log runs)); <see cref="DecodeAll"/> is linear in the decoded size.
/// </remarks>
public sealed class MuxBatch
{
    private readonly ReadOnlyMemory<byte> _batch;
    private readonly List<ChunkRef> _chunks;
    private readonly List<int> _runs; // [start, end) pairs of packet indexes; each chunk owns a slice
    private readonly int[] _packetLengths;

    private MuxBatch(ReadOnlyMemory<byte> batch, List<ChunkRef> chunks, List<int> runs, int[] packetLengths)
    {
        _batch = batch;
        _chunks = chunks;
        _runs = runs;
        _packetLengths = packetLengths;
    }

    public int PacketCount => _packetLengths.Length;

    /// <summary>Validates a whole batch. The result keeps <paramref name="batch"/> and hands out slices of it.</summary>
    /// <param name="maxPackets">Largest K accepted; default 65,536.</param>
    /// <exception cref="CodecException">
    /// <see cref="CodecError.TooLarge"/> when K exceeds <paramref name="maxPackets"/> or a packet would exceed
    /// 2 GiB; <see cref="CodecError.Truncated"/> or <see cref="CodecError.Corrupt"/> for anything else malformed.
    /// </exception>
    public static MuxBatch Parse(ReadOnlyMemory<byte> batch, int maxPackets = MuxFormat.DefaultMaxPackets)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxPackets);
        var bytes = batch.Span;
        if (!Varint.TryRead(bytes, out ulong declared, out int position))
            throw CodecException.Truncated("mux packet count");
        if (declared > (ulong)maxPackets)
            throw new CodecException(CodecError.TooLarge, $"mux batch of {declared} packets exceeds the limit of {maxPackets}");
        int packetCount = (int)declared;

        var chunks = new List<ChunkRef>();
        var runs = new List<int>();
        // Per-packet lengths as a difference array over runs, so "all packets" costs O(1), not O(K).
        var lengthSteps = new long[packetCount + 1];
        while (position < bytes.Length)
        {
            int firstRun = runs.Count;
            position += MuxBitmap.Read(bytes[position..], packetCount, runs);
            if (!Varint.TryRead(bytes[position..], out ulong length, out int consumed))
                throw CodecException.Truncated("mux chunk length");
            position += consumed;
            if (length == 0)
                throw CodecException.Corrupt("empty mux chunk");
            if (length > (ulong)(bytes.Length - position))
                throw CodecException.Truncated("mux chunk");

            chunks.Add(new ChunkRef(position, (int)length, firstRun, runs.Count - firstRun));
            for (int r = firstRun; r < runs.Count; r += 2)
            {
                lengthSteps[runs[r]] += (long)length;
                lengthSteps[runs[r + 1]] -= (long)length;
            }
            position += (int)length;
        }

        var packetLengths = new int[packetCount];
        long packetLength = 0;
        for (int p = 0; p < packetCount; p++)
        {
            packetLength += lengthSteps[p];
            if (packetLength > Array.MaxLength)
                throw new CodecException(CodecError.TooLarge, $"mux packet {p} would be {packetLength} bytes");
            packetLengths[p] = (int)packetLength;
        }
        return new MuxBatch(batch, chunks, runs, packetLengths);
    }

    public int GetPacketLength(int packet)
    {
        CheckPacket(packet);
        return _packetLengths[packet];
    }

    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the packet.</exception>
    public void CopyPacketTo(int packet, Span<byte> destination)
    {
        CheckPacket(packet);
        if (destination.Length < _packetLengths[packet])
            throw new ArgumentException($"packet {packet} needs {_packetLengths[packet]} bytes, destination has {destination.Length}", nameof(destination));
        var bytes = _batch.Span;
        int written = 0;
        foreach (ref readonly var chunk in CollectionsMarshal.AsSpan(_chunks))
        {
            if (Contains(chunk, packet))
            {
                bytes.Slice(chunk.Offset, chunk.Length).CopyTo(destination[written..]);
                written += chunk.Length;
            }
        }
    }

    /// <summary>Appends the packet's pieces, in order, to <paramref name="slices"/>: slices of the batch, not copies.</summary>
    public void GetPacketSlices(int packet, List<ReadOnlyMemory<byte>> slices)
    {
        ArgumentNullException.ThrowIfNull(slices);
        CheckPacket(packet);
        foreach (ref readonly var chunk in CollectionsMarshal.AsSpan(_chunks))
        {
            if (Contains(chunk, packet))
                slices.Add(_batch.Slice(chunk.Offset, chunk.Length));
        }
    }

    /// <summary>The packet as a sequence over slices of the batch; allocates one small segment per piece, copies no bytes.</summary>
    public ReadOnlySequence<byte> GetPacket(int packet)
    {
        CheckPacket(packet);
        Segment? first = null, last = null;
        ReadOnlyMemory<byte> only = default;
        foreach (ref readonly var chunk in CollectionsMarshal.AsSpan(_chunks))
        {
            if (!Contains(chunk, packet))
                continue;
            var slice = _batch.Slice(chunk.Offset, chunk.Length);
            if (first is null && only.IsEmpty)
            {
                only = slice;
                continue;
            }
            if (first is null)
                first = last = new Segment(only, 0);
            last = last!.Append(slice);
        }
        if (first is null)
            return new ReadOnlySequence<byte>(only);
        return new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    /// <summary>Every packet, copied out. One pass over the chunks; time linear in the decoded size.</summary>
    public byte[][] DecodeAll()
    {
        int packetCount = PacketCount;
        var packets = new byte[packetCount][];
        for (int p = 0; p < packetCount; p++)
            packets[p] = _packetLengths[p] == 0 ? [] : new byte[_packetLengths[p]];
        var written = new int[packetCount];
        var bytes = _batch.Span;
        var allRuns = CollectionsMarshal.AsSpan(_runs);
        foreach (ref readonly var chunk in CollectionsMarshal.AsSpan(_chunks))
        {
            var source = bytes.Slice(chunk.Offset, chunk.Length);
            int runEnd = chunk.FirstRun + chunk.RunCount;
            for (int r = chunk.FirstRun; r < runEnd; r += 2)
            {
                for (int p = allRuns[r]; p < allRuns[r + 1]; p++)
                {
                    source.CopyTo(packets[p].AsSpan(written[p]));
                    written[p] += source.Length;
                }
            }
        }
        return packets;
    }

    private bool Contains(in ChunkRef chunk, int packet)
    {
        // Runs are ascending and disjoint: find the last one starting at or before the packet.
        var runs = CollectionsMarshal.AsSpan(_runs).Slice(chunk.FirstRun, chunk.RunCount);
        int lo = 0, hi = runs.Length / 2 - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (runs[2 * mid] <= packet)
                lo = mid;
            else
                hi = mid - 1;
        }
        return runs[2 * lo] <= packet && packet < runs[2 * lo + 1];
    }

    private void CheckPacket(int packet)
    {
        if ((uint)packet >= (uint)_packetLengths.Length)
            throw new ArgumentOutOfRangeException(nameof(packet), packet, $"batch has {_packetLengths.Length} packets");
    }

    /// <summary>A chunk's bytes within the batch and its slice of the run table (RunCount counts ints: two per run).</summary>
    private readonly record struct ChunkRef(int Offset, int Length, int FirstRun, int RunCount);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
