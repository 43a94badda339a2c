namespace GeoRelay.Wan;

/// <summary>How a <see cref="WanLink"/> shapes traffic. The same shaping applies in both directions of every connection through it.</summary>
public sealed record WanLinkOptions
{
    public static WanLinkOptions Default { get; } = new();

    /// <summary>Delay every byte gets, one way. Default zero.</summary>
    public TimeSpan OneWayDelay { get; init; }

    /// <summary>
    /// Extra delay drawn uniformly from [0, Jitter] per chunk read, so a byte is never faster than
    /// <see cref="OneWayDelay"/>; a chunk never overtakes the one before it (no reordering). Default zero.
    /// </summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>Rate cap per direction, shared by every connection through the link, in bytes per second; 0 (the default) is unlimited.</summary>
    public long BandwidthBytesPerSecond { get; init; }

    /// <summary>Burst the token bucket allows above the rate, in bytes. Default 64 KiB.</summary>
    public int BurstBytes { get; init; } = 64 * 1024;

    /// <summary>
    /// Bytes one direction of one connection may hold in flight (read, not yet delivered). When full the link stops
    /// reading, so TCP flow control pushes back on the sender. Must exceed the bandwidth-delay product for the link
    /// to reach its rate. Default 8 MiB.
    /// </summary>
    public int MaxBufferedBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Largest single read, in bytes. Default 64 KiB.</summary>
    public int ReadChunkBytes { get; init; } = 64 * 1024;

    /// <summary>Seed of the jitter; null (the default) picks one.</summary>
    public int? Seed { get; init; }

    internal void Validate()
    {
        if (OneWayDelay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(OneWayDelay), OneWayDelay, "must not be negative");
        if (Jitter < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(Jitter), Jitter, "must not be negative");
        if (BandwidthBytesPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(BandwidthBytesPerSecond), BandwidthBytesPerSecond, "must not be negative (0 is unlimited)");
        if (BurstBytes < 1) throw new ArgumentOutOfRangeException(nameof(BurstBytes), BurstBytes, "must be at least 1");
        if (ReadChunkBytes < 1) throw new ArgumentOutOfRangeException(nameof(ReadChunkBytes), ReadChunkBytes, "must be at least 1");
        if (MaxBufferedBytes < ReadChunkBytes)
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedBytes), MaxBufferedBytes, $"must be at least ReadChunkBytes ({ReadChunkBytes})");
    }
}

/// <summary>What <see cref="WanLink.Cut"/> does to the link.</summary>
public enum WanCutMode
{
    /// <summary>
    /// Like a partition: nothing is delivered and new connections are held (accepted, not yet dialled onward) until
    /// <see cref="WanLink.Heal"/>; bytes sent meanwhile wait (bounded, then back-pressure) and flow on after the heal,
    /// as TCP would retransmit them. Peers notice only through their own heartbeats.
    /// </summary>
    Blackhole,

    /// <summary>Every connection through the link is closed at once and new ones are refused until <see cref="WanLink.Heal"/>.</summary>
    Reset,
}

/// <summary>Traffic one way through a link since it started.</summary>
public readonly record struct WanDirectionCounters(long Bytes, long Chunks, long PeakBufferedBytes);

/// <summary>A snapshot of a link's counters; "forward" is from the dialling side to the target.</summary>
public readonly record struct WanLinkCounters(WanDirectionCounters Forward, WanDirectionCounters Reverse, int ConnectionsAccepted, int ConnectionsOpen)
{
    public long TotalBytes => Forward.Bytes + Reverse.Bytes;
}
