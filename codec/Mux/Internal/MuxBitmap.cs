namespace GeoRelay.Codec.Mux.Internal;

/// <summary>
/// The recipient set of one mux chunk: which of the batch's K packets the chunk's bytes belong to.
/// </summary>
/// <remarks>
/// <code>
/// first byte  meaning                                         total size
/// ──────────  ──────────────────────────────────────────────  ──────────────────
/// 0x00        all K packets                                   1
/// 0x01..0x7F  inline mask: bit j (j = 0..6) ⇒ packet j        1   (any set when K ≤ 7)
/// 0x80..0xEF  single packet (b - 0x80), i.e. packets 0..111   1
/// 0xF0..0xFF  extended: 1111 C FFF, then the form's body       1 + body
///
///   C = 1: the set is every packet NOT listed by the body (complement); not allowed with F = 3.
///   F = 0  single   ┌─────────────┐
///                   │ varint index│
///                   └─────────────┘
///   F = 1  sparse   ┌────────────────┬─────────────┬───────────────┬─────┐
///                   │ varint count-1 │ varint first│ varint gap-1  │ ... │   ascending indexes
///                   └────────────────┴─────────────┴───────────────┴─────┘
///   F = 2  runs     ┌───────────────┬──────────────┬──────────────┬─────┐
///                   │ varint runs-1 │ varint start │ varint len-1 │ ... │   then (varint skip-1,
///                   └───────────────┴──────────────┴──────────────┴─────┘    varint len-1) per run;
///                                                                           skip = start - previous end
///   F = 3  raw      ┌──────────────────────────┐
///                   │ ceil(K/8) bytes, bit j of │   bits at or past K must be zero
///                   │ byte j/8 ⇒ packet j       │
///                   └──────────────────────────┘
///   F = 4..7 reserved.
/// </code>
/// Every form decodes to a non-empty set of indexes below K (anything else is corrupt), so a chunk
/// always has a recipient. The encoder picks the smallest form; ties go to the one listed first.
/// Sets are passed around as ascending index lists, so work is linear in the set's size.
/// </remarks>
internal static class MuxBitmap
{
    public const byte AllByte = 0x00;
    public const int InlineMaskBits = 7;
    public const byte SingleByteBase = 0x80;
    public const int SingleByteCount = 0xF0 - SingleByteBase; // 112
    public const byte ExtendedBase = 0xF0;
    public const byte ComplementFlag = 0x08;

    private const int FormSingle = 0;
    private const int FormSparse = 1;
    private const int FormRuns = 2;
    private const int FormRaw = 3;

    /// <summary>Size of the bitmap that names packet <paramref name="index"/> alone among <paramref name="packetCount"/>.</summary>
    public static int SingleSize(int index, int packetCount) =>
        packetCount == 1 || index < SingleByteCount ? 1 : 1 + Varint.SizeOf((ulong)index);

    /// <summary>Chooses the smallest encoding of a set.</summary>
    /// <param name="members">Ascending, distinct, non-empty, all below <paramref name="packetCount"/>.</param>
    public static BitmapPlan Plan(ReadOnlySpan<int> members, int packetCount)
    {
        int count = members.Length;
        if (count == packetCount)
            return new BitmapPlan(BitmapKind.All, 1);
        if (count == 1 && members[0] < SingleByteCount)
            return new BitmapPlan(BitmapKind.SingleByte, 1);
        if (members[count - 1] < InlineMaskBits)
            return new BitmapPlan(BitmapKind.InlineMask, 1);

        var best = new BitmapPlan(BitmapKind.Raw, 1 + (packetCount + 7) / 8);
        var listed = ListCost.Of(new RunCursor(members, packetCount, complement: false));
        var missing = ListCost.Of(new RunCursor(members, packetCount, complement: true));
        if (count == 1)
            best = Smaller(best, new BitmapPlan(BitmapKind.Single, 1 + Varint.SizeOf((ulong)members[0])));
        if (missing.Count == 1)
            best = Smaller(best, new BitmapPlan(BitmapKind.Single, 1 + Varint.SizeOf((ulong)missing.FirstIndex), Complement: true));
        best = Smaller(best, new BitmapPlan(BitmapKind.Sparse, listed.SparseSize));
        best = Smaller(best, new BitmapPlan(BitmapKind.Sparse, missing.SparseSize, Complement: true));
        best = Smaller(best, new BitmapPlan(BitmapKind.Runs, listed.RunsSize));
        best = Smaller(best, new BitmapPlan(BitmapKind.Runs, missing.RunsSize, Complement: true));
        return best;
    }

