namespace GeoRelay.Storage;

/// <summary>
/// The key-value state of a log through <see cref="Through"/>: each live key's latest entry, at its original index.
/// Immutable; its entries' <see cref="LogEntry.Key"/> and <see cref="LogEntry.Payload"/> are never overwritten, so a
/// reader may keep them.
/// </summary>
public sealed class KeyedSnapshot
{
    private readonly LogEntry[] _entries;

    internal KeyedSnapshot(ulong through, LogEntry[] entriesByIndex, long bytes)
    {
        Through = through;
        _entries = entriesByIndex;
        Entries = Array.AsReadOnly(entriesByIndex);
        Bytes = bytes;
    }

    /// <summary>The state is that of the log through this index.</summary>
    public ulong Through { get; }

    /// <summary>Each live key's latest entry (deleted keys excluded), by ascending <see cref="LogEntry.Index"/>.</summary>
    public IReadOnlyList<LogEntry> Entries { get; }

    /// <summary>Sum of the entries' <see cref="LogEntry.EncodedSize"/>.</summary>
    public long Bytes { get; }

    /// <summary>Position in <see cref="Entries"/> of the first entry with an index above <paramref name="index"/>; <c>Entries.Count</c> if none.</summary>
    public int StartAfter(ulong index)
    {
        int low = 0, high = _entries.Length;
        while (low < high)
        {
            int middle = low + (high - low) / 2;
            if (_entries[middle].Index <= index) low = middle + 1;
            else high = middle;
        }
        return low;
    }
}
