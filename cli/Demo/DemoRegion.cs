using GeoRelay.Leader;
using HdrHistogram;
using GeoRelay.LearnerClient;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;
using GeoRelay.Engines;

namespace GeoRelay.Cli.Demo;

/// <summary>
/// One datacenter as the demo watches it: a few in-process learners (the SDK) subscribed to its
/// learner endpoints, measuring publish-to-learner latency from each entry's leader timestamp.
/// </summary>
internal sealed class DemoRegion : IAsyncDisposable
{
    private readonly List<(GeoRelay.LearnerClient.LearnerClient Client, Task Pump)> _learners = new();
    private readonly long[] _received;
    private readonly CancellationTokenSource _stop = new();

    // Latency in µs up to an hour (anything later counts as an hour), three significant digits. The learners record
    // concurrently into the Recorder (wait-free); TakeWindow swaps its interval histogram out without stopping them.
    private const long MaxLatencyMicros = 3_600_000_000;
    private readonly Recorder _window = HistogramFactory.With64BitBucketSize().WithValuesFrom(1).WithValuesUpTo(MaxLatencyMicros)
        .WithPrecisionOf(3).WithThreadSafeWrites().WithThreadSafeReads().Create();
    private readonly LongHistogram _total = new(1, MaxLatencyMicros, 3);
    private HistogramBase? _interval;

    public string Name { get; }
    public int Members { get; }
    public IReadOnlyList<string> Endpoints { get; }
    public int LearnerCount => _received.Length;

    public DemoRegion(TopologyConfig topology, DatacenterRoute route, int learners, ILoggerFactory loggers)
    {
        Name = route.Datacenter;
        var dc = topology.GetDatacenter(Name);
        Members = dc.Members.Count;
        // The leader serves no learners itself; the rest are in best-first order (relays, then members).
        var leaderLearners = topology.Leader.Learners;
        var endpoints = new List<string>();
        foreach (var e in route.LearnerEndpoints)
            if (e != leaderLearners) endpoints.Add(e.ToString());
        Endpoints = endpoints;
        _received = new long[endpoints.Count == 0 ? 0 : learners];
        for (int i = 0; i < _received.Length; i++)
        {
            var client = new GeoRelay.LearnerClient.LearnerClient(LearnerClientOptions.Default with
            {
                Endpoints = endpoints,
                NodeId = $"demo-{Name}-{i + 1}",
                Cluster = topology.Cluster,
                TlsCaFile = topology.Tls is { Learners: true } tls ? tls.CaFile : null,
                ReconnectInitial = TimeSpan.FromMilliseconds(50),
                ReconnectMax = TimeSpan.FromMilliseconds(500),
            }, loggers.CreateLogger("georelay.demo.learner"));
            int slot = i;
            _learners.Add((client, Task.Run(() => PumpAsync(client, slot))));
        }
    }

    private async Task PumpAsync(GeoRelay.LearnerClient.LearnerClient client, int slot)
    {
        try
        {
            await foreach (var entry in client.SubscribeAsync(1, _stop.Token).ConfigureAwait(false))
            {
                long latency = WallClock.UnixMicros() - entry.TimestampMicros;
                _window.RecordValue(Math.Clamp(latency, 0, MaxLatencyMicros));
                // Across reconnects and leader changes a learner must see each index once, in order.
                if ((long)entry.Index <= Interlocked.Read(ref _received[slot]))
                {
                    Failure = $"learner {slot + 1}: index {entry.Index} after {Interlocked.Read(ref _received[slot])} (a duplicate or out of order)";
                    return;
                }
                Interlocked.Exchange(ref _received[slot], (long)entry.Index);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e) when (e is SnapshotRequiredException or LearnerConnectException or IOException)
        {
            Failure = $"learner {slot + 1}: {e.Message}";
        }
    }

    /// <summary>Why a learner stopped early, if one did.</summary>
    public string? Failure { get; private set; }

    /// <summary>The lowest index any learner of the region has reached (every learner holds every entry up to it).</summary>
    public long MinReceived
    {
        get
        {
            if (_received.Length == 0) return 0;
            long min = long.MaxValue;
            for (int i = 0; i < _received.Length; i++) min = Math.Min(min, Interlocked.Read(ref _received[i]));
            return min;
        }
    }

    /// <summary>Latency (p50, p99, seconds; NaN when nothing arrived) since the last call, which it adds to the run's total.</summary>
    public (double P50, double P99) TakeWindow()
    {
        lock (_total)
        {
            _interval = _window.GetIntervalHistogram(_interval);
            _total.Add(_interval);
            return (Seconds(_interval, 50), Seconds(_interval, 99));
        }
    }

    /// <summary>Latency (p50, p99, seconds) over every window taken so far.</summary>
    public (double P50, double P99) TotalLatency()
    {
        lock (_total) return (Seconds(_total, 50), Seconds(_total, 99));
    }

    private static double Seconds(HistogramBase histogram, double percentile) =>
        histogram.TotalCount == 0 ? double.NaN : histogram.GetValueAtPercentile(percentile) / 1e6;

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        foreach (var (client, pump) in _learners)
        {
            await client.DisposeAsync().ConfigureAwait(false);
            try { await pump.ConfigureAwait(false); } catch (OperationCanceledException) { }
        }
        _stop.Dispose();
    }
}
