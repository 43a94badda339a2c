using System.Text.Json;
using GeoRelay.Cli.Demo;
using GeoRelay.TestUtilities;

namespace GeoRelay.Bench.Snapshot;

/// <summary>
/// One loopback cluster of real `georelay` processes for the snapshot benchmark, the shape the cli benchmark uses:
/// leader and m1 in <c>home</c>, relay p1 and m2 in <c>edge</c>; no elections, <c>fsync: false</c>, an admin port on
/// every node. Samples every node's disk (segments and keyed state) on a timer from start to disposal.
/// </summary>
internal sealed class SnapshotCluster : IAsyncDisposable
{
    public static readonly string[] NodeIds = ["leader", "m1", "m2", "p1"];
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private readonly string _directory;
    private readonly List<GeoRelayProcess> _processes;
    private readonly Dictionary<string, string> _admin;
    private readonly CancellationTokenSource _stopSampling = new();
    private readonly Task _sampling;
    private readonly object _gate = new();
    private readonly Dictionary<string, DiskPeak> _peaks = new();

    public string Publish { get; }
    public string RelayLearners { get; }
    public int RelayPid => _processes.First(p => p.Name == "p1").Id;

    /// <summary>Bytes a node may hold on disk at a sample given its keyed state then; null for no bound.</summary>
    public Func<long, long>? Bound { get; }

    /// <summary>One sample of one node's disk.</summary>
    public sealed record DiskSample(long Segments, long State, long StateTemporary, long? Bound)
    {
        public long Total => Segments + State + StateTemporary;
        public long? Over => Bound is { } b ? Total - b : null;
    }

    /// <summary>A node's largest sample, the one that came closest to (or went furthest past) the bound, and how many were taken.</summary>
    public sealed record DiskPeak(DiskSample Largest, DiskSample Closest, long Samples);

    private SnapshotCluster(string directory, List<GeoRelayProcess> processes, Dictionary<string, string> admin, string publish, string relayLearners,
        Func<long, long>? bound, TimeSpan sampleEvery)
    {
        _directory = directory;
        _processes = processes;
        _admin = admin;
        Publish = publish;
        RelayLearners = relayLearners;
        Bound = bound;
        _sampling = Task.Run(() => SampleAsync(sampleEvery, _stopSampling.Token));
    }