    private static BitmapPlan Smaller(BitmapPlan current, BitmapPlan candidate) =>
        candidate.Size < current.Size ? candidate : current;

    /// <summary>Writes the set as <paramref name="plan"/> says; returns <c>plan.Size</c>.</summary>
    public static int Write(Span<byte> destination, ReadOnlySpan<int> members, int packetCount, BitmapPlan plan)
    {
        switch (plan.Kind)
        {
            case BitmapKind.All:
                destination[0] = AllByte;
                return 1;
            case BitmapKind.SingleByte:
                destination[0] = (byte)(SingleByteBase + members[0]);
                return 1;
            case BitmapKind.InlineMask:
                int mask = 0;
                foreach (int member in members)
                    mask |= 1 << member;
                destination[0] = (byte)mask;
                return 1;
            case BitmapKind.Raw:
                return WriteRaw(destination, members, packetCount);
        }

        var cursor = new RunCursor(members, packetCount, plan.Complement);
        int form = plan.Kind switch
        {
            BitmapKind.Single => FormSingle,
            BitmapKind.Sparse => FormSparse,
            _ => FormRuns,
        };
        destination[0] = (byte)(ExtendedBase | (plan.Complement ? ComplementFlag : 0) | form);
        int written = 1;
        if (form == FormSingle)
        {
            cursor.Next(out int index, out _);
            written += Varint.Write(destination[written..], (ulong)index);
        }
        else if (form == FormSparse)
        {
            var cost = ListCost.Of(cursor);
            written += Varint.Write(destination[written..], (ulong)(cost.Count - 1));
            int previousEnd = -1;
            while (cursor.Next(out int start, out int end))
            {
                // first index as is, then gap-1 (0 for the rest of a run)
                written += Varint.Write(destination[written..], (ulong)(previousEnd < 0 ? start : start - previousEnd));
                for (int i = start + 1; i < end; i++)
                    destination[written++] = 0;
                previousEnd = end;
            }
        }
        else
        {
            var cost = ListCost.Of(cursor);
            written += Varint.Write(destination[written..], (ulong)(cost.Runs - 1));
            int previousEnd = -1;
            while (cursor.Next(out int start, out int end))
            {
                written += Varint.Write(destination[written..], (ulong)(previousEnd < 0 ? start : start - previousEnd - 1));
                written += Varint.Write(destination[written..], (ulong)(end - start - 1));
                previousEnd = end;
            }
        }
        return written;
    }

    private static int WriteRaw(Span<byte> destination, ReadOnlySpan<int> members, int packetCount)
    {
        int bytes = (packetCount + 7) / 8;
        destination[0] = ExtendedBase | FormRaw;
        var bits = destination.Slice(1, bytes);
        bits.Clear();
        foreach (int member in members)
            bits[member >> 3] |= (byte)(1 << (member & 7));
        return 1 + bytes;
    }

