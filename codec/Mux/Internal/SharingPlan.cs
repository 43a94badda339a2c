using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace GeoRelay.Codec.Mux.Internal;

/// <summary>
/// The generic encoder's layout: one ordered list of byte ranges ("nodes", each a slice of some packet),
/// where each packet is exactly the nodes that name it, in list order. It becomes the batch by writing
/// each run of neighbouring nodes with the same recipients as one chunk.
/// </summary>
/// <remarks>
/// Packets are added in order. A packet is cut into content-defined chunks; a chunk whose fingerprint
/// names a node that lies after the packet's last used node is confirmed by comparing bytes, then the
/// match is stretched forward across the following nodes and backward into the packet's unmatched bytes,
/// splitting the nodes where the match stops. Unmatched bytes become new nodes, placed just before the
/// match (or after the packet's last node at its end), and their chunks are indexed for later packets.
/// Every byte is hashed at most once and compared at most a few times, so the plan is linear in the input.
/// List order is kept with integer labels (Dietz–Sleator order maintenance) so "comes after" is O(1).
/// </remarks>
internal sealed class SharingPlan : IDisposable
{
    private const int Head = 0;
    private const int Tail = 1;
    private const long MaxLabel = 1L << 62;
    private const long AppendStep = 1L << 32;

    /// <summary>Shorter matches are not worth the chunk boundaries they add (unless they end the packet).</summary>
    private const int MinMatch = 32;

    /// <summary>Splitting a node for fewer bytes than this costs about as much as it saves.</summary>
    private const int MinSplit = 16;

    /// <summary>Nodes with the same fingerprint tried per chunk; bounds the work on repetitive input.</summary>
    private const int MaxCandidates = 8;

    private readonly ReadOnlyMemory<byte>[] _packets;
    private readonly int _packetCount;
    private Node[] _nodes;
    private int _nodeCount;
    private int[] _userPacket; // recipients as persistent linked lists, newest (highest) packet first,
    private int[] _userNext;   // so a split node's two halves share theirs
    private int _userCount;
    private int[] _pendingEnds; // the current packet's unmatched chunks, not yet nodes
    private ulong[] _pendingFingerprints;
    private int _pendingCount;
    private int[] _members;
    private ChunkIndex _index;

    public SharingPlan(ReadOnlyMemory<byte>[] packets, int packetCount, long totalBytes)
    {
        _packets = packets;
        _packetCount = packetCount;
        int expectedChunks = (int)Math.Min(1 << 24, totalBytes / 256 + packetCount + 16);
        _nodes = ArrayPool<Node>.Shared.Rent(expectedChunks);
        _userPacket = ArrayPool<int>.Shared.Rent(expectedChunks);
        _userNext = ArrayPool<int>.Shared.Rent(expectedChunks);
        _pendingEnds = ArrayPool<int>.Shared.Rent(64);
        _pendingFingerprints = ArrayPool<ulong>.Shared.Rent(64);
        _members = ArrayPool<int>.Shared.Rent(packetCount);
        _index = new ChunkIndex(expectedChunks);
        _nodes[Head] = new Node { Prev = -1, Next = Tail, Users = -1, Label = 0 };
        _nodes[Tail] = new Node { Prev = Head, Next = -1, Users = -1, Label = MaxLabel };
        _nodeCount = 2;
    }

    public void AddPacket(int packet)
    {
        var data = _packets[packet].Span;
        int last = Head; // the last node this packet uses: anything it uses next must come after it
        int pendingStart = 0;
        int position = 0;
        _pendingCount = 0;
        while (position < data.Length)
        {
            ulong fingerprint = GearChunker.Fingerprint(data[position..], out ulong rolling);
            int match = FindCandidate(fingerprint, _nodes[last].Label);
            if (match >= 0)
            {
                int forward = ForwardMatchLength(match, data[position..]);
                if (forward >= MinMatch || (forward > 0 && position + forward == data.Length))
                {
                    int matchStart = ExtendBackward(packet, match, data[pendingStart..position], last, out int firstUsed) + pendingStart;
                    FlushPending(packet, pendingStart, matchStart, _nodes[firstUsed].Prev);
                    last = UseForward(packet, match, forward);
                    position += forward;
                    pendingStart = position;
                    _pendingCount = 0;
                    continue;
                }
            }
            int length = GearChunker.ChunkLength(data[position..], rolling);
            AddPending(position + length, fingerprint);
            position += length;
        }
        FlushPending(packet, pendingStart, data.Length, last);
    }

