using System.Buffers;
using System.Numerics;
using GeoRelay.Codec.Mux.Internal;

namespace GeoRelay.Codec.Mux;

/// <summary>
/// Mux encoder for packets of the form <c>header_i + entries[from_i .. to_i)</c>, as the leader builds them:
/// every byte of the entry region is written once, however many packets carry it, and no bytes are compared.
/// </summary>
/// <remarks>
/// The entry region is cut at every distinct range boundary (as byte offsets); each piece becomes one chunk
/// whose bitmap names the packets covering it, and pieces nobody covers are skipped. Two neighbouring pieces
/// never have the same recipients (some range starts or ends between them), so no merging is needed. Each
/// packet's header is its own single-recipient chunk, written just before the first piece of its range, or
/// folded into that piece when the piece is the packet's alone. Packets whose ranges are disjoint therefore
/// cost one chunk each, exactly as an unshared batch; if tiny overlaps ever make the layout bigger than
/// <see cref="MuxFormat.NoSharingLength"/>, the unshared layout is written instead, so that bound always holds.
/// Time is O(K log K) for sorting range boundaries plus, per piece, O(K/64 + recipients); the bytes are
/// copied once.
/// </remarks>
public static class StructuredMuxEncoder
{
    /// <param name="output">Receives the batch.</param>
    /// <param name="packets">Packet i is <c>Header + entryBytes[entryOffsets[FromEntry] .. entryOffsets[ToEntryExclusive])</c>.</param>
    /// <param name="entryBytes">The entries, back to back.</param>
    /// <param name="entryOffsets">entryCount + 1 ascending offsets into <paramref name="entryBytes"/>; entry e is <c>[offsets[e], offsets[e + 1])</c>.</param>
    /// <exception cref="ArgumentException">A range is reversed or reaches past the entries.</exception>
    public static void Encode(IBufferWriter<byte> output, ReadOnlySpan<StructuredPacket> packets, ReadOnlySpan<byte> entryBytes, ReadOnlySpan<int> entryOffsets)
    {
        ArgumentNullException.ThrowIfNull(output);
        using var layout = new RangeLayout(packets, entryBytes, entryOffsets);
        var size = new SizeSink();
        layout.Emit(ref size);
        Varint.Write(output, (ulong)packets.Length);
        var writer = new WriterSink(output);
        if (size.Total <= layout.UnsharedSize)
            layout.Emit(ref writer);
        else
            layout.EmitUnshared(ref writer);
    }

