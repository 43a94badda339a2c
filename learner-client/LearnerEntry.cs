namespace GeoRelay.LearnerClient;

/// <summary>
/// One entry of the log, as the application receives it.
/// </summary>
/// <param name="Index">Position in the log: gap-free from 1 (a filtered subscription skips the entries it filters out).</param>
/// <param name="Epoch">Epoch of the leader that wrote the entry.</param>
/// <param name="Timestamp">When the leader accepted the entry, by its wall clock (UTC, microsecond precision).</param>
/// <param name="Key">The entry's key; empty when it has none.</param>
/// <param name="Payload">The entry's bytes.</param>
/// <param name="Flags">Whether the entry is a tombstone, or part of a snapshot of keyed state.</param>
/// <remarks>
/// <see cref="Key"/> and <see cref="Payload"/> are never reused or overwritten: the application may keep
/// them. They may be slices of one array holding a whole delivery frame (at most a few hundred KiB), so
/// an application that keeps a few entries out of many for a long time should copy them (<c>ToArray()</c>).
/// </remarks>
public readonly record struct LearnerEntry(ulong Index, ulong Epoch, DateTimeOffset Timestamp, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload,
    LearnerEntryFlags Flags = LearnerEntryFlags.None)
{
    /// <summary>The entry deletes <see cref="Key"/> (published with <see cref="PublisherClient.DeleteAsync"/> or <see cref="PublishEntry.Tombstone"/>).</summary>
    public bool IsTombstone => (Flags & LearnerEntryFlags.Tombstone) != 0;

    /// <summary>
    /// The entry is one live key's latest value in a snapshot of keyed state (a subscription from a snapshot), not
    /// a step of the stream: snapshot entries come in index order with gaps, and the stream goes on after the last.
    /// </summary>
    public bool IsSnapshot => (Flags & LearnerEntryFlags.Snapshot) != 0;

    /// <summary>
    /// A marker, not an entry (no key, no payload): a snapshot of the keyed state as of <see cref="Index"/> starts here.
    /// Drop the whole state: the snapshot's entries follow, then a <see cref="IsSnapshotEnd"/> marker. Another begin
    /// marker before the end means the transfer restarted with a newer snapshot: drop what the first one brought.
    /// </summary>
    public bool IsSnapshotBegin => (Flags & LearnerEntryFlags.SnapshotBegin) != 0;

    /// <summary>A marker, not an entry: the snapshot is complete, the state is the log's as of <see cref="Index"/>, and the stream goes on after it.</summary>
    public bool IsSnapshotEnd => (Flags & LearnerEntryFlags.SnapshotEnd) != 0;

    /// <summary>A snapshot's begin or end marker rather than an entry of the log.</summary>
    public bool IsMarker => (Flags & (LearnerEntryFlags.SnapshotBegin | LearnerEntryFlags.SnapshotEnd)) != 0;

    /// <summary><see cref="Timestamp"/> as microseconds since the Unix epoch, as it travels on the wire.</summary>
    public long TimestampMicros => (Timestamp.UtcTicks - DateTimeOffset.UnixEpoch.Ticks) / 10;

    internal static DateTimeOffset FromMicros(long micros)
    {
        long ticks = DateTimeOffset.UnixEpoch.Ticks + micros * 10;
        if (micros < 0 || ticks > DateTimeOffset.MaxValue.UtcTicks) return DateTimeOffset.UnixEpoch;
        return new DateTimeOffset(ticks, TimeSpan.Zero);
    }
}

/// <summary>What kind of entry a <see cref="LearnerEntry"/> is.</summary>
[Flags]
public enum LearnerEntryFlags : byte
{
    /// <summary>A value of the stream.</summary>
    None = 0,
    /// <summary>See <see cref="LearnerEntry.IsTombstone"/>.</summary>
    Tombstone = 1,
    /// <summary>See <see cref="LearnerEntry.IsSnapshot"/>.</summary>
    Snapshot = 2,
    /// <summary>See <see cref="LearnerEntry.IsSnapshotBegin"/>.</summary>
    SnapshotBegin = 4,
    /// <summary>See <see cref="LearnerEntry.IsSnapshotEnd"/>.</summary>
    SnapshotEnd = 8,
}

/// <summary>Where <see cref="LearnerClient.SubscribeAsync(ulong, CancellationToken)"/> starts, besides an index.</summary>
public static class SubscribeFrom
{
    /// <summary>The log's first entry.</summary>
    public const ulong Beginning = 1;

    /// <summary>
    /// A snapshot of the keyed state (<c>compaction: keyed</c>): each live key's latest entry, then the stream after it.
    /// On a cluster without keyed compaction that has never dropped an entry, the snapshot is empty and the stream starts
    /// at 1; one that has dropped entries ends the subscription with <see cref="SnapshotRequiredException"/>.
    /// </summary>
    public const ulong Snapshot = 0;
}

