using GeoRelay.Storage;
using GeoRelay.Storage.Internal;

namespace GeoRelay.TestUtilities;

/// <summary>How <see cref="MemoryLog.BreakDisk"/> breaks a simulated disk.</summary>
public enum DiskFault
{
    None,
    /// <summary>The next write of any kind fails (ENOSPC, EIO on write).</summary>
    WriteFails,
    /// <summary>Appends still land in the page cache; the next flush, roll-over, truncation, reset or deletion fails (EIO on fsync).</summary>
    SyncFails,
}

/// <summary>
/// An in-memory <see cref="IEntryLog"/> with the semantics of <see cref="SegmentLog"/> (segments sized by
/// <see cref="SegmentLogOptions.SegmentBytes"/>, the same retention, truncation and durability rules), for
/// deterministic simulation tests. <see cref="Crash"/> loses what a killed process would; <see cref="BreakDisk"/>
/// makes writes fail as a broken disk does. Thread-safe.
/// </summary>
public sealed class MemoryLog : IEntryLog
{
    private sealed class MemorySegment(ulong baseIndex)
    {
        public readonly ulong BaseIndex = baseIndex;
        public readonly List<LogEntry> Entries = new();
        /// <summary>As a segment file's length: header and records.</summary>
        public long Size = SegmentHeader.Size;
        public long NewestTimestampMicros = long.MinValue;
        public ulong NextIndex => BaseIndex + (ulong)Entries.Count;
        public bool IsEmpty => Entries.Count == 0;
    }

    private readonly SegmentLogOptions _options;
    private readonly Lock _gate = new();
    private readonly List<MemorySegment> _segments = new();
    private ulong _next;
    private ulong _durable;
    private ulong _lastEpoch;
    private ulong _firstIndex;
    private ulong _lastIndex;
    private bool _disposed;
    private DiskFault _fault;
    private DiskFailedException? _failure;
    private volatile bool _diskFailed;

    public MemoryLog(SegmentLogOptions? options = null)
    {
        _options = options ?? SegmentLogOptions.Default;
        _options.Validate();
    }

    // The simulation reads these after every step for every log; they are kept up to date under the gate
    // and read without it (each is one atomic 64-bit read, as consistent as a lock around each read was).
    public ulong FirstIndex => Volatile.Read(ref _firstIndex);

    public ulong LastIndex => Volatile.Read(ref _lastIndex);

    public ulong NextIndex
    {
        get { lock (_gate) return _next; }
    }

    public ulong DurableIndex => Volatile.Read(ref _durable);

    public ulong LastEpoch => Volatile.Read(ref _lastEpoch);

    /// <summary>A write has failed since the last <see cref="Crash"/>: as <see cref="SegmentLog"/>, the log takes no more writes.</summary>
    public bool DiskFailed => _diskFailed;

    /// <summary>
    /// Breaks the disk until the next <see cref="Crash"/> (a restart on a repaired disk). The failure shows at the
    /// next write <paramref name="fault"/> covers; from then on every write throws <see cref="DiskFailedException"/>
    /// and <see cref="DurableIndex"/> stays where it was, as with <see cref="SegmentLog"/>.
    /// </summary>
    public void BreakDisk(DiskFault fault)
    {
        lock (_gate) _fault = fault;
    }

    /// <summary>Number of (simulated) segments.</summary>
    public int SegmentCount
    {
        get { lock (_gate) return _segments.Count; }
    }

    private bool IsEmpty => _segments.Count == 0 || _segments[0].IsEmpty;

    public bool Append(in LogEntry entry)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFailed();
            if (_fault == DiskFault.WriteFails) throw Fail("write");
            RecordHeader.Validate(entry);
            ulong index = entry.Index;
            if (!IsEmpty && index < _next) return false;
            if (_next != 0 && index != _next)
                throw new ArgumentException($"Entry index {index} does not follow: the log expects {_next}.", nameof(entry));

