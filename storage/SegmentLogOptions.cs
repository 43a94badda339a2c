namespace GeoRelay.Storage;

/// <summary>Options of <see cref="SegmentLog"/> (and the segment/retention model of <see cref="MemoryLog"/>).</summary>
public sealed record SegmentLogOptions
{
    /// <summary>Default options.</summary>
    public static SegmentLogOptions Default { get; } = new();

    /// <summary>A segment rolls over before it would grow past this many bytes (a single larger entry gets a segment of its own). Default 64 MiB.</summary>
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Retention drops the oldest whole segments while all segments together exceed this many bytes. Default 256 MiB; <see cref="long.MaxValue"/> disables it.</summary>
    public long RetentionMaxBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Retention drops the oldest whole segments whose newest entry timestamp is older than this. Default 1 hour; <see cref="TimeSpan.MaxValue"/> disables it.</summary>
    public TimeSpan RetentionMaxAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The sparse in-memory index holds one (entry index, file offset) pair per this many bytes of segment. Default 4096 bytes.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;

    /// <summary>Recent entries, by encoded size, kept in memory for fast catch-up reads. Default 64 MiB; 0 disables the cache.</summary>
    public long CacheBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Whether <see cref="IEntryLog.Flush"/>, truncation and segment roll-over fsync. Default true; false only survives process crashes, not OS crashes.</summary>
    public bool Fsync { get; init; } = true;

    /// <summary>
    /// Format of the segments this log creates: 2 (a header with magic bytes and the format version) or 1 (headerless,
    /// what builds before the header read: an older build takes a header for a torn record and cuts the newest segment
    /// there). Keep 1 while a node may still be rolled back to such a build; segments of either format are always read.
    /// Default 2.
    /// </summary>
    public int WriteFormat { get; init; } = 2;

    internal void Validate()
    {
        if (WriteFormat is < 1 or > 2) throw new ArgumentOutOfRangeException(nameof(WriteFormat), WriteFormat, "must be 1 (headerless) or 2");
        if (SegmentBytes <= 0) throw new ArgumentOutOfRangeException(nameof(SegmentBytes), SegmentBytes, "must be positive");
        if (RetentionMaxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(RetentionMaxBytes), RetentionMaxBytes, "must be positive");
        if (RetentionMaxAge <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RetentionMaxAge), RetentionMaxAge, "must be positive");
        if (IndexIntervalBytes <= 0) throw new ArgumentOutOfRangeException(nameof(IndexIntervalBytes), IndexIntervalBytes, "must be positive");
        if (CacheBytes < 0) throw new ArgumentOutOfRangeException(nameof(CacheBytes), CacheBytes, "must not be negative");
    }
}
