using System.Diagnostics;
using System.Runtime.InteropServices;

namespace GeoRelay.Storage;

/// <summary>
/// Keyed compaction over any <see cref="IEntryLog"/>: folds committed entries into a map of each key's latest entry,
/// persists that map to <c>keyed-state</c> (<see cref="StateFileName"/>) and lets the inner log's retention drop only
/// segments whose entries are in a persisted state. Everything else passes through to the inner log.
/// </summary>
/// <remarks>
/// Entries with an empty key, and keys starting with a zero byte (the cluster's internal entries), are not key-value
/// writes and are skipped. A tombstone replaces its key's entry and stays in the state until it is
/// <see cref="KeyedCompactionOptions.TombstoneRetention"/> old at a persist; <see cref="Snapshot"/> leaves it out.
/// Thread-safe. The fold thread holds this log's lock only while it updates the map: it reads the inner log and writes
/// the state file outside it, so appends, flushes and reads of the inner log go on meanwhile.
/// </remarks>
public sealed partial class KeyedLog : IEntryLog
{
    /// <summary>The state file's name in the directory given to <see cref="Open"/>.</summary>
    public const string StateFileName = KeyedStateFile.FileName;

    /// <summary>The state file format this build writes and reads.</summary>
    public const ushort StateFormatVersion = KeyedStateFile.FormatVersion;

    private readonly IEntryLog _inner;
    private readonly string? _path;
    private readonly KeyedCompactionOptions _options;
    /// <summary>Guards the state below; also what <see cref="WaitForFold"/> and the fold thread wait on.</summary>
    private readonly object _gate = new();
    /// <summary>One persist (or reset's persist) at a time, so files are written in the order their states were taken.</summary>
    private readonly object _persistGate = new();
    private readonly Dictionary<ReadOnlyMemory<byte>, LogEntry> _state = new(KeyComparer.Instance);

    private ulong _through;
    private ulong _persistedThrough;
    private ulong _foldTarget;
    private bool _complete = true;
    /// <summary>Bumped by reset and truncation: a batch read from the inner log before then is stale.</summary>
    private long _generation;
    /// <summary>Bumped whenever what <see cref="Snapshot"/> returns would change.</summary>
    private long _version;
    private int _liveKeys;
    private int _tombstones;
    private long _stateBytes;
    private long _foldedBytesSincePersist;
    private long _persists;
    private DateTimeOffset? _now;
    private DateTimeOffset? _lastPersistAt;
    private KeyedSnapshot? _snapshot;
    private long _snapshotVersion = -1;
    private Exception? _lastPersistError;
    private Exception? _lastFoldError;
    private bool _disposed;

    private KeyedLog(IEntryLog inner, string? path, KeyedCompactionOptions options)
    {
        _inner = inner;
        _path = path;
        _options = options;
        if (options.Background)
        {
            _thread = new Thread(FoldLoop) { IsBackground = true, Name = "keyed-fold" };
        }
    }

    /// <summary>
    /// Wraps <paramref name="inner"/>, loading <c>keyed-state</c> from <paramref name="directory"/> if it is there; folding
    /// resumes after the loaded state's index. The returned log owns <paramref name="inner"/> (disposes it); if this
    /// throws, the caller still does.
    /// </summary>
    /// <param name="directory">Where the state file lives (created if needed); null keeps the state in memory only.</param>
    /// <exception cref="InvalidDataException">The state file is not one this build reads; the message names it and what is wrong where.</exception>
    public static KeyedLog Open(IEntryLog inner, string? directory, KeyedCompactionOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        string? path = null;
        if (directory is not null)
        {
            System.IO.Directory.CreateDirectory(directory);
            path = Path.Combine(Path.GetFullPath(directory), StateFileName);
        }
        // The fold reads on its own thread and copies after the read: the cache must not hand its chunks to newer entries meanwhile.
        if (inner is SegmentLog segments) segments.KeepReadMemory();
        var log = new KeyedLog(inner, path, options);
        if (path is not null && KeyedStateFile.Read(path) is { } contents) log.Load(contents);
        log._thread?.Start();
        return log;
    }

    private void Load(KeyedStateFile.Contents contents)
    {
        _through = _persistedThrough = _foldTarget = contents.Through;
        _complete = contents.Complete;
        // The file does not say where an incomplete state's gap ends; its index is a safe bound (an image must reach it).
        if (!_complete) _missingThrough = contents.Through;
        foreach (LogEntry entry in contents.Entries) Put(entry);
    }

    /// <summary>The state file, or null when the state lives in memory only.</summary>
    public string? StatePath => _path;

    /// <summary>The state is that of the log through this index (folded through).</summary>
    public ulong Through
    {
        get { lock (_gate) return _through; }
    }

