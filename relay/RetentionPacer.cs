using GeoRelay.Storage;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay;

/// <summary>
/// Applies a log's retention (size and age) at most once per second from an engine's tick, so relays and
/// members keep the window the topology configures instead of growing without bound.
/// </summary>
internal struct RetentionPacer
{
    private const long IntervalMicros = 1_000_000;
    private long _dueMicros;

    public void OnTick(IEntryLog log, long nowMicros, ILogger logger)
    {
        if (nowMicros < _dueMicros) return;
        _dueMicros = nowMicros + IntervalMicros;
        ulong before = log.FirstIndex;
        // Age is judged by the leader's wall-clock timestamps on the entries, so this uses the wall clock too.
        int dropped = log.ApplyRetention(DateTimeOffset.UtcNow);
        if (dropped > 0) RelayLog.RetentionApplied(logger, dropped, before, log.FirstIndex);
    }
}
