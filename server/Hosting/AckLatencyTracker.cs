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

    private readonly string[] _names;
    private readonly Queue<(ulong Index, long AtMicros)>[] _pending;
    private ulong _lastSampled;
    private long _lastSampleMicros = long.MinValue / 2; // far past, without overflow in the subtraction

    public AckLatencyTracker(IReadOnlyList<string> datacenters)
    {
        _names = [.. datacenters];
        _pending = new Queue<(ulong, long)>[_names.Length];
        for (int i = 0; i < _pending.Length; i++) _pending[i] = new();
    }

    /// <summary>Called with (datacenter, seconds) for every acked sample; runs under the engine lock, so keep it short.</summary>
    public Action<string, double>? Recorded { get; set; }

    /// <summary>Called under the engine lock after every event.</summary>
    public void Observe(LeaderEngine engine, long nowMicros)
    {
        var recorded = Recorded;
        if (recorded is null) return;
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
                recorded(_names[i], (nowMicros - s.AtMicros) / 1e6);
            }
        }
        if (sample)
        {
            _lastSampled = durable;
            _lastSampleMicros = nowMicros;
        }
    }
}