    /// <param name="defaults">Lines under <c>defaults:</c> besides elections and fsync (retention, compaction), indented two spaces.</param>
    public static async Task<SnapshotCluster> StartAsync(string name, string defaults, Func<long, long>? bound, TimeSpan sampleEvery)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"georelay-snapshot-{Environment.ProcessId}-{name}-{Guid.NewGuid():N}"[..48]);
        Directory.CreateDirectory(directory);
        // The ports below are placeholders, each replaced by a free one.
        string yaml = LocalCluster.WithFreePorts($$"""
            cluster: snapshot-bench
            leader: leader
            insecure: true
            defaults:
              elections: false
              fsync: false
            {{defaults}}
            datacenters:
              home: { members: [m1] }
              edge: { relays: [p1], members: [m2] }
            nodes:
              leader: { dc: home, publish: 127.0.0.1:1, listen: 127.0.0.1:2, admin: 127.0.0.1:3 }
              m1: { dc: home, listen: 127.0.0.1:11, learners: 127.0.0.1:12, admin: 127.0.0.1:13 }
              m2: { dc: edge, listen: 127.0.0.1:21, learners: 127.0.0.1:22, admin: 127.0.0.1:23 }
              p1: { dc: edge, listen: 127.0.0.1:31, learners: 127.0.0.1:32, admin: 127.0.0.1:33 }

            """);
        string config = Path.Combine(directory, "topology.yaml");
        await File.WriteAllTextAsync(config, yaml);
        var topology = GeoRelay.Topology.TopologyLoader.LoadFile(config).GetConfigOrThrow();
        var admin = NodeIds.ToDictionary(id => id, id => topology.GetNode(id).Admin!.Value.ToString());
        var processes = new List<GeoRelayProcess>();
        try
        {
            foreach (var id in NodeIds)
            {
                string command = id == "leader" ? "leader" : id == "p1" ? "relay --node p1" : $"member --node {id}";
                processes.Add(new GeoRelayProcess(id, $"{command} --config \"{config}\" --data \"{Path.Combine(directory, id)}\""));
            }
            await processes[0].WaitForLineAsync("Listening for Publish connections", TimeSpan.FromSeconds(90));
            await processes[3].WaitForLineAsync(@"Upstream leader \(epoch \d+\) connected", TimeSpan.FromSeconds(90));
        }
        catch
        {
            foreach (var p in processes) p.Dispose();
            Directory.Delete(directory, recursive: true);
            throw;
        }
        return new SnapshotCluster(directory, processes, admin, topology.Leader.Publish!.Value.ToString(),
            topology.GetNode("p1").Learners!.Value.ToString(), bound, sampleEvery);
    }

    /// <summary>Everything a node printed so far.</summary>
    public string Output(string node) => _processes.First(p => p.Name == node).Output;

    public async Task<JsonElement> StatusAsync(string node) =>
        JsonDocument.Parse(await Http.GetStringAsync($"http://{_admin[node]}/status")).RootElement;

    /// <summary>Bytes the node has sent on its learner port, over every learner connection so far (the <c>learners</c> peer of <c>/status</c>).</summary>
    public async Task<long> LearnerBytesSentAsync(string node)
    {
        foreach (var peer in (await StatusAsync(node)).GetProperty("peers").EnumerateArray())
            if (peer.GetProperty("id").GetString() == "learners") return peer.GetProperty("bytesSent").GetInt64();
        return 0;
    }

    /// <summary>Waits until the relay retains <paramref name="index"/> (it can serve it to learners).</summary>
    public async Task WaitForRelayAsync(ulong index, TimeSpan patience)
    {
        using var limit = new CancellationTokenSource(patience);
        while ((await StatusAsync("p1")).GetProperty("indexes").GetProperty("retained").GetUInt64() < index)
            await Task.Delay(50, limit.Token); // polling an HTTP status: there is nothing to wait on
    }

    /// <summary>Each node's worst disk sample so far.</summary>
    public Dictionary<string, DiskPeak> Peaks()
    {
        lock (_gate) return new Dictionary<string, DiskPeak>(_peaks);
    }

    /// <summary>What a node holds on disk now.</summary>
    public (long Segments, long State, long StateTemporary) DiskOf(string node)
    {
        long segments = 0, state = 0, temporary = 0;
        var dir = new DirectoryInfo(Path.Combine(_directory, node));
        if (!dir.Exists) return (0, 0, 0);
        foreach (var file in dir.EnumerateFiles())
        {
            try
            {
                if (file.Name.EndsWith(".log", StringComparison.Ordinal)) segments += file.Length;
                else if (file.Name == "keyed-state") state = file.Length;
                else if (file.Name == "keyed-state.tmp") temporary = file.Length;
            }
            catch (FileNotFoundException) { } // dropped by retention, or renamed, between listing and reading
        }
        return (segments, state, temporary);
    }

    private async Task SampleAsync(TimeSpan every, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            do
            {
                foreach (var node in NodeIds)
                {
                    var (segments, state, temporary) = DiskOf(node);
                    var sample = new DiskSample(segments, state, temporary, Bound?.Invoke(state));
                    lock (_gate)
                    {
                        if (_peaks.GetValueOrDefault(node) is not { } old)
                        {
                            _peaks[node] = new DiskPeak(sample, sample, 1);
                            continue;
                        }
                        _peaks[node] = new DiskPeak(sample.Total > old.Largest.Total ? sample : old.Largest,
                            sample.Over > old.Closest.Over ? sample : old.Closest, old.Samples + 1);
                    }
                }
            } while (await timer.WaitForNextTickAsync(stop));
        }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stopSampling.Cancel();
        await _sampling;
        foreach (var p in _processes)
        {
            try { await p.TerminateAsync(TimeSpan.FromSeconds(30)); }
            catch (TimeoutException) { } // Dispose kills it
            p.Dispose();
        }
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
