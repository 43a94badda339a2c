using System.Buffers;
using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// The append-only segment log on disk: CRC-32C records in segment files named by their first index, written
/// through one buffer per active segment and made durable in groups by <see cref="Flush"/>.
/// </summary>
/// <remarks>
/// Thread-safe. One lock guards the state; <see cref="Flush"/> runs the fsync outside it (under a second lock
/// that only truncation, reset and dispose also take), so appends and reads continue while the disk syncs.
/// The first write, fsync, creation, truncation or deletion that fails is a <see cref="DiskFailedException"/>, and
/// from then on every write throws one too and nothing more becomes durable (see <see cref="Failure"/>).
/// </remarks>
public sealed partial class SegmentLog : IEntryLog
{
    private const int WriteBufferBytes = 1024 * 1024;

    private readonly string _directory;
    private readonly SegmentLogOptions _options;
    private readonly object _gate = new();
    private readonly object _flushGate = new();
    /// <summary>Ordered by base index; the last one is active. Only a lone segment may be empty.</summary>
    private readonly List<Segment> _segments = new();
    private readonly EntryCache _cache;
    private readonly List<LogEntry> _scratch = new(1);
    /// <summary>Streams of rolled-over segments (already fsync'd); disposed under the flush lock, since a Flush may still be syncing one.</summary>
    private readonly List<FileStream> _retired = new();

    private FileStream? _active;
    private byte[]? _writeBuffer;
    private int _buffered;
    /// <summary>Index the next append must have; 0 when the log is empty and takes any index.</summary>
    private ulong _next;
    private ulong _durable;
    private ulong _lastEpoch;
    private bool _disposed;
    private DiskFailedException? _failure;

    private SegmentLog(string directory, SegmentLogOptions options)
    {
        _directory = directory;
        _options = options;
        _cache = new EntryCache(options.CacheBytes);
        LastRecovery = new RecoveryReport();
    }

    /// <summary>What the last <see cref="Open"/> found and repaired.</summary>
    public RecoveryReport LastRecovery { get; private set; }

    /// <summary>The first disk failure, after which the log takes no more writes; null while the disk works.</summary>
    public DiskFailedException? Failure
    {
        get { lock (_gate) return _failure; }
    }

    /// <summary>The directory holding the segment files.</summary>
    public string Directory => _directory;

    public ulong FirstIndex
    {
        get { lock (_gate) return IsEmpty ? 0 : _segments[0].BaseIndex; }
    }

    public ulong LastIndex
    {
        get { lock (_gate) return IsEmpty ? 0 : _next - 1; }
    }

    public ulong NextIndex
    {
        get { lock (_gate) return _next; }
    }

    public bool FlushWaitsForDisk => _options.Fsync;

    public ulong DurableIndex
    {
        get { lock (_gate) return _durable; }
    }

    public ulong LastEpoch
    {
        get { lock (_gate) return _lastEpoch; }
    }

    /// <summary>Memory of entries read is never overwritten afterwards, not even by the entry cache (see <see cref="EntryCache.NeverReuseChunks"/>).</summary>
    internal void KeepReadMemory()
    {
        lock (_gate) _cache.NeverReuseChunks();
    }

    /// <summary>Number of segment files.</summary>
    public int SegmentCount
    {
        get { lock (_gate) return _segments.Count; }
    }

    private bool IsEmpty => _segments.Count == 0 || _segments[0].IsEmpty;

    public bool Append(in LogEntry entry)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            ThrowIfFailed();
            RecordHeader.Validate(entry);
            ulong index = entry.Index;
            if (!IsEmpty && index < _next) return false;
            if (_next != 0 && index != _next)
                throw new ArgumentException($"Entry index {index} does not follow: the log expects {_next}.", nameof(entry));

            int size = entry.EncodedSize;
            Segment segment = ActiveSegmentFor(index, size);
            byte[] buffer = _writeBuffer!;
            if (size > buffer.Length - _buffered) WritePending();
            if (size > buffer.Length)
            {
                byte[] large = ArrayPool<byte>.Shared.Rent(size);
                try
                {
                    RecordHeader.Write(large, entry);
                    Write(large, size);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(large);
                }
            }
            else
            {
                RecordHeader.Write(buffer.AsSpan(_buffered, size), entry);
                _buffered += size;
            }

