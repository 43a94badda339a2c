namespace GeoRelay.Storage;

/// <summary>
/// An append-only log of entries with gap-free indexes, shared by the leader, relays and members.
/// Implementations are thread-safe.
/// </summary>
/// <remarks>
/// An empty log may still fix the index its next append must have: after <see cref="ResetTo"/>, or after
/// <see cref="TruncateAfter"/> dropped every entry (then the next index is <c>index + 1</c>, unless that index was 0).
/// </remarks>
public interface IEntryLog : IDisposable
{
    /// <summary>Index of the oldest entry held; 0 when empty.</summary>
    ulong FirstIndex { get; }

    /// <summary>Index of the newest entry appended (maybe not yet durable); 0 when empty.</summary>
    ulong LastIndex { get; }

    /// <summary>Highest index made durable by <see cref="Flush"/> (fsync'd when <see cref="SegmentLogOptions.Fsync"/>).</summary>
    ulong DurableIndex { get; }

    /// <summary>
    /// The index the next <see cref="Append"/> must have: <see cref="LastIndex"/> + 1, the index an empty log pins, or 0
    /// when an empty log takes any first index.
    /// </summary>
    ulong NextIndex { get; }

    /// <summary>Epoch of the newest entry; 0 when empty.</summary>
    ulong LastEpoch { get; }

    /// <summary>
    /// Appends an entry (key and payload are copied). Its index must be <see cref="LastIndex"/> + 1, or, when the
    /// log is empty, anything &gt;= 1 (a relay may start mid-stream) unless the log fixes its next index.
    /// Returns false, and ignores the entry, when its index is already held (an idempotent duplicate).
    /// </summary>
    /// <exception cref="ArgumentException">The index leaves a gap or is 0, or the entry is too large.</exception>
    bool Append(in LogEntry entry);

    /// <summary>Group commit: writes every buffered record and fsyncs once; then <see cref="DurableIndex"/> covers them.</summary>
    void Flush();

    /// <summary>
    /// Whether <see cref="Flush"/> waits for the disk (an fsync). Engines run such a flush off their lock; one that only
    /// hands records to the OS they run in place, since a thread hop costs more than it does.
    /// </summary>
    bool FlushWaitsForDisk { get; }

    /// <summary>Gets the entry at <paramref name="index"/>; false if not held.</summary>
    bool TryGet(ulong index, out LogEntry entry);

    /// <summary>
    /// Appends to <paramref name="into"/> the entries from <paramref name="fromIndex"/> on while fewer than
    /// <paramref name="maxEntries"/> were read and their total <see cref="LogEntry.EncodedSize"/> stays within
    /// <paramref name="maxBytes"/> (always at least one if available). Returns how many were read; 0 when
    /// <paramref name="fromIndex"/> is outside [<see cref="FirstIndex"/>, <see cref="LastIndex"/>].
    /// </summary>
    int Read(ulong fromIndex, int maxEntries, long maxBytes, List<LogEntry> into);

    /// <summary>Drops every entry above <paramref name="index"/> (epoch fencing of uncommitted entries); durable when it returns.</summary>
    void TruncateAfter(ulong index);

    /// <summary>Drops everything; the next append must have index <paramref name="nextIndex"/> (a relay that fell too far behind). Durable when it returns.</summary>
    void ResetTo(ulong nextIndex);

    /// <summary>
    /// Drops whole oldest segments while the log exceeds <see cref="SegmentLogOptions.RetentionMaxBytes"/> or their newest
    /// entry is older than <see cref="SegmentLogOptions.RetentionMaxAge"/> at <paramref name="now"/>; never the active
    /// (newest) segment, nor one holding <paramref name="keepFrom"/> or a later index (a leader keeps what is not yet
    /// committed, so that its oldest entry is always committed). Returns how many segments were dropped.
    /// </summary>
    int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue);
}
