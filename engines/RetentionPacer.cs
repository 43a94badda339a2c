using GeoRelay.Storage;

namespace GeoRelay.Engines;

/// <summary>
/// Applies a log's retention (size and age) at most ten times a second from an engine's tick, so every node keeps the
/// window the topology configures instead of growing without bound. A pass only sums the segments' sizes, and the
/// disk can overshoot the window by what is written between passes: at once a second a fast publisher (1.5 MB in a
/// second on loopback) had the whole load on disk before the first pass.
/// </summary>
public struct RetentionPacer
{
    private const long IntervalMicros = 100_000;
    private long _dueMicros;

    /// <summary>
    /// Applies retention when due, keeping every segment that holds <paramref name="keepFrom"/> or later. Returns the
    /// number of segments dropped and the oldest index before. A <see cref="KeyedLog"/> folds through <paramref name="committed"/>
    /// when given (else through <paramref name="keepFrom"/> - 1).
    /// </summary>
    public (int Dropped, ulong OldestBefore) OnTick(IEntryLog log, long nowMicros, ulong keepFrom = ulong.MaxValue, ulong? committed = null)
    {
        if (nowMicros < _dueMicros) return (0, 0);
        _dueMicros = nowMicros + IntervalMicros;
        ulong before = log.FirstIndex;
        // Age is judged by the leader's wall-clock timestamps on the entries, so this uses the wall clock too.
        var now = DateTimeOffset.UtcNow;
        int dropped = committed is { } through && log is KeyedLog keyed ? keyed.ApplyRetention(now, keepFrom, through) : log.ApplyRetention(now, keepFrom);
        return (dropped, before);
    }
}
