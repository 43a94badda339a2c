using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Bench.Nats;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Cli;
using GeoRelay.Cli.Demo;
using GeoRelay.Topology;

namespace GeoRelay.Bench.CrossRegion;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;
using GeoRelay.TestUtilities;

/// <summary>One system under test: its processes, its learners in the bench process, its publisher.</summary>
public interface ISystemUnderTest : IAsyncDisposable
{
    string Name { get; }
    string Description { get; }
    Task StartAsync(CancellationToken cancellationToken);
    Task StartLearnersAsync(Recorder recorder, CancellationToken cancellationToken);
    ValueTask PublishAsync(IReadOnlyList<byte[]> payloads);
    /// <summary>Kills the region's first relay; false when the system has none to kill.</summary>
    bool KillRelay(string region);
    /// <summary>Process name → pid of every process the system runs (alive or not).</summary>
    IReadOnlyDictionary<string, int> Processes { get; }
    /// <summary>Bytes the leader (or the publisher's NATS server) sent in total, read as the system stops; null when unknown.</summary>
    Task<long?> StopAndReadLeaderEgressAsync();
}

/// <summary>
/// GeoRelay as real daemons (georelay leader/relay/member): "direct" (the leader sends to every member, and the
/// learners of every region subscribe to the leader region's members across the WAN), "relays-plain" (one batch
/// per region through a relay, without mux and with compression level 0), "mux-plain" (mux, compression level 0: which
/// of the two costs what) or "georelay" (mux + streaming zstd).
/// Only the leader crosses regions as a dialler, so only its copy of the topology points at the WAN links.
/// </summary>
public sealed class GeoRelaySystem(string mode, Scenario scenario, WanMesh mesh) : ISystemUnderTest
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"georelay-xr-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
    private readonly Dictionary<string, GeoRelayProcess> _processes = new();
    private readonly List<LearnerClient> _learners = new();
    private readonly List<Task> _learnerLoops = new();
    private readonly Queue<ValueTask<PublishResult>> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private TopologyConfig _topology = null!;
    private PublisherClient? _publisher;

    public string Name => mode;

    public string Description => mode switch
    {
        "direct" => "GeoRelay, relays off (`georelay leader --direct`): the leader sends to every member itself; every learner subscribes to a member in the leader's region, so each learner's stream crosses the WAN on its own",
        "relays-plain" => "GeoRelay through one relay per region, mux off (`--no-mux`) and `compression: { level: 0 }`",
        "mux-plain" => "GeoRelay through one relay per region, mux on and `compression: { level: 0 }`",
        "georelay-durable" => "GeoRelay as designed, learners given entries once durable where they are served (`delivery: durable`) instead of once committed",
        _ => "GeoRelay as designed: one mux batch per region, streaming zstd (level 1), through the first relay; learners get committed entries (the default `delivery: committed`)",
    };

    public IReadOnlyDictionary<string, int> Processes => _processes.ToDictionary(p => p.Key, p => p.Value.Id);

    private string Id(string region, string role, int n) => $"{region}-{role}{n}";
    private string LeaderId => $"{scenario.LeaderRegion}-leader";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_directory);
        var nodes = new List<(string Id, string Region, string Role)> { (LeaderId, scenario.LeaderRegion, "leader") };
        foreach (var (region, spec) in scenario.Regions)
        {
            for (int i = 1; i <= spec.Relays && region != scenario.LeaderRegion; i++) nodes.Add((Id(region, "p", i), region, "relay"));
            for (int i = 1; i <= spec.Members; i++) nodes.Add((Id(region, "m", i), region, "member"));
        }
        var free = new Queue<int>(LocalCluster.FreeLoopbackPorts(nodes.Count * 4)); // listen, learners, publish, the leader's link route
        var listen = new Dictionary<string, IPEndPoint>();
        var learners = new Dictionary<string, IPEndPoint>();
        int publish = 0;
        foreach (var (id, _, role) in nodes)
        {
            listen[id] = new IPEndPoint(IPAddress.Loopback, free.Dequeue());
            learners[id] = new IPEndPoint(IPAddress.Loopback, free.Dequeue());
            if (role == "leader") publish = free.Dequeue();
        }

        string configPath = Path.Combine(_directory, "topology.yaml");
        File.WriteAllText(configPath, Yaml(nodes, listen, learners, publish));
        _topology = TopologyLoader.LoadFile(configPath).GetConfigOrThrow();
        // The leader's copy: every node outside its region is reached through the link between the two regions.
        var leaderListen = nodes.ToDictionary(n => n.Id, n => mesh.Route(scenario.LeaderRegion, n.Region, listen[n.Id], free.Dequeue()));
        string leaderConfig = Path.Combine(_directory, "topology-leader.yaml");
        File.WriteAllText(leaderConfig, Yaml(nodes, leaderListen, learners, publish));
        TopologyLoader.LoadFile(leaderConfig).GetConfigOrThrow();

        var ready = new List<Task>();
        foreach (var (id, _, role) in nodes.Where(n => n.Role != "leader"))
        {
            var command = role == "relay" ? "relay" : "member";
            var process = Start(id, $"{command} --config \"{configPath}\" --node {id} --data \"{Path.Combine(_directory, id)}\"");
            ready.Add(process.WaitForLineAsync("Listening for Peer", TimeSpan.FromSeconds(90)));
        }
        await Task.WhenAll(ready).WaitAsync(cancellationToken);
        string flags = mode switch { "direct" => " --direct", "relays-plain" => " --no-mux --compression-level 0", "mux-plain" => " --compression-level 0", _ => "" };
        var leader = Start(LeaderId, $"leader --config \"{leaderConfig}\" --data \"{Path.Combine(_directory, LeaderId)}\"{flags}");
        await leader.WaitForLineAsync("Listening for Publish", TimeSpan.FromSeconds(90)).WaitAsync(cancellationToken);
        _publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [$"127.0.0.1:{publish}"] }, cancellationToken);
    }

    private GeoRelayProcess Start(string id, string arguments) => _processes[id] = new GeoRelayProcess(id, arguments);

    private string Yaml(List<(string Id, string Region, string Role)> nodes, Dictionary<string, IPEndPoint> listen, Dictionary<string, IPEndPoint> learners, int publish)
    {
        var inv = CultureInfo.InvariantCulture;
        var y = new StringBuilder();
        y.AppendLine("cluster: crossregion");
        y.AppendLine(inv, $"leader: {LeaderId}");
        y.AppendLine("quorum: majority");
        y.AppendLine("insecure: true"); // loopback, and NATS runs without TLS too: like for like
        y.AppendLine("defaults:");
        y.AppendLine("  elections: false"); // the data path's latency with its leader fixed; bench/run failover measures elections
        y.AppendLine(scenario.GeorelayLingerMs > 0
            ? string.Create(inv, $"  batch: {{ max-bytes: 1MiB, linger: {scenario.GeorelayLingerMs}ms }}")
            : "  batch: { max-bytes: 1MiB }"); // natural batching
        if (mode == "georelay-durable") y.AppendLine("  delivery: durable");
        y.AppendLine(inv, $"  compression: {{ level: {(mode is "relays-plain" or "mux-plain" ? 0 : 1)} }}");
        // Core NATS keeps messages in memory only; GeoRelay writes its logs but does not fsync here, like for like.
        y.AppendLine("  fsync: false");
        y.AppendLine("datacenters:");
        foreach (var (region, _) in scenario.Regions)
        {
            var relays = nodes.Where(n => n.Region == region && n.Role == "relay").Select(n => n.Id);
            var members = nodes.Where(n => n.Region == region && n.Role == "member").Select(n => n.Id);
            y.AppendLine(inv, $"  {region}: {{ relays: [{string.Join(", ", relays)}], members: [{string.Join(", ", members)}] }}");
        }
        y.AppendLine("nodes:");
        foreach (var (id, region, role) in nodes)
        {
            string extra = role == "leader" ? $", publish: 127.0.0.1:{publish}" : $", learners: {learners[id]}";
            y.AppendLine(inv, $"  {id}: {{ dc: {region}, listen: {listen[id]}{extra} }}");
        }
        return y.ToString();
    }

    public async Task StartLearnersAsync(Recorder recorder, CancellationToken cancellationToken)
    {
        var regions = scenario.Regions.Keys.ToList();
        var connects = new List<Task>();
        for (int r = 0; r < regions.Count; r++)
        {
            string region = regions[r];
            // Where this region's learners subscribe: its relays, else its members; in direct mode the leader region's members.
            var servers = mode == "direct"
                ? _topology.GetDatacenter(scenario.LeaderRegion).Members.Select(m => mesh.Route(region, scenario.LeaderRegion, _topology.GetNode(m).Learners!.Value.ToEndPoint() as IPEndPoint ?? throw new InvalidOperationException())).ToList()
                : (_topology.GetDatacenter(region).Relays.Count > 0 ? _topology.GetDatacenter(region).Relays : _topology.GetDatacenter(region).Members)
                    .Select(n => (IPEndPoint)_topology.GetNode(n).Learners!.Value.ToEndPoint()).ToList();
            for (int i = 0; i < scenario.LearnersPerRegion; i++)
            {
                // Members share the learners of their region round-robin; relays in priority order, the first for all.
                var endpoints = mode == "direct" || _topology.GetDatacenter(region).Relays.Count == 0
                    ? servers.Skip(i % servers.Count).Concat(servers.Take(i % servers.Count)).ToList()
                    : servers;
                var track = recorder.NewLearner(r);
                var options = new LearnerClientOptions
                {
                    Endpoints = endpoints.Select(e => e.ToString()).ToList(),
                    NodeId = $"{region}-learner{i}",
                    ReconnectInitial = TimeSpan.FromMilliseconds(20),
                    ReconnectMax = TimeSpan.FromMilliseconds(500),
                    // Like the NATS subscribers' loops, the recorder reads each entry at once and keeps nothing.
                    ReuseBuffers = true,
                };
                connects.Add(ConnectLearnerAsync(options, track, cancellationToken));
            }
        }
        await Task.WhenAll(connects);
    }

    private async Task ConnectLearnerAsync(LearnerClientOptions options, Recorder.Track track, CancellationToken cancellationToken)
    {
        var client = await LearnerClient.ConnectAsync(options, cancellationToken);
        lock (_learners) _learners.Add(client);
        var loop = Task.Run(async () =>
        {
            try
            {
                await foreach (var entry in client.SubscribeAsync(1, _stop.Token))
                    track.Deliver(entry.Payload.Span, entry.TimestampMicros);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        });
        lock (_learners) _learnerLoops.Add(loop);
    }

    public async ValueTask PublishAsync(IReadOnlyList<byte[]> payloads)
    {
        var entries = new PublishEntry[payloads.Count];
        for (int i = 0; i < payloads.Count; i++) entries[i] = new PublishEntry(ReadOnlyMemory<byte>.Empty, payloads[i]);
        _pending.Enqueue(_publisher!.PublishAsync(entries, WaitLevel.Accepted));
        while (_pending.Count > 0 && (_pending.Peek().IsCompleted || _pending.Count > 512))
            await _pending.Dequeue();
    }

    public bool KillRelay(string region)
    {
        if (mode == "direct") return false; // the relays carry nothing in this mode
        var id = Id(region, "p", 1);
        if (!_processes.TryGetValue(id, out var process)) return false;
        process.Kill();
        return true;
    }

    public async Task<long?> StopAndReadLeaderEgressAsync()
    {
        while (_pending.Count > 0) await _pending.Dequeue();
        var leader = _processes[LeaderId];
        await leader.TerminateAsync(TimeSpan.FromSeconds(60));
        long total = 0;
        foreach (Match m in Regex.Matches(leader.Output, @"Summary datacenter=\S+ route=\S+ connections=\d+ batches=\d+ bytes_sent=(\d+)"))
            total += long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return total;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        foreach (var learner in _learners) await learner.DisposeAsync();
        await Task.WhenAll(_learnerLoops).ContinueWith(_ => { }, TaskScheduler.Default);
        if (_publisher is not null) await _publisher.DisposeAsync();
        // GEORELAY_BENCH_LOGS=DIR keeps every daemon's output there, for looking into a run.
        string? logs = Environment.GetEnvironmentVariable("GEORELAY_BENCH_LOGS");
        foreach (var (id, process) in _processes)
        {
            if (!process.HasExited) await process.TerminateAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
            if (!string.IsNullOrEmpty(logs))
            {
                Directory.CreateDirectory(logs);
                File.WriteAllText(Path.Combine(logs, $"{mode}-{id}.log"), process.Output);
            }
            process.Dispose();
        }
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// A NATS supercluster (nats-server from Debian, core NATS): one single-server cluster per region, gateways
/// between every pair through the same emulated links, the publisher on the leader region's server, the
/// subscribers on their own region's server, each on its own connection of the official client, NATS.Net.
/// </summary>
public sealed class NatsSystem(Scenario scenario, WanMesh mesh) : ISystemUnderTest
{
    private const string Subject = "bench.entries";
    private readonly Dictionary<string, NatsServerProcess> _servers = new();
    private readonly List<NatsSubscriber> _subscribers = new();
    private NATS.Client.Core.NatsConnection? _publisher;

    public string Name => "nats";
    public string Description => "NATS supercluster, nats-server " + Version() + " (Debian): one server per region, full-mesh gateways through the WAN links, core NATS (at most once), NATS.Net client";

    public IReadOnlyDictionary<string, int> Processes => _servers.ToDictionary(s => s.Key + "-nats", s => s.Value.ProcessId);

    private static string Version()
    {
        try
        {
            var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(NatsServerProcess.Binary, "--version") { RedirectStandardOutput = true })!;
            var text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return text.Replace("nats-server: ", "", StringComparison.Ordinal);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "(not installed)";
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var configs = new Dictionary<string, NatsServerConfig>();
        // Every port in one batch (client, route, gateway, monitor, and a link route per remote region), so that no
        // port chosen for a server that has not started yet goes to a link's listener in between.
        int regions = scenario.Regions.Count;
        var free = new Queue<int>(LocalCluster.FreeLoopbackPorts(regions * (4 + regions)));
        foreach (var region in scenario.Regions.Keys)
            configs[region] = new NatsServerConfig
            {
                ServerName = region + "-nats", ClusterName = region, Gateway = true,
                ClientPort = free.Dequeue(), ClusterPort = free.Dequeue(), GatewayPort = free.Dequeue(), MonitorPort = free.Dequeue(),
            };
        foreach (var region in scenario.Regions.Keys)
        {
            var remotes = scenario.Regions.Keys.Where(r => r != region)
                .Select(r => new NatsGatewayRemote(r, [mesh.Route(region, r, new IPEndPoint(IPAddress.Loopback, configs[r].GatewayPort), free.Dequeue())])).ToList();
            configs[region] = configs[region] with { Remotes = remotes };
        }
        foreach (var (region, config) in configs)
            _servers[region] = await NatsServerProcess.StartAsync(config, cancellationToken);
        _publisher = await BenchNats.ConnectAsync(_servers[scenario.LeaderRegion].ClientEndPoint, "publisher");
    }

    public async Task StartLearnersAsync(Recorder recorder, CancellationToken cancellationToken)
    {
        var regions = scenario.Regions.Keys.ToList();
        for (int r = 0; r < regions.Count; r++)
        {
            var starts = new List<Task<NatsSubscriber>>();
            for (int i = 0; i < scenario.LearnersPerRegion; i++)
            {
                var track = recorder.NewLearner(r);
                starts.Add(NatsSubscriber.StartAsync(_servers[regions[r]].ClientEndPoint, Subject, $"{regions[r]}-subscriber{i}",
                    payload => track.Deliver(payload[..Corpus.HeaderBytes])));
            }
            foreach (var start in starts) _subscribers.Add(await start.WaitAsync(cancellationToken));
        }
        foreach (var subscriber in _subscribers) await subscriber.PingAsync().WaitAsync(cancellationToken);
    }

    public async ValueTask PublishAsync(IReadOnlyList<byte[]> payloads)
    {
        foreach (var payload in payloads) await _publisher!.PublishRawAsync(Subject, payload);
    }

    public bool KillRelay(string region) => false;

    public async Task<long?> StopAndReadLeaderEgressAsync()
    {
        await _publisher!.PingAsync();
        var server = _servers[scenario.LeaderRegion];
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var varz = await http.GetStringAsync($"http://127.0.0.1:{server.Config.MonitorPort}/varz");
        using var json = JsonDocument.Parse(varz);
        return json.RootElement.GetProperty("out_bytes").GetInt64();
    }

    /// <summary>How many subscriber connections the servers cut (e.g. as slow consumers).</summary>
    public int ClosedSubscribers => _subscribers.Count(s => s.Disconnected);

    public async ValueTask DisposeAsync()
    {
        foreach (var subscriber in _subscribers) await subscriber.DisposeAsync();
        if (_publisher is not null) await _publisher.DisposeAsync();
        foreach (var server in _servers.Values) await server.DisposeAsync();
    }
}