            segment.OnRecord(index, entry.Epoch, entry.TimestampMicros, size, _options.IndexIntervalBytes);
            _next = index + 1;
            _lastEpoch = entry.Epoch;
            _cache.Add(entry);
            return true;
        }
    }

    public void Flush()
    {
        lock (_flushGate)
        {
            FileStream? stream;
            ulong target;
            lock (_gate)
            {
                ThrowIfDisposed();
                ThrowIfFailed();
                WritePending();
                stream = _active;
                target = IsEmpty ? 0 : _next - 1;
            }

            // Appends may go on meanwhile; they are not covered by this fsync and not counted below.
            if (_options.Fsync && stream is not null)
            {
                try
                {
                    stream.Flush(flushToDisk: true);
                }
                catch (Exception e) when (IsDiskError(e))
                {
                    DiskFailedException failure;
                    lock (_gate) failure = Failed("fsync", stream.Name, e);
                    throw failure;
                }
            }

            lock (_gate)
            {
                DisposeRetired();
                if (target > _durable) _durable = target;
            }
        }
    }

    public void Dispose()
    {
        lock (_flushGate)
        {
            lock (_gate)
            {
                if (_disposed) return;
                try
                {
                    // A failed log is only closed: its buffer is not written and its fsync not retried.
                    if (_active is not null && _failure is null)
                    {
                        WritePending();
                        SyncFile(_active);
                    }
                }
                finally
                {
                    CloseAll();
                }
            }
        }
    }

    /// <summary>Test hook: closes the files the way a killed process would, losing whatever is still buffered.</summary>
    internal void SimulateCrash()
    {
        lock (_flushGate)
        {
            lock (_gate)
            {
                if (_disposed) return;
                _buffered = 0;
                CloseAll();
            }
        }
    }

    private void CloseAll()
    {
        _disposed = true;
        _active?.Dispose();
        _active = null;
        DisposeRetired();
        foreach (Segment segment in _segments) segment.Dispose();
        if (_writeBuffer is not null) ArrayPool<byte>.Shared.Return(_writeBuffer);
        _writeBuffer = null;
        _buffered = 0;
    }

    /// <summary>The segment <paramref name="index"/> goes to, creating the first one or rolling over as needed.</summary>
    private Segment ActiveSegmentFor(ulong index, int recordSize)
    {
        if (_segments.Count == 0) return CreateSegment(index);
        Segment active = _segments[^1];
        if (active.IsEmpty && active.RecordsStart == 0 && _options.WriteFormat >= SegmentHeader.FormatVersion)
        {
            // An empty headerless file (a pin left by an older build, or a creation cut short by a crash) gets its
            // header ahead of its first record, so every record this build writes is in a headered segment. Through
            // the buffer is enough: until it is durable, recovery sees a short file and pins the name's index anyway.
            if (_writeBuffer!.Length - _buffered < SegmentHeader.Size) WritePending();
            SegmentHeader.Write(_writeBuffer.AsSpan(_buffered, SegmentHeader.Size), active.BaseIndex);
            _buffered += SegmentHeader.Size;
            active.StartRecordsAt(SegmentHeader.Size);
        }
        if (!active.IsEmpty && active.Size + recordSize > _options.SegmentBytes)
        {
            // The old segment is made durable before a newer one exists, so recovery may treat damage
            // anywhere but in the last segment as corruption rather than as a torn write.
            WritePending();
            FileStream old = _active!;
            SyncFile(old);
            _retired.Add(old);
            _active = null;
            if (active.LastIndex > _durable) _durable = active.LastIndex;
            return CreateSegment(index);
        }
        return active;
    }

    private Segment CreateSegment(ulong baseIndex)
    {
        bool headered = _options.WriteFormat >= SegmentHeader.FormatVersion;
        var segment = new Segment(Path.Combine(_directory, Segment.FileName(baseIndex)), baseIndex, headered ? SegmentHeader.Size : 0);
        _active = OpenWriterOrFail(segment.Path, FileMode.CreateNew, "create");
        _segments.Add(segment);
        _writeBuffer ??= ArrayPool<byte>.Shared.Rent(WriteBufferBytes);
        if (!headered)
        {
            if (_options.Fsync) SyncDirectory();
            return segment;
        }
        // The header is made durable before the directory entry, as a rolled-over segment is before its successor:
        // a file that survives a crash then has its whole header (recovery copes if the OS lost it all the same).
        Span<byte> header = stackalloc byte[SegmentHeader.Size];
        SegmentHeader.Write(header, baseIndex);
        try
        {
            _active.Write(header);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed("write", segment.Path, e);
        }
        SyncFile(_active);
        if (_options.Fsync) SyncDirectory();
        return segment;
    }

    private static FileStream OpenWriter(string path, FileMode mode) =>
        // bufferSize 0: the log buffers records itself (one copy), and an unbuffered FileStream's
        // Flush(true) is only an fsync of the handle, which Flush may run outside the lock.
        new(path, mode, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);

    /// <summary>Hands buffered records to the OS (no fsync).</summary>
    private void WritePending()
    {
        if (_buffered == 0) return;
        Write(_writeBuffer!, _buffered);
        _buffered = 0;
    }

    private void Write(byte[] bytes, int count)
    {
        try
        {
            _active!.Write(bytes, 0, count);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed("write", _active!.Name, e);
        }
    }

    /// <summary>Makes a segment's written records durable (only hands them on when <see cref="SegmentLogOptions.Fsync"/> is off); lock held.</summary>
    private void SyncFile(FileStream stream)
    {
        try
        {
            stream.Flush(flushToDisk: _options.Fsync);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed(_options.Fsync ? "fsync" : "flush", stream.Name, e);
        }
    }

    private void SyncDirectory()
    {
        try
        {
            DirectorySync.Sync(_directory);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed("directory fsync", _directory, e);
        }
    }

    private FileStream OpenWriterOrFail(string path, FileMode mode, string operation)
    {
        try
        {
            return OpenWriter(path, mode);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed(operation, path, e);
        }
    }

    private static bool IsDiskError(Exception e) => e is (IOException and not DiskFailedException) or UnauthorizedAccessException;

    /// <summary>Records the first failure (lock held): the log takes no writes from now on.</summary>
    private DiskFailedException Failed(string operation, string? path, Exception cause)
    {
        var failure = new DiskFailedException(operation, path, cause);
        _failure ??= failure;
        return failure;
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null) throw DiskFailedException.Earlier(_failure);
    }

    private void DisposeRetired()
    {
        foreach (FileStream stream in _retired) stream.Dispose();
        _retired.Clear();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
