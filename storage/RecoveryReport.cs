namespace GeoRelay.Storage;

/// <summary>What <see cref="SegmentLog.Open"/> found and repaired.</summary>
public sealed record RecoveryReport
{
    /// <summary>Segment files kept.</summary>
    public int Segments { get; init; }

    /// <summary>Entries recovered.</summary>
    public long Entries { get; init; }

    /// <summary>Bytes of valid records scanned.</summary>
    public long BytesScanned { get; init; }

    /// <summary>First and last index recovered (0 when empty).</summary>
    public ulong FirstIndex { get; init; }

    /// <inheritdoc cref="FirstIndex"/>
    public ulong LastIndex { get; init; }

    /// <summary>The last segment's file when it ended in a torn or corrupt tail that was cut off; otherwise null.</summary>
    public string? TruncatedFile { get; init; }

    /// <summary>Offset the torn tail was cut at, and how many bytes it had.</summary>
    public long TruncatedAtOffset { get; init; }

    /// <inheritdoc cref="TruncatedAtOffset"/>
    public long TruncatedBytes { get; init; }

    /// <summary>Why the tail was cut (bad length, CRC mismatch, unexpected index); null when it was not.</summary>
    public string? TruncationReason { get; init; }

    /// <summary>Wall time the recovery took.</summary>
    public TimeSpan Elapsed { get; init; }
}
