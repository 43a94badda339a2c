using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace GeoRelay.Storage.Internal;

/// <summary>
/// One segment file: its entries' index range, its size, and a sparse index from entry index to file offset
/// (one pair per <c>IndexIntervalBytes</c>, always including the first record), rebuilt by scanning on open.
/// Offsets are absolute in the file: records start after the header (<see cref="RecordsStart"/>), or at 0 in a
/// headerless version-1 file.
/// </summary>
internal sealed class Segment : IDisposable
{
    public const string Extension = ".log";
    private const int NameDigits = 20;

    private ulong[] _indexKeys = new ulong[16];
    private long[] _indexOffsets = new long[16];
    private int _indexCount;
    private SafeFileHandle? _readHandle;

    public Segment(string path, ulong baseIndex, long recordsStart)
    {
        Path = path;
        BaseIndex = baseIndex;
        NextIndex = baseIndex;
        RecordsStart = recordsStart;
        Size = recordsStart;
    }

    public string Path { get; }
    public ulong BaseIndex { get; }
    /// <summary>File offset of the first record: <see cref="SegmentHeader.Size"/>, or 0 in a version-1 file.</summary>
    public long RecordsStart { get; private set; }
    /// <summary>Index the next record of this segment would have.</summary>
    public ulong NextIndex { get; private set; }
    public ulong LastIndex => NextIndex - 1;
    public bool IsEmpty => NextIndex == BaseIndex;
    /// <summary>File offset where the valid records (written or still buffered) end: the file's length, header included.</summary>
    public long Size { get; private set; }
    public ulong LastEpoch { get; private set; }
    public long NewestTimestampMicros { get; private set; } = long.MinValue;

    public static string FileName(ulong baseIndex) => baseIndex.ToString("D20", CultureInfo.InvariantCulture) + Extension;

    public static bool TryParseFileName(string fileName, out ulong baseIndex)
    {
        baseIndex = 0;
        return fileName.Length == NameDigits + Extension.Length
            && fileName.EndsWith(Extension, StringComparison.Ordinal)
            && ulong.TryParse(fileName.AsSpan(0, NameDigits), NumberStyles.None, CultureInfo.InvariantCulture, out baseIndex)
            && baseIndex > 0;
    }

    /// <summary>Handle for positional reads, opened on first use.</summary>
    public SafeFileHandle ReadHandle =>
        _readHandle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

    /// <summary>Sets where records start, while the segment has none (on open, and when an empty version-1 file gets a header).</summary>
    public void StartRecordsAt(long offset)
    {
        if (!IsEmpty) throw new InvalidOperationException($"Segment '{Path}' already holds records.");
        RecordsStart = offset;
        Size = offset;
    }

    /// <summary>Accounts for a record appended at offset <see cref="Size"/>.</summary>
    public void OnRecord(ulong index, ulong epoch, long timestampMicros, long recordSize, int indexIntervalBytes)
    {
        long offset = Size;
        if (_indexCount == 0 || offset - _indexOffsets[_indexCount - 1] >= indexIntervalBytes)
        {
            if (_indexCount == _indexKeys.Length)
            {
                Array.Resize(ref _indexKeys, _indexCount * 2);
                Array.Resize(ref _indexOffsets, _indexCount * 2);
            }
            _indexKeys[_indexCount] = index;
            _indexOffsets[_indexCount] = offset;
            _indexCount++;
        }
        NextIndex = index + 1;
        Size = offset + recordSize;
        LastEpoch = epoch;
        if (timestampMicros > NewestTimestampMicros) NewestTimestampMicros = timestampMicros;
    }

    /// <summary>Offset of the indexed record closest at or before <paramref name="index"/>, and that record's index.</summary>
    public long FindOffset(ulong index, out ulong indexAtOffset)
    {
        if (_indexCount == 0)
        {
            indexAtOffset = BaseIndex;
            return RecordsStart;
        }
        int lo = 0, hi = _indexCount - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >>> 1;
            if (_indexKeys[mid] <= index) lo = mid; else hi = mid - 1;
        }
        indexAtOffset = _indexKeys[lo];
        return _indexOffsets[lo];
    }

    /// <summary>Forgets records after <paramref name="lastKept"/>, which ends at <paramref name="size"/>.</summary>
    public void TruncateAfter(ulong lastKept, long size, ulong lastEpoch, long lastTimestampMicros)
    {
        while (_indexCount > 0 && _indexKeys[_indexCount - 1] > lastKept) _indexCount--;
        NextIndex = lastKept + 1;
        Size = size;
        LastEpoch = lastEpoch;
        // Timestamps are assumed to grow with the index; the kept tail's newest is the last one kept.
        NewestTimestampMicros = lastTimestampMicros;
    }

    public void Dispose()
    {
        _readHandle?.Dispose();
        _readHandle = null;
    }
}