    /// <summary>
    /// Reads one bitmap and appends its set to <paramref name="runs"/> as ascending, disjoint,
    /// non-adjacent <c>[start, end)</c> pairs. Returns the bytes consumed.
    /// </summary>
    /// <exception cref="CodecException">Truncated, unknown form, an index at or past K, or an empty set.</exception>
    public static int Read(ReadOnlySpan<byte> source, int packetCount, List<int> runs)
    {
        if (source.IsEmpty)
            throw CodecException.Truncated("mux chunk bitmap");
        if (packetCount == 0)
            throw CodecException.Corrupt("mux chunk in a batch of zero packets");

        byte first = source[0];
        int firstRun = runs.Count;
        if (first == AllByte)
        {
            AddRun(runs, firstRun, 0, packetCount);
            return 1;
        }
        if (first < SingleByteBase)
        {
            if (packetCount < InlineMaskBits && first >> packetCount != 0)
                throw CodecException.Corrupt("mux bitmap names a packet past the batch");
            AddMaskRuns(runs, firstRun, first, 0, InlineMaskBits);
            return 1;
        }
        if (first < ExtendedBase)
        {
            int index = first - SingleByteBase;
            if (index >= packetCount)
                throw CodecException.Corrupt("mux bitmap names a packet past the batch");
            AddRun(runs, firstRun, index, index + 1);
            return 1;
        }

        bool complement = (first & ComplementFlag) != 0;
        int position = 1;
        switch (first & 0x07)
        {
            case FormSingle:
                int single = ReadIndex(source, ref position, packetCount, 0);
                AddRun(runs, firstRun, single, single + 1);
                break;
            case FormSparse:
                ReadSparse(source, ref position, packetCount, runs, firstRun);
                break;
            case FormRuns:
                ReadRuns(source, ref position, packetCount, runs, firstRun);
                break;
            case FormRaw when !complement:
                position += ReadRaw(source[1..], packetCount, runs, firstRun);
                break;
            default:
                throw CodecException.Corrupt($"unknown mux bitmap form 0x{first:X2}");
        }

        if (complement)
            ComplementInPlace(runs, firstRun, packetCount);
        if (runs.Count == firstRun)
            throw CodecException.Corrupt("mux bitmap names no packet");
        return position;
    }

    private static void ReadSparse(ReadOnlySpan<byte> source, ref int position, int packetCount, List<int> runs, int firstRun)
    {
        int count = ReadIndex(source, ref position, packetCount, 0) + 1;
        int next = 0;
        for (int i = 0; i < count; i++)
        {
            int index = ReadIndex(source, ref position, packetCount, next);
            AddRun(runs, firstRun, index, index + 1);
            next = index + 1;
        }
    }

    private static void ReadRuns(ReadOnlySpan<byte> source, ref int position, int packetCount, List<int> runs, int firstRun)
    {
        int count = ReadIndex(source, ref position, packetCount, 0) + 1;
        int next = 0; // smallest allowed start: the first run may start at 0, later ones leave a gap
        for (int i = 0; i < count; i++)
        {
            int start = ReadIndex(source, ref position, packetCount, next);
            int end = ReadIndex(source, ref position, packetCount, start) + 1;
            AddRun(runs, firstRun, start, end);
            next = end + 1;
        }
    }

    private static int ReadRaw(ReadOnlySpan<byte> source, int packetCount, List<int> runs, int firstRun)
    {
        int bytes = (packetCount + 7) / 8;
        if (source.Length < bytes)
            throw CodecException.Truncated("mux raw bitmap");
        int tailBits = packetCount & 7;
        if (tailBits != 0 && source[bytes - 1] >> tailBits != 0)
            throw CodecException.Corrupt("mux bitmap names a packet past the batch");
        for (int i = 0; i < bytes; i++)
        {
            if (source[i] != 0)
                AddMaskRuns(runs, firstRun, source[i], i * 8, 8);
        }
        return bytes;
    }

    /// <summary>Reads <c>offset + varint</c> and checks that it names a packet.</summary>
    private static int ReadIndex(ReadOnlySpan<byte> source, ref int position, int packetCount, int offset)
    {
        if (!Varint.TryRead(source[position..], out ulong value, out int consumed))
            throw CodecException.Truncated("mux bitmap");
        position += consumed;
        // compare before adding so a huge varint cannot overflow
        if (value >= (ulong)packetCount || offset + (long)value >= packetCount)
            throw CodecException.Corrupt("mux bitmap names a packet past the batch");
        return offset + (int)value;
    }

    private static void AddMaskRuns(List<int> runs, int firstRun, int mask, int baseIndex, int width)
    {
        for (int bit = 0; bit < width; bit++)
        {
            if ((mask >> bit & 1) != 0)
                AddRun(runs, firstRun, baseIndex + bit, baseIndex + bit + 1);
        }
    }

