using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

public sealed partial class SegmentLog
{
    public void TruncateAfter(ulong index)
    {
        lock (_flushGate)
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                ThrowIfFailed();
                if (_next == 0 || index >= _next - 1) return;
                if (IsEmpty || index < _segments[0].BaseIndex)
                {
                    ResetCore(index == 0 ? 0 : index + 1);
                    return;
                }

                WritePending();
                DisposeRetired();
                bool deleted = false;
                while (_segments[^1].BaseIndex > index)
                {
                    DeleteSegment(_segments.Count - 1);
                    deleted = true;
                }

                Segment last = _segments[^1];
                LogEntry kept = ReadOne(last, index);
                long newSize = LocateEnd(last, index);
                _active ??= OpenWriterOrFail(last.Path, FileMode.Open, "open");
                try
                {
                    _active.SetLength(newSize);
                    _active.Position = newSize;
                }
                catch (Exception e) when (IsDiskError(e))
                {
                    throw Failed("truncate", last.Path, e);
                }
                SyncFile(_active);
                if (deleted && _options.Fsync) SyncDirectory();

                last.TruncateAfter(index, newSize, kept.Epoch, kept.TimestampMicros);
                _next = index + 1;
                _lastEpoch = kept.Epoch;
                if (_durable > index) _durable = index;
                _cache.TruncateAfter(index);
            }
        }
    }

    public void ResetTo(ulong nextIndex)
    {
        if (nextIndex == 0) throw new ArgumentOutOfRangeException(nameof(nextIndex), "Entry indexes start at 1.");
        lock (_flushGate)
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                ThrowIfFailed();
                ResetCore(nextIndex);
            }
        }
    }

    public int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            ThrowIfFailed();
            long total = 0;
            foreach (Segment segment in _segments) total += segment.Size;
            long cutoffMicros = (now.UtcTicks - DateTime.UnixEpoch.Ticks) / 10 - _options.RetentionMaxAge.Ticks / 10;

            int dropped = 0;
            while (_segments.Count > 1)
            {
                Segment oldest = _segments[0];
                if (total <= _options.RetentionMaxBytes && oldest.NewestTimestampMicros >= cutoffMicros) break;
                if (oldest.LastIndex >= keepFrom) break;
                total -= oldest.Size;
                DeleteSegment(0);
                dropped++;
            }
            if (dropped > 0)
            {
                _cache.DropBefore(_segments[0].BaseIndex);
                if (_options.Fsync) SyncDirectory();
            }
            return dropped;
        }
    }

    /// <summary>Drops every segment, then leaves an empty one named <paramref name="nextIndex"/> to pin the next index (none for 0).</summary>
    private void ResetCore(ulong nextIndex)
    {
        _buffered = 0;
        _active?.Dispose();
        _active = null;
        DisposeRetired();
        // Newest first: a crash part-way leaves a valid prefix of the old log.
        while (_segments.Count > 0) DeleteSegment(_segments.Count - 1);
        _cache.Clear();
        _next = nextIndex;
        _durable = 0;
        _lastEpoch = 0;
        if (nextIndex != 0)
        {
            CreateSegment(nextIndex); // syncs the directory when Fsync
        }
        else if (_options.Fsync)
        {
            SyncDirectory();
        }
    }

    private void DeleteSegment(int position)
    {
        Segment segment = _segments[position];
        if (position == _segments.Count - 1 && _active is not null)
        {
            _buffered = 0;
            _active.Dispose();
            _active = null;
        }
        segment.Dispose();
        try
        {
            File.Delete(segment.Path);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed("delete", segment.Path, e);
        }
        _segments.RemoveAt(position);
    }

    private LogEntry ReadOne(Segment segment, ulong index)
    {
        if (_cache.TryGet(index, out LogEntry entry)) return entry;
        _scratch.Clear();
        int count = 0;
        long bytes = 0;
        ReadSegment(segment, index, 1, 0, ref count, ref bytes, ulong.MaxValue, _scratch);
        entry = _scratch[0];
        _scratch.Clear();
        return entry;
    }

    /// <summary>File offset where the record after <paramref name="index"/> starts (its segment's size if none).</summary>
    private static long LocateEnd(Segment segment, ulong index)
    {
        long position = segment.FindOffset(index, out ulong at);
        Span<byte> header = stackalloc byte[RecordHeader.Size];
        while (true)
        {
            int read = RandomAccess.Read(segment.ReadHandle, header, position);
            if (read < RecordHeader.Size) throw Corrupt(segment, position, "truncated record header");
            var parsed = RecordHeader.Read(header);
            string? problem = RecordHeader.CheckLength(parsed.Length, segment.Size - position)
                ?? (parsed.Index != at ? $"index {parsed.Index} where {at} was expected" : null);
            if (problem is not null) throw Corrupt(segment, position, problem);
            position += parsed.RecordSize;
            if (at == index) return position;
            at++;
        }
    }
}
