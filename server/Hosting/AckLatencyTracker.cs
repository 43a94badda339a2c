using GeoRelay.Leader;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Measures, per datacenter, how long after an entry became durable on the leader the datacenter
/// acked it (durable on every reachable member). Samples the durable index at most once per
/// millisecond, so the cost is a few queue operations per engine event whatever the entry rate.
/// </summary>
public sealed class AckLatencyTracker
{
    private const int MaxPendingSamples = 8192;
    private const long SampleEveryMicros = 1000;
    private const int RecentSamples = 1024;

    private readonly string[] _names;
    private readonly Queue<(ulong Index, long AtMicros)>[] _pending;
    // The last samples per datacenter, for the percentiles /status shows; read from admin threads, hence the lock.
    private readonly double[][] _recent;
    private readonly int[] _recentCount;
    private ulong _lastSampled;
    private long _lastSampleMicros = long.MinValue / 2; // far past, without overflow in the subtraction

    public AckLatencyTracker(IReadOnlyList<string> datacenters)
    {
        _names = [.. datacenters];
        _pending = new Queue<(ulong, long)>[_names.Length];
        for (int i = 0; i < _pending.Length; i++) _pending[i] = new();
        _recent = new double[_names.Length][];
        for (int i = 0; i < _recent.Length; i++) _recent[i] = new double[RecentSamples];
        _recentCount = new int[_names.Length];
    }

    /// <summary>Called with (datacenter, seconds) for every acked sample; runs under the engine lock, so keep it short.</summary>
    public Action<string, double>? Recorded { get; set; }

    /// <summary>Called under the engine lock after every event.</summary>
    public void Observe(LeaderEngine engine, long nowMicros)
    {
        var recorded = Recorded;
        ulong durable = engine.DurableIndex;
        bool sample = durable > _lastSampled && nowMicros - _lastSampleMicros >= SampleEveryMicros;
        for (int i = 0; i < _names.Length; i++)
        {
            var queue = _pending[i];
            if (sample && queue.Count < MaxPendingSamples) queue.Enqueue((durable, nowMicros));
            if (queue.Count == 0) continue;
            ulong acked = engine.DeliveredTo(_names[i]);
            while (queue.TryPeek(out var s) && s.Index <= acked)
            {
                queue.Dequeue();
                double seconds = (nowMicros - s.AtMicros) / 1e6;
                lock (_recent) _recent[i][_recentCount[i]++ % RecentSamples] = seconds;
                recorded?.Invoke(_names[i], seconds);
            }
        }
        if (sample)
        {
            _lastSampled = durable;
            _lastSampleMicros = nowMicros;
        }
    }

    /// <summary>The median and 99th percentile, in seconds, of the datacenter's last acked samples (up to 1024); null before the first.</summary>
    public (double P50, double P99)? Recent(string datacenter)
    {
        int i = Array.IndexOf(_names, datacenter);
        if (i < 0) return null;
        double[] samples;
        lock (_recent)
        {
            int n = Math.Min(_recentCount[i], RecentSamples);
            if (n == 0) return null;
            samples = _recent[i][..n];
        }
        Array.Sort(samples);
        return (samples[(samples.Length - 1) / 2], samples[(int)Math.Ceiling(samples.Length * 0.99) - 1]);
    }
}