            int size = entry.EncodedSize;
            MemorySegment segment;
            if (_segments.Count == 0)
            {
                segment = AddSegment(index);
            }
            else
            {
                segment = _segments[^1];
                if (!segment.IsEmpty && segment.Size + size > _options.SegmentBytes)
                {
                    if (_fault != DiskFault.None) throw Fail("fsync");
                    // SegmentLog makes a segment durable when it rolls over.
                    if (segment.NextIndex - 1 > _durable) _durable = segment.NextIndex - 1;
                    segment = AddSegment(index);
                }
            }

            var data = new byte[entry.Key.Length + entry.Payload.Length];
            entry.Key.Span.CopyTo(data);
            entry.Payload.Span.CopyTo(data.AsSpan(entry.Key.Length));
            segment.Entries.Add(new LogEntry(index, entry.Epoch, entry.TimestampMicros,
                data.AsMemory(0, entry.Key.Length), data.AsMemory(entry.Key.Length), entry.Flags));
            segment.Size += size;
            if (entry.TimestampMicros > segment.NewestTimestampMicros) segment.NewestTimestampMicros = entry.TimestampMicros;
            _next = index + 1;
            _lastEpoch = entry.Epoch;
            UpdateBounds();
            return true;
        }
    }

    /// <summary>As a segment log with the same options: simulations then take the path production takes.</summary>
    public bool FlushWaitsForDisk => _options.Fsync;

    public void Flush()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFailed();
            if (_fault != DiskFault.None) throw Fail(_fault == DiskFault.SyncFails ? "fsync" : "write");
            if (!IsEmpty) _durable = _next - 1;
        }
    }

    public bool TryGet(ulong index, out LogEntry entry)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (IsEmpty || index < _segments[0].BaseIndex || index >= _next)
            {
                entry = default;
                return false;
            }
            MemorySegment segment = FindSegment(index);
            entry = segment.Entries[(int)(index - segment.BaseIndex)];
            return true;
        }
    }

    public int Read(ulong fromIndex, int maxEntries, long maxBytes, List<LogEntry> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (maxEntries <= 0 || IsEmpty || fromIndex < _segments[0].BaseIndex || fromIndex >= _next) return 0;
            int count = 0;
            long bytes = 0;
            for (ulong index = fromIndex; index < _next && count < maxEntries; index++)
            {
                MemorySegment segment = FindSegment(index);
                LogEntry entry = segment.Entries[(int)(index - segment.BaseIndex)];
                if (count > 0 && bytes + entry.EncodedSize > maxBytes) break;
                into.Add(entry);
                count++;
                bytes += entry.EncodedSize;
            }
            return count;
        }
    }

    public void TruncateAfter(ulong index)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFailed();
            if (_next == 0 || index >= _next - 1) return;
            if (_fault != DiskFault.None) throw Fail("truncate");
            if (IsEmpty || index < _segments[0].BaseIndex)
            {
                ResetCore(index == 0 ? 0 : index + 1);
                return;
            }
            while (_segments[^1].BaseIndex > index) _segments.RemoveAt(_segments.Count - 1);
            MemorySegment last = _segments[^1];
            int keep = (int)(index - last.BaseIndex + 1);
            last.Entries.RemoveRange(keep, last.Entries.Count - keep);
            Recount(last);
            _next = index + 1;
            _lastEpoch = last.Entries[^1].Epoch;
            if (_durable > index) _durable = index;
            UpdateBounds();
        }
    }

    public void ResetTo(ulong nextIndex)
    {
        if (nextIndex == 0) throw new ArgumentOutOfRangeException(nameof(nextIndex), "Entry indexes start at 1.");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFailed();
            if (_fault != DiskFault.None) throw Fail("delete");
            ResetCore(nextIndex);
        }
    }

    public int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ThrowIfFailed();
            long total = 0;
            foreach (MemorySegment segment in _segments) total += segment.Size;
            long cutoffMicros = (now.UtcTicks - DateTime.UnixEpoch.Ticks) / 10 - _options.RetentionMaxAge.Ticks / 10;
            int dropped = 0;
            while (_segments.Count > 1)
            {
                MemorySegment oldest = _segments[0];
                if (total <= _options.RetentionMaxBytes && oldest.NewestTimestampMicros >= cutoffMicros) break;
                if (oldest.NextIndex - 1 >= keepFrom) break;
                if (_fault != DiskFault.None) throw Fail("delete");
                total -= oldest.Size;
                _segments.RemoveAt(0);
                dropped++;
            }
            UpdateBounds();
            return dropped;
        }
    }

    /// <summary>
    /// Simulates a process or machine crash and restart: entries above <see cref="DurableIndex"/> are lost; with
    /// <paramref name="tornTail"/>, a random prefix of them survives instead, as a partly completed write would.
    /// Afterwards everything held counts as durable, as after <see cref="SegmentLog.Open"/>, and a broken disk is
    /// repaired.
    /// </summary>
    public void Crash(bool tornTail, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _fault = DiskFault.None;
            _failure = null;
            _diskFailed = false;
            if (IsEmpty) return;
            ulong floor = Math.Max(_durable, _segments[0].BaseIndex - 1);
            ulong unsynced = _next - 1 - floor;
            ulong kept = tornTail ? (ulong)rng.NextInt64(0, (long)unsynced + 1) : 0;
            ulong last = floor + kept;
            while (_segments.Count > 1 && _segments[^1].BaseIndex > last) _segments.RemoveAt(_segments.Count - 1);
            MemorySegment tail = _segments[^1];
            int keep = (int)(last + 1 - tail.BaseIndex);
            tail.Entries.RemoveRange(keep, tail.Entries.Count - keep);
            Recount(tail);
            // As on disk: a segment left without records only remains when it is the only one.
            if (tail.IsEmpty && _segments.Count > 1) _segments.RemoveAt(_segments.Count - 1);
            _next = _segments[^1].NextIndex;
            _lastEpoch = IsEmpty ? 0 : _segments[^1].Entries[^1].Epoch;
            _durable = IsEmpty ? 0 : _next - 1;
            UpdateBounds();
        }
    }

    public void Dispose()
    {
        lock (_gate) _disposed = true;
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null) throw DiskFailedException.Earlier(_failure);
    }

    private DiskFailedException Fail(string operation)
    {
        _failure = new DiskFailedException(operation, "memory log", new IOException("simulated disk failure"));
        _diskFailed = true;
        return _failure;
    }

    private MemorySegment AddSegment(ulong baseIndex)
    {
        var segment = new MemorySegment(baseIndex);
        _segments.Add(segment);
        return segment;
    }

    private void ResetCore(ulong nextIndex)
    {
        _segments.Clear();
        _next = nextIndex;
        _durable = 0;
        _lastEpoch = 0;
        if (nextIndex != 0) AddSegment(nextIndex);
        UpdateBounds();
    }

    private void UpdateBounds()
    {
        Volatile.Write(ref _firstIndex, IsEmpty ? 0 : _segments[0].BaseIndex);
        Volatile.Write(ref _lastIndex, IsEmpty ? 0 : _next - 1);
    }

    private MemorySegment FindSegment(ulong index)
    {
        int lo = 0, hi = _segments.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >>> 1;
            if (_segments[mid].BaseIndex <= index) lo = mid; else hi = mid - 1;
        }
        return _segments[lo];
    }

    private static void Recount(MemorySegment segment)
    {
        segment.Size = SegmentHeader.Size;
        segment.NewestTimestampMicros = long.MinValue;
        foreach (LogEntry entry in segment.Entries)
        {
            segment.Size += entry.EncodedSize;
            if (entry.TimestampMicros > segment.NewestTimestampMicros) segment.NewestTimestampMicros = entry.TimestampMicros;
        }
    }
}
