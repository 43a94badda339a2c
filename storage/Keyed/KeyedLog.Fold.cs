namespace GeoRelay.Storage;

public sealed partial class KeyedLog
{
    private const int FoldStepEntries = 4096;
    private const long FoldStepBytes = 4L * 1024 * 1024;

    private readonly Thread? _thread;
    /// <summary>One fold pass at a time (synchronous callers of ApplyRetention may overlap); owns the two lists.</summary>
    private readonly object _foldGate = new();
    private readonly List<LogEntry> _read = new();
    private readonly List<LogEntry> _copies = new();
    private bool _wake;

    private void FoldLoop()
    {
        while (true)
        {
            lock (_gate)
            {
                while (!_wake && !_disposed) Monitor.Wait(_gate);
                if (_disposed) return;
                _wake = false;
            }
            try
            {
                FoldPass();
                PersistIfDue();
                lock (_gate) _lastFoldError = null;
            }
            catch (Exception e)
            {
                // The inner log failed (its own failure is what the engines act on) or was disposed under us: this
                // thread must not take the process down. Retention keeps everything not persisted, so nothing is lost.
                lock (_gate) _lastFoldError = e;
            }
        }
    }

    /// <summary>Folds the inner log from <see cref="Through"/> + 1 up to the fold target, in bounded steps.</summary>
    private void FoldPass()
    {
        lock (_foldGate)
        {
            while (true)
            {
                ulong from, target;
                long generation;
                lock (_gate)
                {
                    if (_disposed) return;
                    MergeOfferedIfReady();
                    from = _through + 1;
                    target = _foldTarget;
                    generation = _generation;
                }
                if (from > target) return;

                ulong first = _inner.FirstIndex;
                if (first == 0) return;
                if (first > from)
                {
                    // The log was installed or reset past the state: the writes in between are unknown.
                    lock (_gate)
                    {
                        if (generation != _generation || _through + 1 != from) continue;
                        _complete = false;
                        _through = _missingThrough = first - 1;
                        if (_foldTarget < _through) _foldTarget = _through;
                        _version++;
                        Monitor.PulseAll(_gate);
                    }
                    continue;
                }

                _read.Clear();
                if (_inner.Read(from, FoldStepEntries, FoldStepBytes, _read) == 0) return;
                // Copies made here, off the lock: the state owns its memory, and a read block of the inner log is not
                // kept alive by the one entry in it that is still current.
                _copies.Clear();
                ulong last = from - 1;
                long bytes = 0;
                foreach (LogEntry entry in _read)
                {
                    if (entry.Index > target) break;
                    last = entry.Index;
                    bytes += entry.EncodedSize;
                    if (entry.Key.IsEmpty || entry.Key.Span[0] == 0) continue;
                    _copies.Add(Copy(entry));
                }
                _read.Clear();
                lock (_gate)
                {
                    if (generation != _generation || _through + 1 != from) continue;
                    foreach (LogEntry copy in _copies) Put(copy);
                    _through = last;
                    _foldedBytesSincePersist += bytes;
                    _version++;
                    Monitor.PulseAll(_gate);
                }
                _copies.Clear();
            }
        }
    }

    private static LogEntry Copy(in LogEntry entry)
    {
        int keyLength = entry.Key.Length;
        var data = new byte[keyLength + entry.Payload.Length];
        entry.Key.Span.CopyTo(data);
        entry.Payload.Span.CopyTo(data.AsSpan(keyLength));
        return entry with { Key = data.AsMemory(0, keyLength), Payload = data.AsMemory(keyLength) };
    }

    private void PersistIfDue()
    {
        lock (_gate)
        {
            if (_through == _persistedThrough && !_persistDue) return;
            bool bytesDue = _persistDue || _foldedBytesSincePersist >= _options.PersistEveryBytes;
            bool timeDue = _now is { } now && _lastPersistAt is { } last && now - last >= _options.PersistEvery;
            if (!bytesDue && !timeDue) return;
        }
        lock (_persistGate) PersistLocked(throwOnDiskFailure: false);
    }

    /// <summary>
    /// Drops expired tombstones and writes the state (with a directory); <see cref="_persistGate"/> held. A disk failure
    /// is recorded (and thrown only if asked): the old file stays, and the next trigger tries again.
    /// </summary>
    private void PersistLocked(bool throwOnDiskFailure)
    {
        ulong through;
        bool complete, due;
        long bytes;
        DateTimeOffset? now;
        LogEntry[]? entries = null;
        lock (_gate)
        {
            now = _now;
            // An incomplete state keeps its tombstones: an image merged later must not bring the deleted key back.
            if (now is { } at && _complete) DropTombstonesOlderThan(ToMicros(at) - _options.TombstoneRetention.Ticks / TimeSpan.TicksPerMicrosecond);
            through = _through;
            complete = _complete;
            due = _persistDue;
            _persistDue = false;
            bytes = _foldedBytesSincePersist;
            if (_path is not null)
            {
                entries = new LogEntry[_state.Count];
                _state.Values.CopyTo(entries, 0);
            }
        }
        if (entries is not null)
        {
            Array.Sort(entries, ByIndex);
            try
            {
                KeyedStateFile.Write(_path!, through, complete, entries, _options.Fsync);
            }
            catch (DiskFailedException e)
            {
                lock (_gate)
                {
                    _lastPersistError = e;
                    _persistDue |= due;
                }
                if (throwOnDiskFailure) throw;
                return;
            }
        }
        lock (_gate)
        {
            _persistedThrough = through;
            _foldedBytesSincePersist -= bytes;
            if (now is not null) _lastPersistAt = now;
            _persists++;
            _lastPersistError = null;
        }
    }

    /// <summary>Lock held. Tombstones are not in snapshots, so dropping them changes no snapshot.</summary>
    private void DropTombstonesOlderThan(long cutoffMicros)
    {
        if (_tombstones == 0) return;
        List<ReadOnlyMemory<byte>>? expired = null;
        foreach (var (key, entry) in _state)
        {
            if (entry.IsTombstone && entry.TimestampMicros < cutoffMicros) (expired ??= new()).Add(key);
        }
        if (expired is null) return;
        foreach (ReadOnlyMemory<byte> key in expired)
        {
            _state.Remove(key, out LogEntry entry);
            Count(entry, -1);
        }
    }

    /// <summary>Unix microseconds, the unit of <see cref="LogEntry.TimestampMicros"/>; cannot overflow less a retention span, however long.</summary>
    private static long ToMicros(DateTimeOffset time) => (time.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
}
