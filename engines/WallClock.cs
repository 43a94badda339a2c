namespace GeoRelay.Engines;

/// <summary>
/// Wall-clock time stamped into entries and heartbeats, so a learner anywhere can measure publish-to-delivery latency.
/// Engines take their monotonic time from <see cref="IEngineEnvironment.NowMicros"/>; this is only for stamps.
/// </summary>
public static class WallClock
{
    /// <summary>Microseconds since the Unix epoch (UTC).</summary>
    public static long UnixMicros() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
}