/// <summary>One entry of the log with its payload read as a <typeparamref name="T"/> (<see cref="LearnerClient.SubscribeAsync{T}"/>).</summary>
/// <typeparam name="T">The type the payload's serializer produced.</typeparam>
/// <param name="Index">Position in the log: gap-free from 1 (a filtered subscription skips the entries it filters out).</param>
/// <param name="Epoch">Epoch of the leader that wrote the entry.</param>
/// <param name="Timestamp">When the leader accepted the entry, by its wall clock (UTC, microsecond precision).</param>
/// <param name="Key">The entry's key; empty when it has none (the same memory as <see cref="LearnerEntry.Key"/>).</param>
/// <param name="Value">The payload, deserialized.</param>
public readonly record struct LearnerEntry<T>(ulong Index, ulong Epoch, DateTimeOffset Timestamp, ReadOnlyMemory<byte> Key, T Value);

/// <summary>
/// No endpoint still holds the index the subscription needs: the application must restore a snapshot
/// that covers everything below <see cref="OldestAvailableIndex"/> and subscribe from there.
/// </summary>
public sealed class SnapshotRequiredException : Exception
{
    /// <summary>Creates the exception for a subscription that needed <paramref name="requestedIndex"/>.</summary>
    public SnapshotRequiredException(ulong requestedIndex, ulong oldestAvailableIndex)
        : this(requestedIndex, oldestAvailableIndex, $"index {requestedIndex} is no longer retained by any endpoint; the oldest available is {oldestAvailableIndex}")
    {
    }

    /// <summary>A subscription from <see cref="SubscribeFrom.Snapshot"/> that no endpoint could answer.</summary>
    internal static SnapshotRequiredException NoSnapshot(ulong oldestAvailableIndex) =>
        new(SubscribeFrom.Snapshot, oldestAvailableIndex,
            $"no endpoint has a snapshot of keyed state (without compaction: keyed, or a node installed past its own state), " +
            $"and none holds the log from index 1; the oldest available is {oldestAvailableIndex}");

    private SnapshotRequiredException(ulong requestedIndex, ulong oldestAvailableIndex, string message) : base(message)
    {
        RequestedIndex = requestedIndex;
        OldestAvailableIndex = oldestAvailableIndex;
    }

    /// <summary>The index the subscription needed next; <see cref="SubscribeFrom.Snapshot"/> (0) when it asked for a snapshot.</summary>
    public ulong RequestedIndex { get; }

    /// <summary>The oldest index an endpoint still holds (the lowest any endpoint reported).</summary>
    public ulong OldestAvailableIndex { get; }
}

/// <summary>
/// Entries this subscription already handed to the application were taken back: with <c>delivery: durable</c> a
/// learner gets entries before they commit, and a leader change rewrote entries above <see cref="TruncatedAfter"/>.
/// The enumeration ends with this exception so the application cannot miss it: undo what it did for entries
/// <see cref="TruncatedAfter"/> + 1 to <see cref="LastDelivered"/>, then subscribe again from <see cref="ResumeFrom"/>.
/// Entries not yet handed to the application are dropped silently; with the default <c>delivery: committed</c> this
/// never happens.
/// </summary>
public sealed class LogTruncatedException : Exception
{
    /// <summary>Creates the exception: entries above <paramref name="truncatedAfter"/> up to <paramref name="lastDelivered"/> are void.</summary>
    public LogTruncatedException(ulong truncatedAfter, ulong lastDelivered)
        : base($"entries {truncatedAfter + 1}..{lastDelivered} already delivered were taken back by a leader change (delivery: durable); " +
            $"undo them and subscribe again from {truncatedAfter + 1}")
    {
        TruncatedAfter = truncatedAfter;
        LastDelivered = lastDelivered;
    }

    /// <summary>Entries up to this index stand; every entry above it that was delivered is void.</summary>
    public ulong TruncatedAfter { get; }

    /// <summary>The last index the application had been handed (from this subscription's start index, minus one, on).</summary>
    public ulong LastDelivered { get; }

    /// <summary>Where to subscribe again: <see cref="TruncatedAfter"/> + 1.</summary>
    public ulong ResumeFrom => TruncatedAfter + 1;
}

/// <summary><see cref="LearnerClient.ConnectAsync(LearnerClientOptions, System.Threading.CancellationToken)"/> reached no endpoint.</summary>
/// <param name="message">Which endpoints were tried, and the last failure.</param>
/// <param name="inner">The last endpoint's failure.</param>
public sealed class LearnerConnectException(string message, Exception? inner) : Exception(message, inner);