    /// <summary>The packets' byte ranges, sorted by start and by end, ready to sweep.</summary>
    private ref struct RangeLayout
    {
        private readonly ReadOnlySpan<StructuredPacket> _packets;
        private readonly ReadOnlySpan<byte> _entries;
        private readonly int _ranged; // packets with at least one entry byte
        private int[] _byteRanges;    // [2p] = start, [2p + 1] = end, in entryBytes
        private int[] _members;       // scratch: the current piece's recipients, ascending
        private int[] _startAt, _startPacket, _endAt, _endPacket;
        private ulong[] _active;

        public readonly long UnsharedSize;

        public RangeLayout(ReadOnlySpan<StructuredPacket> packets, ReadOnlySpan<byte> entryBytes, ReadOnlySpan<int> entryOffsets)
        {
            int k = packets.Length;
            _packets = packets;
            _entries = entryBytes;
            // Validate every range before renting anything, so a bad argument leaks nothing.
            for (int p = 0; p < k; p++)
            {
                var (start, end) = ByteRange(packets[p], entryBytes.Length, entryOffsets);
                UnsharedSize += UnsharedLayout.ChunkSize(p, k, (long)packets[p].Header.Length + end - start);
                if (start < end)
                    _ranged++;
            }

            _byteRanges = ArrayPool<int>.Shared.Rent(2 * k);
            _members = ArrayPool<int>.Shared.Rent(k);
            _startAt = ArrayPool<int>.Shared.Rent(_ranged);
            _startPacket = ArrayPool<int>.Shared.Rent(_ranged);
            _endAt = ArrayPool<int>.Shared.Rent(_ranged);
            _endPacket = ArrayPool<int>.Shared.Rent(_ranged);
            _active = ArrayPool<ulong>.Shared.Rent((k + 63) / 64);
            int ranged = 0;
            for (int p = 0; p < k; p++)
            {
                var (start, end) = ByteRange(packets[p], entryBytes.Length, entryOffsets);
                _byteRanges[2 * p] = start;
                _byteRanges[2 * p + 1] = end;
                if (start < end)
                {
                    _startAt[ranged] = start;
                    _startPacket[ranged] = p;
                    _endAt[ranged] = end;
                    _endPacket[ranged] = p;
                    ranged++;
                }
            }
            Array.Sort(_startAt, _startPacket, 0, _ranged);
            Array.Sort(_endAt, _endPacket, 0, _ranged);
        }

        private static (int Start, int End) ByteRange(in StructuredPacket packet, int entryLength, ReadOnlySpan<int> entryOffsets)
        {
            int from = packet.FromEntry, to = packet.ToEntryExclusive;
            if (from < 0 || to < from)
                throw new ArgumentException($"entry range [{from}, {to}) is reversed or negative", "packets");
            if (from == to)
                return (0, 0);
            if (to >= entryOffsets.Length)
                throw new ArgumentException($"entry range [{from}, {to}) ends past the {Math.Max(0, entryOffsets.Length - 1)} entries", nameof(entryOffsets));
            int start = entryOffsets[from], end = entryOffsets[to];
            if (start < 0 || end < start || end > entryLength)
                throw new ArgumentException($"entry offsets [{start}, {end}) are not ascending within the {entryLength} entry bytes", nameof(entryOffsets));
            return (start, end);
        }

        public readonly void Emit<TSink>(ref TSink sink) where TSink : struct, IChunkSink
        {
            int k = _packets.Length, n = _ranged;
            Array.Clear(_active, 0, (k + 63) / 64);
            int activeCount = 0, nextStart = 0, nextEnd = 0;
            while (nextEnd < n)
            {
                int at = nextStart < n ? Math.Min(_startAt[nextStart], _endAt[nextEnd]) : _endAt[nextEnd];
                for (; nextEnd < n && _endAt[nextEnd] == at; nextEnd++, activeCount--)
                    _active[_endPacket[nextEnd] >> 6] &= ~(1UL << _endPacket[nextEnd]);
                int firstStarted = nextStart;
                for (; nextStart < n && _startAt[nextStart] == at; nextStart++, activeCount++)
                    _active[_startPacket[nextStart] >> 6] |= 1UL << _startPacket[nextStart];
                if (activeCount == 0)
                    continue;

                int pieceEnd = nextStart < n ? Math.Min(_startAt[nextStart], _endAt[nextEnd]) : _endAt[nextEnd];
                var piece = _entries[at..pieceEnd];
                var started = _startPacket.AsSpan(firstStarted, nextStart - firstStarted);
                if (activeCount == 1 && started.Length == 1 && !_packets[started[0]].Header.IsEmpty)
                {
                    // A packet's private first piece carries its header: one chunk instead of two.
                    var header = _packets[started[0]].Header.Span;
                    sink.Chunk(started, k, header.Length + piece.Length);
                    sink.Bytes(header);
                    sink.Bytes(piece);
                    continue;
                }
                foreach (int packet in started)
                    EmitHeader(ref sink, packet);
                sink.Chunk(ActiveMembers(activeCount), k, piece.Length);
                sink.Bytes(piece);
            }

            // Packets without entry bytes have only their header, which may go anywhere.
            for (int p = 0; p < k; p++)
            {
                if (_byteRanges[2 * p] == _byteRanges[2 * p + 1])
                    EmitHeader(ref sink, p);
            }
        }

        public readonly void EmitUnshared<TSink>(ref TSink sink) where TSink : struct, IChunkSink
        {
            int k = _packets.Length;
            for (int p = 0; p < k; p++)
            {
                var header = _packets[p].Header.Span;
                var entries = _entries[_byteRanges[2 * p].._byteRanges[2 * p + 1]];
                if (header.Length + entries.Length == 0)
                    continue;
                sink.Chunk(new ReadOnlySpan<int>(in p), k, header.Length + entries.Length);
                sink.Bytes(header);
                sink.Bytes(entries);
            }
        }

        private readonly void EmitHeader<TSink>(ref TSink sink, int packet) where TSink : struct, IChunkSink
        {
            var header = _packets[packet].Header.Span;
            if (header.IsEmpty)
                return;
            sink.Chunk(new ReadOnlySpan<int>(in packet), _packets.Length, header.Length);
            sink.Bytes(header);
        }

        private readonly ReadOnlySpan<int> ActiveMembers(int count)
        {
            int written = 0;
            for (int word = 0; written < count; word++)
            {
                for (ulong bits = _active[word]; bits != 0; bits &= bits - 1)
                    _members[written++] = word * 64 + BitOperations.TrailingZeroCount(bits);
            }
            return _members.AsSpan(0, count);
        }

        public void Dispose()
        {
            ArrayPool<int>.Shared.Return(_byteRanges);
            ArrayPool<int>.Shared.Return(_members);
            ArrayPool<int>.Shared.Return(_startAt);
            ArrayPool<int>.Shared.Return(_startPacket);
            ArrayPool<int>.Shared.Return(_endAt);
            ArrayPool<int>.Shared.Return(_endPacket);
            ArrayPool<ulong>.Shared.Return(_active);
            this = default;
        }
    }
}
