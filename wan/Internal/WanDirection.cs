using System.Diagnostics;
using HdrHistogram;

namespace GeoRelay.Wan.Internal;

/// <summary>
/// One direction of a link, shared by every connection through it: the token bucket (as a virtual clock, so
/// it needs no refill timer), the jitter source and the counters.
/// </summary>
internal sealed class WanDirection(WanLinkOptions options, Random jitter)
{
    private readonly object _gate = new();
    private readonly long _delayTicks = DeliveryScheduler.TicksFrom(options.OneWayDelay);
    private readonly long _jitterTicks = DeliveryScheduler.TicksFrom(options.Jitter);
    private long _theoreticalArrival;
    private long _bytes, _chunks, _peakBuffered;

    // Largest lateness recorded, µs (one hour); anything later counts as this.
    private const long MaxLatenessMicros = 3_600_000_000;

    // Every connection's pump records here; the Recorder's writes are wait-free and its interval swaps let a
    // reader take a consistent copy while they go on. Read rarely: folded into _latenessTotal on demand.
    private readonly Recorder _lateness = HistogramFactory.With64BitBucketSize().WithValuesFrom(1).WithValuesUpTo(MaxLatenessMicros)
        .WithPrecisionOf(3).WithThreadSafeWrites().WithThreadSafeReads().Create();
    private readonly LongHistogram _latenessTotal = new(1, MaxLatenessMicros, 3);
    private HistogramBase? _latenessInterval;

    /// <summary>Lateness of deliveries against their due time, microseconds, since the link started: the emulator's own error. A copy.</summary>
    public HistogramBase Lateness
    {
        get
        {
            lock (_latenessTotal)
            {
                _latenessInterval = _lateness.GetIntervalHistogram(_latenessInterval);
                _latenessTotal.Add(_latenessInterval);
                return _latenessTotal.Copy();
            }
        }
    }

    /// <summary>When a chunk of <paramref name="bytes"/> read at <paramref name="now"/> is due at the other end.</summary>
    public long DueTime(long now, int bytes)
    {
        lock (_gate)
        {
            long departure = now;
            if (options.BandwidthBytesPerSecond > 0)
            {
                // GCRA: the bucket is empty when the theoretical arrival time runs more than a burst ahead of now.
                long cost = bytes * Stopwatch.Frequency / options.BandwidthBytesPerSecond;
                long burst = options.BurstBytes * Stopwatch.Frequency / options.BandwidthBytesPerSecond;
                _theoreticalArrival = Math.Max(_theoreticalArrival, now) + cost;
                departure = Math.Max(now, _theoreticalArrival - burst);
            }
            long extra = _jitterTicks > 0 ? jitter.NextInt64(_jitterTicks + 1) : 0;
            return departure + _delayTicks + extra;
        }
    }

    public void Delivered(int bytes)
    {
        Interlocked.Add(ref _bytes, bytes);
        Interlocked.Increment(ref _chunks);
    }

    /// <summary>A chunk's first byte goes out <paramref name="lateTicks"/> after it was due.</summary>
    public void Late(long lateTicks) =>
        _lateness.RecordValue((long)Math.Clamp(lateTicks * 1e6 / Stopwatch.Frequency, 0, MaxLatenessMicros));

    public void Buffered(long bytes)
    {
        long peak;
        while (bytes > (peak = Interlocked.Read(ref _peakBuffered)) && Interlocked.CompareExchange(ref _peakBuffered, bytes, peak) != peak) { }
    }

    public WanDirectionCounters Counters => new(Interlocked.Read(ref _bytes), Interlocked.Read(ref _chunks), Interlocked.Read(ref _peakBuffered));
}