    /// <summary>The state in the state file is through this index; the inner log keeps every entry above it. Equals <see cref="Through"/> without a directory.</summary>
    public ulong PersistedThrough
    {
        get { lock (_gate) return _path is null ? _through : _persistedThrough; }
    }

    /// <summary>
    /// False once the state misses writes: after <see cref="ResetTo"/>, or when the inner log starts past the state
    /// (installed or reset underneath). Stays false until the state is rebuilt from elsewhere.
    /// </summary>
    public bool HasCompleteState
    {
        get { lock (_gate) return _complete; }
    }

    /// <summary>Keys whose latest entry is a value.</summary>
    public int LiveKeys
    {
        get { lock (_gate) return _liveKeys; }
    }

    /// <summary>Keys whose latest entry is a tombstone not yet old enough to drop.</summary>
    public int Tombstones
    {
        get { lock (_gate) return _tombstones; }
    }

    /// <summary>Sum of <see cref="LogEntry.EncodedSize"/> over the state's entries, tombstones included.</summary>
    public long StateBytes
    {
        get { lock (_gate) return _stateBytes; }
    }

    /// <summary>How many times the state was persisted (without a directory: swept of old tombstones).</summary>
    public long Persists
    {
        get { lock (_gate) return _persists; }
    }

    /// <summary>The last persist's failure (a <see cref="DiskFailedException"/>); null once a persist succeeds again. The old file stays meanwhile.</summary>
    public Exception? LastPersistError
    {
        get { lock (_gate) return _lastPersistError; }
    }

    /// <summary>What stopped the last background fold pass (e.g. the inner log failing a read); null while folding works.</summary>
    public Exception? LastFoldError
    {
        get { lock (_gate) return _lastFoldError; }
    }

    /// <summary>
    /// The state at <see cref="Through"/>, or null while <see cref="HasCompleteState"/> is false. The same object is
    /// returned until the state changes.
    /// </summary>
    public KeyedSnapshot? Snapshot() => Sorted(withTombstones: false);

    /// <summary>
    /// The state by ascending index (live keys only, or with tombstones too), cached until the state changes; null
    /// while it is incomplete. Copied under the lock, sorted outside it.
    /// </summary>
    private KeyedSnapshot? Sorted(bool withTombstones)
    {
        LogEntry[] entries;
        ulong through;
        long version, bytes = 0;
        lock (_gate)
        {
            if (!_complete) return null;
            if (withTombstones ? _imageVersion == _version : _snapshotVersion == _version) return withTombstones ? _image : _snapshot;
            version = _version;
            through = _through;
            entries = new LogEntry[withTombstones ? _state.Count : _liveKeys];
            int i = 0;
            foreach (LogEntry entry in _state.Values)
                if (withTombstones || !entry.IsTombstone) entries[i++] = entry;
        }
        foreach (LogEntry entry in entries) bytes += entry.EncodedSize;
        Array.Sort(entries, ByIndex);
        var sorted = new KeyedSnapshot(through, entries, bytes);
        lock (_gate)
        {
            if (_version != version) return sorted;
            if (withTombstones) (_image, _imageVersion) = (sorted, version);
            else (_snapshot, _snapshotVersion) = (sorted, version);
        }
        return sorted;
    }

