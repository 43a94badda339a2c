using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

public sealed partial class SegmentLog
{
    private const int MinReadBlock = 4096;
    private const int MaxReadBlock = 1024 * 1024;

    public bool TryGet(ulong index, out LogEntry entry)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            if (IsEmpty || index < _segments[0].BaseIndex || index >= _next)
            {
                entry = default;
                return false;
            }
            entry = ReadOne(FindSegment(index), index);
            return true;
        }
    }

    public int Read(ulong fromIndex, int maxEntries, long maxBytes, List<LogEntry> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        lock (_gate)
        {
            ThrowIfDisposed();
            if (maxEntries <= 0 || IsEmpty || fromIndex < _segments[0].BaseIndex || fromIndex >= _next) return 0;

            int count = 0;
            long bytes = 0;
            ulong next = fromIndex;
            while (next < _next)
            {
                if (_cache.Contains(next))
                {
                    _cache.Read(next, maxEntries, maxBytes, ref count, ref bytes, into);
                    break;
                }
                int before = count;
                bool more = ReadSegment(FindSegment(next), next, maxEntries, maxBytes, ref count, ref bytes, _cache.FirstIndex, into);
                next += (ulong)(count - before);
                if (!more) break;
            }
            return count;
        }
    }

    private Segment FindSegment(ulong index)
    {
        int lo = 0, hi = _segments.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >>> 1;
            if (_segments[mid].BaseIndex <= index) lo = mid; else hi = mid - 1;
        }
        return _segments[lo];
    }

    /// <summary>
    /// Reads the records of <paramref name="segment"/> from <paramref name="fromIndex"/> until the segment ends, an
    /// index reaches <paramref name="stopAt"/>, or a limit is hit (then returns false). Records are read in blocks that
    /// entries then point into, so a read allocates per block, not per entry.
    /// </summary>
    private bool ReadSegment(Segment segment, ulong fromIndex, int maxEntries, long maxBytes, ref int count, ref long bytes, ulong stopAt, List<LogEntry> into)
    {
        if (segment == _segments[^1]) WritePending();
        long end = segment.Size;
        long position = segment.FindOffset(fromIndex, out ulong expected);
        long budget = maxBytes - bytes;
        int blockSize = (int)Math.Clamp(Math.Min(budget, end - position) + _options.IndexIntervalBytes, MinReadBlock, MaxReadBlock);

        byte[] block = Array.Empty<byte>();
        long blockStart = 0;
        int blockLength = 0;
        while (position < end && expected < stopAt)
        {
            if (count >= maxEntries) return false;
            if (position + RecordHeader.Size > blockStart + blockLength)
            {
                LoadBlock(segment, position, Math.Min(blockSize, end - position), ref block, ref blockStart, ref blockLength, expected >= fromIndex);
            }
            if (position + RecordHeader.Size > blockStart + blockLength) throw Corrupt(segment, position, "truncated record header");
            var header = RecordHeader.Read(block.AsSpan((int)(position - blockStart), RecordHeader.Size));
            string? problem = RecordHeader.CheckLength(header.Length, end - position);
            if (problem is not null) throw Corrupt(segment, position, problem);
            long recordSize = header.RecordSize;

            if (expected >= fromIndex && count > 0 && bytes + recordSize > maxBytes) return false;
            if (position + recordSize > blockStart + blockLength)
            {
                LoadBlock(segment, position, Math.Min(Math.Max(blockSize, recordSize), end - position), ref block, ref blockStart, ref blockLength, expected >= fromIndex);
            }
            int offset = (int)(position - blockStart);
            problem = RecordHeader.CheckRecord(block.AsSpan(offset, (int)recordSize), header)
                ?? (header.Index != expected ? $"index {header.Index} where {expected} was expected" : null);
            if (problem is not null) throw Corrupt(segment, position, problem);

            if (expected >= fromIndex)
            {
                into.Add(new LogEntry(header.Index, header.Epoch, header.TimestampMicros,
                    new ReadOnlyMemory<byte>(block, offset + RecordHeader.Size, header.KeyLength),
                    new ReadOnlyMemory<byte>(block, offset + RecordHeader.Size + header.KeyLength, header.PayloadLength), header.Flags));
                count++;
                bytes += recordSize;
            }
            position += recordSize;
            expected++;
        }
        return true;
    }

    /// <summary>
    /// Reads <paramref name="length"/> bytes at <paramref name="position"/>. A block that entries were taken from is
    /// left to them and a fresh one allocated; a block used only to skip records is reused.
    /// </summary>
    private static void LoadBlock(Segment segment, long position, long length, ref byte[] block, ref long blockStart, ref int blockLength, bool keepsEntries)
    {
        if (keepsEntries || block.Length < length)
        {
            block = keepsEntries ? new byte[length] : new byte[Math.Max(length, MinReadBlock)];
        }
        int read = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(segment.ReadHandle, block.AsSpan(read, (int)length - read), position + read);
            if (n == 0) throw Corrupt(segment, position + read, "file shorter than its records");
            read += n;
        }
        blockStart = position;
        blockLength = read;
    }

    private static InvalidDataException Corrupt(Segment segment, long offset, string problem) =>
        new($"Corrupt record in segment '{segment.Path}' at offset {offset}: {problem}.");
}
