namespace GeoRelay.Storage.Internal;

/// <summary>
/// The most recent entries (a contiguous run ending at the log's last index) whose encoded sizes sum to at most
/// a byte budget. Keys and payloads are copied into large chunks. Memory handed to readers stays valid after
/// eviction or truncation until about the budget's worth of newer entries has been added: the chunk whose
/// entries were all evicted is reused for new ones then (every reader copies what it reads at once; leaving
/// each chunk to the GC instead cost the in-process cluster's 13 logs a fresh, page-faulted chunk per 4 MiB).
/// </summary>
internal sealed class EntryCache
{
    private struct Slot
    {
        public ulong Epoch;
        public long TimestampMicros;
        public byte[] Chunk;
        public int Offset;
        public int KeyLength;
        public int PayloadLength;
        public EntryFlags Flags;
    }

    private readonly long _capacityBytes;
    private readonly int _chunkSize;
    private Slot[] _ring = new Slot[64];
    private int _head;
    private int _count;
    private ulong _firstIndex;
    private long _bytes;
    private byte[]? _chunk;
    private int _chunkUsed;
    /// <summary>A chunk no cached entry points into any more, kept for the next chunk.</summary>
    private byte[]? _spare;
    private bool _neverReuse;

    /// <summary>
    /// Chunks are never reused, so memory handed to readers is never overwritten: for a log read on another thread
    /// than the one appending (keyed compaction's fold), whose reader may copy only after many entries were added.
    /// </summary>
    public void NeverReuseChunks()
    {
        _neverReuse = true;
        _spare = null;
    }

    public EntryCache(long capacityBytes)
    {
        _capacityBytes = capacityBytes;
        _chunkSize = (int)Math.Clamp(capacityBytes / 16, 4096, 4 * 1024 * 1024);
    }

    public int Count => _count;
    public long Bytes => _bytes;
    /// <summary>First cached index, or <see cref="ulong.MaxValue"/> when empty.</summary>
    public ulong FirstIndex => _count == 0 ? ulong.MaxValue : _firstIndex;

    public bool Contains(ulong index) => _count > 0 && index >= _firstIndex && index - _firstIndex < (ulong)_count;

    public void Add(in LogEntry entry)
    {
        int size = entry.EncodedSize;
        if (size > _capacityBytes)
        {
            Clear();
            return;
        }
        if (_count > 0 && entry.Index != _firstIndex + (ulong)_count) Clear();

        int dataLength = entry.Key.Length + entry.Payload.Length;
        if (_chunk is null || _chunk.Length - _chunkUsed < dataLength)
        {
            // Every byte is written before it is read: zeroing megabytes per chunk would be wasted.
            int length = Math.Max(_chunkSize, dataLength);
            if (_spare is not null && _spare.Length >= length) { _chunk = _spare; _spare = null; }
            else _chunk = GC.AllocateUninitializedArray<byte>(length);
            _chunkUsed = 0;
        }
        entry.Key.Span.CopyTo(_chunk.AsSpan(_chunkUsed));
        entry.Payload.Span.CopyTo(_chunk.AsSpan(_chunkUsed + entry.Key.Length));

        if (_count == _ring.Length) Grow();
        if (_count == 0) _firstIndex = entry.Index;
        _ring[(_head + _count) % _ring.Length] = new Slot
        {
            Epoch = entry.Epoch,
            TimestampMicros = entry.TimestampMicros,
            Chunk = _chunk,
            Offset = _chunkUsed,
            KeyLength = entry.Key.Length,
            PayloadLength = entry.Payload.Length,
            Flags = entry.Flags,
        };
        _chunkUsed += dataLength;
        _count++;
        _bytes += size;
        while (_bytes > _capacityBytes) RemoveFirst();
    }

    public bool TryGet(ulong index, out LogEntry entry)
    {
        if (!Contains(index))
        {
            entry = default;
            return false;
        }
        entry = At(index);
        return true;
    }

    /// <summary>Reads cached entries from <paramref name="fromIndex"/> under the shared limits; false once a limit stopped it.</summary>
    public bool Read(ulong fromIndex, int maxEntries, long maxBytes, ref int count, ref long bytes, List<LogEntry> into)
    {
        for (ulong index = fromIndex; Contains(index); index++)
        {
            if (count >= maxEntries) return false;
            LogEntry entry = At(index);
            int size = entry.EncodedSize;
            if (count > 0 && bytes + size > maxBytes) return false;
            into.Add(entry);
            count++;
            bytes += size;
        }
        return true;
    }

    public void TruncateAfter(ulong index)
    {
        // The chunk is not rewound: readers may still hold the dropped entries' memory.
        while (_count > 0 && _firstIndex + (ulong)_count - 1 > index)
        {
            ref Slot slot = ref _ring[(_head + _count - 1) % _ring.Length];
            _bytes -= RecordHeader.Size + slot.KeyLength + slot.PayloadLength;
            slot = default;
            _count--;
        }
    }

    public void DropBefore(ulong index)
    {
        while (_count > 0 && _firstIndex < index) RemoveFirst();
    }

    public void Clear()
    {
        Array.Clear(_ring);
        _head = 0;
        _count = 0;
        _bytes = 0;
        _chunk = null;
        _chunkUsed = 0;
        _spare = null;
    }

    private LogEntry At(ulong index)
    {
        ref Slot slot = ref _ring[(_head + (int)(index - _firstIndex)) % _ring.Length];
        return new LogEntry(index, slot.Epoch, slot.TimestampMicros,
            new ReadOnlyMemory<byte>(slot.Chunk, slot.Offset, slot.KeyLength),
            new ReadOnlyMemory<byte>(slot.Chunk, slot.Offset + slot.KeyLength, slot.PayloadLength), slot.Flags);
    }

    private void RemoveFirst()
    {
        ref Slot slot = ref _ring[_head];
        byte[] chunk = slot.Chunk;
        _bytes -= RecordHeader.Size + slot.KeyLength + slot.PayloadLength;
        slot = default;
        _head = (_head + 1) % _ring.Length;
        _count--;
        _firstIndex++;
        // The oldest entry of a chunk went last: nothing cached points into it any more.
        if (!_neverReuse && chunk != _chunk && (_count == 0 || _ring[_head].Chunk != chunk) && chunk.Length == _chunkSize) _spare = chunk;
    }

    private void Grow()
    {
        var ring = new Slot[_ring.Length * 2];
        for (int i = 0; i < _count; i++) ring[i] = _ring[(_head + i) % _ring.Length];
        _ring = ring;
        _head = 0;
    }
}
