namespace GeoRelay.Storage;

/// <summary>Options of <see cref="KeyedLog"/>: when the folded key-value state is written out and how long tombstones stay in it.</summary>
public sealed record KeyedCompactionOptions
{
    /// <summary>Default options.</summary>
    public static KeyedCompactionOptions Default { get; } = new();

    /// <summary>
    /// A tombstone stays in the state until its entry's timestamp is this much older than the time of a persist, so a
    /// reader that saw the key before learns it was deleted. Default 24 hours; zero drops tombstones at the next persist.
    /// </summary>
    public TimeSpan TombstoneRetention { get; init; } = TimeSpan.FromHours(24);

    /// <summary>The state is persisted once this many bytes of entries (by <see cref="LogEntry.EncodedSize"/>) were folded since the last persist. Default 64 MiB.</summary>
    public long PersistEveryBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// The state is also persisted when anything was folded since the last persist and this long has passed, judged by
    /// the <c>now</c> given to <see cref="KeyedLog.ApplyRetention"/>. Default 10 seconds; zero persists at every retention pass that folded something.
    /// </summary>
    public TimeSpan PersistEvery { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether a persist fsyncs the state file and its directory. Default true; false only survives process crashes, not OS crashes.</summary>
    public bool Fsync { get; init; } = true;

    /// <summary>
    /// Fold and persist on a background thread (default true). False folds and persists inside
    /// <see cref="KeyedLog.ApplyRetention"/>, deterministically, for the simulation and tests.
    /// </summary>
    public bool Background { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first property out of range.</summary>
    public void Validate()
    {
        if (TombstoneRetention < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(TombstoneRetention), TombstoneRetention, "must not be negative");
        if (PersistEveryBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(PersistEveryBytes), PersistEveryBytes, "must be positive (bytes of folded entries between persists)");
        if (PersistEvery < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(PersistEvery), PersistEvery, "must not be negative");
    }
}