    /// <summary>Appends a run, joining it to the previous one when they touch (readers rely on disjoint, sorted runs).</summary>
    private static void AddRun(List<int> runs, int firstRun, int start, int end)
    {
        int count = runs.Count;
        if (count > firstRun && runs[count - 1] == start)
        {
            runs[count - 1] = end;
            return;
        }
        runs.Add(start);
        runs.Add(end);
    }

    /// <summary>Replaces the runs from <paramref name="firstRun"/> on by the runs of the indexes they miss.</summary>
    private static void ComplementInPlace(List<int> runs, int firstRun, int packetCount)
    {
        // Each gap is written at or before the run it is read from, so one forward pass suffices.
        int read = firstRun, write = firstRun, previousEnd = 0;
        int listedEnd = runs.Count;
        while (read < listedEnd)
        {
            int start = runs[read], end = runs[read + 1];
            read += 2;
            if (start > previousEnd)
            {
                runs[write] = previousEnd;
                runs[write + 1] = start;
                write += 2;
            }
            previousEnd = end;
        }
        runs.RemoveRange(write, listedEnd - write);
        if (previousEnd < packetCount)
        {
            runs.Add(previousEnd);
            runs.Add(packetCount);
        }
    }

    /// <summary>Walks a set (or its complement within <c>[0, K)</c>) as maximal runs.</summary>
    private ref struct RunCursor
    {
        private readonly ReadOnlySpan<int> _members;
        private readonly int _packetCount;
        private readonly bool _complement;
        private int _next;
        private int _previousEnd;

        public RunCursor(ReadOnlySpan<int> members, int packetCount, bool complement)
        {
            _members = members;
            _packetCount = packetCount;
            _complement = complement;
        }

        public bool Next(out int start, out int end)
        {
            while (_next < _members.Length)
            {
                int runStart = _members[_next++];
                int runEnd = runStart + 1;
                while (_next < _members.Length && _members[_next] == runEnd)
                {
                    runEnd++;
                    _next++;
                }
                if (!_complement)
                {
                    (start, end) = (runStart, runEnd);
                    return true;
                }
                int gapStart = _previousEnd;
                _previousEnd = runEnd;
                if (runStart > gapStart)
                {
                    (start, end) = (gapStart, runStart);
                    return true;
                }
            }
            if (_complement && _previousEnd < _packetCount)
            {
                (start, end) = (_previousEnd, _packetCount);
                _previousEnd = _packetCount;
                return true;
            }
            (start, end) = (0, 0);
            return false;
        }
    }

    /// <summary>Sizes of the sparse and runs forms of one list, from its runs.</summary>
    private struct ListCost
    {
        public int Count;
        public int Runs;
        public int FirstIndex;
        private long _sparseBody;
        private long _runsBody;

        public readonly int SparseSize => Count == 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, 1 + Varint.SizeOf((ulong)(Count - 1)) + _sparseBody);
        public readonly int RunsSize => Runs == 0 ? int.MaxValue : (int)Math.Min(int.MaxValue, 1 + Varint.SizeOf((ulong)(Runs - 1)) + _runsBody);

        public static ListCost Of(RunCursor cursor)
        {
            var cost = default(ListCost);
            int previousEnd = -1;
            while (cursor.Next(out int start, out int end))
            {
                if (previousEnd < 0)
                    cost.FirstIndex = start;
                cost._sparseBody += Varint.SizeOf((ulong)(previousEnd < 0 ? start : start - previousEnd)) + (end - start - 1);
                cost._runsBody += Varint.SizeOf((ulong)(previousEnd < 0 ? start : start - previousEnd - 1)) + Varint.SizeOf((ulong)(end - start - 1));
                cost.Count += end - start;
                cost.Runs++;
                previousEnd = end;
            }
            return cost;
        }
    }
}

internal enum BitmapKind : byte
{
    All,
    SingleByte,
    InlineMask,
    Single,
    Sparse,
    Runs,
    Raw,
}

/// <summary>How one set will be written, and how many bytes that takes.</summary>
internal readonly record struct BitmapPlan(BitmapKind Kind, int Size, bool Complement = false);