    /// <summary>Writes the layout: neighbouring nodes with the same recipients form one chunk.</summary>
    public void Emit<TSink>(ref TSink sink) where TSink : struct, IChunkSink
    {
        for (int node = _nodes[Head].Next; node != Tail;)
        {
            int users = _nodes[node].Users;
            long length = _nodes[node].Length;
            int groupEnd = _nodes[node].Next;
            for (; groupEnd != Tail && SameUsers(users, _nodes[groupEnd].Users); groupEnd = _nodes[groupEnd].Next)
                length += _nodes[groupEnd].Length;

            sink.Chunk(Members(users), _packetCount, length);
            for (; node != groupEnd; node = _nodes[node].Next)
                sink.Bytes(Bytes(node));
        }
    }

    /// <summary>Of the nodes with this fingerprint, the first one after <paramref name="afterLabel"/>, or -1.</summary>
    private int FindCandidate(ulong fingerprint, long afterLabel)
    {
        // The closest one leaves the packet the most room for later matches.
        int best = -1;
        if (!_index.TryGet(fingerprint, out int node))
            return best;
        for (int tries = 0; node >= 0 && tries < MaxCandidates; tries++, node = _nodes[node].SameFingerprint)
        {
            long label = _nodes[node].Label;
            if (label > afterLabel && (best < 0 || label < _nodes[best].Label))
                best = node;
        }
        return best;
    }

    /// <summary>How many bytes the packet's data matches, starting at <paramref name="node"/> and running on through the list.</summary>
    private int ForwardMatchLength(int node, ReadOnlySpan<byte> data)
    {
        int total = 0;
        for (; node != Tail && total < data.Length; node = _nodes[node].Next)
        {
            var rest = data[total..];
            var bytes = Bytes(node);
            int common = bytes.CommonPrefixLength(rest);
            if (common == bytes.Length)
            {
                total += common;
                continue;
            }
            if (common >= MinSplit || common == rest.Length)
                total += common;
            break;
        }
        return total;
    }

    /// <summary>Marks <paramref name="length"/> matched bytes from <paramref name="node"/> on as used; returns the last node used.</summary>
    private int UseForward(int packet, int node, int length)
    {
        int last = node;
        while (length > 0)
        {
            int nodeLength = _nodes[node].Length;
            if (nodeLength > length)
            {
                Split(node, length);
                nodeLength = length;
            }
            Use(node, packet);
            last = node;
            length -= nodeLength;
            node = _nodes[node].Next;
        }
        return last;
    }

    /// <summary>
    /// Matches the end of <paramref name="unmatched"/> against the nodes before <paramref name="match"/> (but after
    /// <paramref name="last"/>) and uses them. Returns how much of <paramref name="unmatched"/> is left.
    /// </summary>
    private int ExtendBackward(int packet, int match, ReadOnlySpan<byte> unmatched, int last, out int firstUsed)
    {
        firstUsed = match;
        long floor = _nodes[last].Label;
        for (int node = _nodes[match].Prev; !unmatched.IsEmpty && node != Head && _nodes[node].Label > floor; node = _nodes[node].Prev)
        {
            var bytes = Bytes(node);
            int common = CommonSuffixLength(bytes, unmatched);
            if (common == bytes.Length)
            {
                Use(node, packet);
                firstUsed = node;
                unmatched = unmatched[..^common];
                continue;
            }
            if (common >= MinSplit)
            {
                int suffix = Split(node, bytes.Length - common);
                Use(suffix, packet);
                firstUsed = suffix;
                unmatched = unmatched[..^common];
            }
            break;
        }
        return unmatched.Length;
    }

    private void AddPending(int end, ulong fingerprint)
    {
        if (_pendingCount == _pendingEnds.Length)
        {
            Grow(ref _pendingEnds, _pendingCount + 1);
            Grow(ref _pendingFingerprints, _pendingCount + 1);
        }
        _pendingEnds[_pendingCount] = end;
        _pendingFingerprints[_pendingCount] = fingerprint;
        _pendingCount++;
    }

    /// <summary>Turns the packet's unmatched bytes <c>[from, to)</c> into its own nodes after <paramref name="after"/>.</summary>
    private void FlushPending(int packet, int from, int to, int after)
    {
        int start = from;
        for (int i = 0; i < _pendingCount && start < to; i++)
        {
            int end = _pendingEnds[i];
            after = InsertAfter(after, packet, start, Math.Min(end, to) - start, NewUsers(packet, -1));
            // A chunk cut short by the backward match keeps its fingerprint only if its anchor survived.
            if (end <= to || to - start >= GearChunker.AnchorSize)
                _nodes[after].SameFingerprint = _index.Add(_pendingFingerprints[i], after);
            start = end;
        }
    }