    /// <summary>Waits until the state is folded through <paramref name="index"/>; false on timeout or dispose. Folding only goes as far as <see cref="ApplyRetention(DateTimeOffset, ulong, ulong)"/> allows.</summary>
    public bool WaitForFold(ulong index, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        lock (_gate)
        {
            while (_through < index)
            {
                if (_disposed) return false;
                if (timeout == Timeout.InfiniteTimeSpan)
                {
                    Monitor.Wait(_gate);
                    continue;
                }
                TimeSpan left = timeout - clock.Elapsed;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, left);
            }
            return true;
        }
    }

    public ulong FirstIndex => _inner.FirstIndex;

    public ulong LastIndex => _inner.LastIndex;

    public ulong DurableIndex => _inner.DurableIndex;

    public ulong NextIndex => _inner.NextIndex;

    public ulong LastEpoch => _inner.LastEpoch;

    public bool FlushWaitsForDisk => _inner.FlushWaitsForDisk;

    public bool Append(in LogEntry entry) => _inner.Append(entry);

    public void Flush() => _inner.Flush();

    public bool TryGet(ulong index, out LogEntry entry) => _inner.TryGet(index, out entry);

    public int Read(ulong fromIndex, int maxEntries, long maxBytes, List<LogEntry> into) => _inner.Read(fromIndex, maxEntries, maxBytes, into);

    /// <summary>
    /// Folds the committed entries below <paramref name="keepFrom"/> (at most through the inner log's durable index),
    /// on the fold thread or, without <see cref="KeyedCompactionOptions.Background"/>, before returning; persists when
    /// due; then applies the inner log's retention, keeping every entry not yet in a persisted state.
    /// </summary>
    public int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue) =>
        ApplyRetention(now, keepFrom, keepFrom == 0 ? 0 : keepFrom - 1);

    /// <summary>
    /// As <see cref="ApplyRetention(DateTimeOffset, ulong)"/>, folding through <paramref name="committed"/>: a node
    /// whose retention keeps the entry at its commit index (so its oldest entry is always committed) still folds that entry.
    /// </summary>
    public int ApplyRetention(DateTimeOffset now, ulong keepFrom, ulong committed)
    {
        long generation;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            generation = _generation;
        }
        ulong target = Math.Min(committed, Math.Min(_inner.DurableIndex, _inner.LastIndex));
        lock (_gate)
        {
            _now = now;
            _lastPersistAt ??= now;
            if (generation == _generation && target > _foldTarget) _foldTarget = target;
            if (_options.Background)
            {
                _wake = true;
                Monitor.PulseAll(_gate);
            }
        }
        if (!_options.Background)
        {
            FoldPass();
            PersistIfDue();
        }
        return _inner.ApplyRetention(now, Math.Min(keepFrom, PersistedThrough + 1));
    }

    /// <summary>
    /// Passes through; the entries dropped must not be folded yet (folding stops at the commit index, which truncation
    /// never goes below). Entries this log holds that were never folded may all go, whatever the state's index (a relay
    /// whose feed parent cannot prove any of them shared takes them all back).
    /// </summary>
    /// <exception cref="InvalidOperationException">An entry this log holds and the state folded would be dropped: a committed entry.</exception>
    public void TruncateAfter(ulong index)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // What the state folded from the entries this log holds: none below its first, or below an incomplete state's gap.
            ulong foldedFrom = Math.Max(_inner.FirstIndex, (_complete ? 0 : _missingThrough) + 1);
            if (index < _through && _through >= foldedFrom)
                throw new InvalidOperationException(
                    $"TruncateAfter({index}) would drop entries through {_through} that are already folded into the keyed state; only uncommitted entries may be truncated");
            if (_foldTarget > index) _foldTarget = index;
            _generation++;
        }
        _inner.TruncateAfter(index);
    }

    /// <summary>
    /// Passes through, after making the state empty and incomplete through <paramref name="nextIndex"/> - 1 (persisted first,
    /// so a restart knows it). Durable when it returns.
    /// </summary>
    public void ResetTo(ulong nextIndex)
    {
        if (!KeepsStateAcross(nextIndex)) DropState(nextIndex);
        _inner.ResetTo(nextIndex);
    }

    /// <summary>
    /// Whether a reset to <paramref name="nextIndex"/> skips nothing the state lacks (a relay's empty log pinned where its
    /// feed starts, say): the log starts again at or below what is folded, with the same committed entries, and folding
    /// goes on after it.
    /// </summary>
    private bool KeepsStateAcross(ulong nextIndex)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_complete || (nextIndex == 0 ? 0 : nextIndex - 1) > _through) return false;
            _generation++;
            if (_foldTarget > _through) _foldTarget = _through;
            Monitor.PulseAll(_gate);
            return true;
        }
    }

    private void DropState(ulong nextIndex)
    {
        lock (_persistGate)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _generation++;
                _version++;
                _state.Clear();
                _liveKeys = _tombstones = 0;
                _stateBytes = 0;
                _complete = false;
                _through = _missingThrough = nextIndex == 0 ? 0 : nextIndex - 1;
                _offered = null;
                // Entries appended from nextIndex on are not committed yet; the next ApplyRetention says how far.
                _foldTarget = _through;
                Monitor.PulseAll(_gate);
            }
            PersistLocked(throwOnDiskFailure: true);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_gate);
        }
        try
        {
            // Bounded: a fold step is at most 4 MiB; a thread stuck in a dead disk is left behind rather than hanging shutdown.
            _thread?.Join(TimeSpan.FromSeconds(10));
            bool folded;
            lock (_gate) folded = _through != _persistedThrough;
            if (_path is not null && folded)
            {
                lock (_persistGate) PersistLocked(throwOnDiskFailure: false);
            }
        }
        finally
        {
            _inner.Dispose();
        }
    }

    private static readonly Comparison<LogEntry> ByIndex = (a, b) => a.Index.CompareTo(b.Index);

    /// <summary>Sets a key's entry (lock held).</summary>
    private void Put(in LogEntry entry)
    {
        ref LogEntry slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_state, entry.Key, out bool existed);
        if (existed) Count(slot, -1);
        slot = entry;
        Count(entry, +1);
    }

    private void Count(in LogEntry entry, int sign)
    {
        if (entry.IsTombstone) _tombstones += sign;
        else _liveKeys += sign;
        _stateBytes += sign * entry.EncodedSize;
    }
}