    private ReadOnlySpan<byte> Bytes(int node)
    {
        ref readonly var n = ref _nodes[node];
        return _packets[n.Packet].Span.Slice(n.Offset, n.Length);
    }

    private void Use(int node, int packet) => _nodes[node].Users = NewUsers(packet, _nodes[node].Users);

    private int NewUsers(int packet, int next)
    {
        if (_userCount == _userPacket.Length)
        {
            Grow(ref _userPacket, _userCount + 1);
            Grow(ref _userNext, _userCount + 1);
        }
        _userPacket[_userCount] = packet;
        _userNext[_userCount] = next;
        return _userCount++;
    }

    private bool SameUsers(int a, int b)
    {
        for (; a != b; a = _userNext[a], b = _userNext[b])
        {
            if (a < 0 || b < 0 || _userPacket[a] != _userPacket[b])
                return false;
        }
        return true;
    }

    private ReadOnlySpan<int> Members(int users)
    {
        int count = 0;
        for (; users >= 0; users = _userNext[users])
            _members[count++] = _userPacket[users];
        var members = _members.AsSpan(0, count);
        members.Reverse();
        return members;
    }

    /// <summary>Cuts <paramref name="node"/> after <paramref name="at"/> bytes; returns the new second half, which keeps the recipients.</summary>
    private int Split(int node, int at)
    {
        var n = _nodes[node];
        int second = InsertAfter(node, n.Packet, n.Offset + at, n.Length - at, n.Users);
        _nodes[node].Length = at;
        return second;
    }

    private int InsertAfter(int previous, int packet, int offset, int length, int users)
    {
        if (_nodeCount == _nodes.Length)
            Grow(ref _nodes, _nodeCount + 1);
        int node = _nodeCount++;
        int next = _nodes[previous].Next;
        _nodes[node] = new Node { Packet = packet, Offset = offset, Length = length, Users = users, Prev = previous, Next = next, SameFingerprint = -1 };
        _nodes[previous].Next = node;
        _nodes[next].Prev = node;

        long gap = _nodes[next].Label - _nodes[previous].Label;
        if (gap > 1)
            _nodes[node].Label = _nodes[previous].Label + Math.Min(gap / 2, AppendStep);
        else
            Relabel(previous);
        return node;
    }

    /// <summary>
    /// No label is free after <paramref name="previous"/>: widen the window of nodes after it until its label
    /// span exceeds the square of its size, then spread the window's labels evenly (amortised O(log n)).
    /// </summary>
    private void Relabel(int previous)
    {
        long baseLabel = _nodes[previous].Label;
        int count = 1;
        int end = _nodes[_nodes[previous].Next].Next;
        for (; end != Tail && _nodes[end].Label - baseLabel <= (long)count * count; end = _nodes[end].Next)
            count++;
        long step = (_nodes[end].Label - baseLabel) / (count + 1);
        Debug.Assert(step >= 1, "label space exhausted");
        long label = baseLabel;
        for (int node = _nodes[previous].Next; node != end; node = _nodes[node].Next)
            _nodes[node].Label = label += step;
    }

    private static void Grow<T>(ref T[] array, int needed)
    {
        var bigger = ArrayPool<T>.Shared.Rent(Math.Max(needed, array.Length * 2));
        Array.Copy(array, bigger, array.Length);
        ArrayPool<T>.Shared.Return(array);
        array = bigger;
    }

    private static int CommonSuffixLength(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int n = Math.Min(a.Length, b.Length);
        a = a[^n..];
        b = b[^n..];
        int i = n;
        while (i >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(a[(i - 8)..]) == BinaryPrimitives.ReadUInt64LittleEndian(b[(i - 8)..]))
            i -= 8;
        while (i > 0 && a[i - 1] == b[i - 1])
            i--;
        return n - i;
    }

    public void Dispose()
    {
        ArrayPool<Node>.Shared.Return(_nodes);
        ArrayPool<int>.Shared.Return(_userPacket);
        ArrayPool<int>.Shared.Return(_userNext);
        ArrayPool<int>.Shared.Return(_pendingEnds);
        ArrayPool<ulong>.Shared.Return(_pendingFingerprints);
        ArrayPool<int>.Shared.Return(_members);
        _index.Dispose();
    }

    private struct Node
    {
        public int Packet;
        public int Offset;
        public int Length;
        public int Prev;
        public int Next;
        public int Users; // head of the recipient list, -1 for none
        public int SameFingerprint; // older node indexed under the same fingerprint, -1 for none
        public long Label; // strictly increasing along the list
    }
}
