using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using GeoRelay.Bench.CrossRegion;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using GeoRelay.Topology;

namespace GeoRelay.Bench.Failover;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// GeoRelay with elections as real daemons: the preferred leader (<c>georelay leader</c>) in the first region and
/// one member (<c>georelay member</c>, a voter with a publish address) in every region (the topology wants a member in
/// each datacenter, the leader's too), so a quorum of three of the four voters needs a WAN round trip. Every node dials the others through the emulated links (each gets its own copy of the
/// topology with the other regions' addresses pointing at its region's links); one learner per region, on its
/// region's node first and the others' through the links.
/// </summary>
public sealed partial class GeoRelayVoters(FailoverSettings settings, WanMesh mesh) : IFailoverSystem
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"georelay-fo-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
    private readonly Dictionary<string, GeoRelayProcess> _processes = new();
    private readonly Dictionary<string, string> _regionOf = new();
    private readonly Dictionary<string, IPEndPoint> _admin = new();
    private readonly List<LearnerClient> _learners = new();
    private readonly List<Task> _loops = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<long> _toPublish = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true });
    private FailoverRecorder _recorder = null!;
    private List<string> _publishEndpoints = new();
    private long _killedAt;

    public string Name => "georelay";

    public string Description => Describe(settings);

    public static string Describe(FailoverSettings settings) =>
        $"GeoRelay with `elections: true`, `election-timeout: {settings.ElectionTimeoutSeconds:0.###}s` (each candidate's timeout drawn in its own slice of [T, 2T); a leader link that closes starts the election at once, in rank order), heartbeat 100 ms (default), " +
        "4 voters (the preferred leader and one member in the first region, one member in each other region: the topology wants a member in every datacenter), a quorum is 3 of them, `fsync: false` (JetStream's file store does not fsync each message either), " +
        "publisher: the SDK PublisherClient with every voter's address, `wait: committed`, one entry per request, exactly-once (it follows the leader and resends with the same producer sequences)";

    private string Region(int i) => settings.Regions[i];
    private string LeaderId => $"{Region(0)}-leader";

    public async Task StartAsync(FailoverRecorder recorder, CancellationToken cancellationToken)
    {
        _recorder = recorder;
        Directory.CreateDirectory(_directory);
        var nodes = new List<(string Id, string Region)> { (LeaderId, Region(0)) };
        // The topology wants a member in every datacenter, the leader's too: four voters, so a quorum is three.
        for (int i = 0; i < settings.Regions.Length; i++) nodes.Add(($"{Region(i)}-m1", Region(i)));
        foreach (var (id, region) in nodes) _regionOf[id] = region;

        // One batch of ports: three per node, then one per (node, other region's node, address) and per learner route.
        var free = new Queue<int>(LocalCluster.FreeLoopbackPorts(nodes.Count * 4 + nodes.Count * nodes.Count * 3 + nodes.Count * nodes.Count));
        var addresses = nodes.ToDictionary(n => n.Id, n => new NodeAddresses(Loopback(free.Dequeue()), Loopback(free.Dequeue()), Loopback(free.Dequeue())));
        foreach (var (id, _) in nodes) _admin[id] = Loopback(free.Dequeue());
        string firstConfig = "";
        foreach (var (id, region) in nodes)
        {
            // This node's view: the nodes of other regions through the link from its region.
            var view = nodes.ToDictionary(n => n.Id, n => n.Region == region ? addresses[n.Id] : new NodeAddresses(
                mesh.Route(region, n.Region, addresses[n.Id].Listen, free.Dequeue()),
                mesh.Route(region, n.Region, addresses[n.Id].Publish, free.Dequeue()),
                mesh.Route(region, n.Region, addresses[n.Id].Learners, free.Dequeue())));
            string path = Path.Combine(_directory, $"topology-{id}.yaml");
            File.WriteAllText(path, Yaml(nodes, view));
            TopologyLoader.LoadFile(path).GetConfigOrThrow();
            if (id == LeaderId)
            {
                firstConfig = path;
                _publishEndpoints = nodes.Select(n => view[n.Id].Publish.ToString()).ToList(); // the publisher sits in the leader's region
            }
        }

        foreach (var (id, _) in nodes)
        {
            string config = Path.Combine(_directory, $"topology-{id}.yaml");
            string data = Path.Combine(_directory, id);
            _processes[id] = new GeoRelayProcess(id, id == LeaderId
                ? $"leader --config \"{config}\" --data \"{data}\""
                : $"member --config \"{config}\" --node {id} --data \"{data}\"");
        }
        // The preferred leader leads once the members answer its votes (at start every voter waits out its election timeout).
        await _processes[LeaderId].WaitForLineAsync($@"{Regex.Escape(LeaderId)} leads term", TimeSpan.FromSeconds(90)).WaitAsync(cancellationToken);

        for (int r = 0; r < settings.Regions.Length; r++)
        {
            string region = Region(r);
            // Its region's member first (then the leader there), the other regions' nodes through the links.
            var endpoints = nodes.Where(n => n.Region == region).OrderBy(n => n.Id == LeaderId).Select(n => addresses[n.Id].Learners.ToString()).ToList();
            foreach (var (id, other) in nodes.Where(n => n.Region != region))
                endpoints.Add(mesh.Route(region, other, addresses[id].Learners, free.Dequeue()).ToString());
            var learner = await LearnerClient.ConnectAsync(new LearnerClientOptions
            {
                Endpoints = endpoints,
                NodeId = $"{region}-learner",
                // As quick to come back as the NATS clients (BenchNats.FailoverOptions).
                ReconnectInitial = TimeSpan.FromMilliseconds(20),
                ReconnectMax = TimeSpan.FromMilliseconds(500),
                ReuseBuffers = true,
            }, cancellationToken);
            _learners.Add(learner);
            int regionIndex = r;
            _loops.Add(Task.Run(async () =>
            {
                try
                {
                    await foreach (var entry in learner.SubscribeAsync(1, _stop.Token))
                        _recorder.Delivered(regionIndex, entry.Payload.Span, entry.Index);
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
                catch (Exception e)
                {
                    _recorder.Event($"{region} learner stopped: {e.GetType().Name}: {e.Message}");
                }
            }));
        }
        _loops.Add(Task.Run(PublishLoopAsync));
    }

    private static IPEndPoint Loopback(int port) => new(IPAddress.Loopback, port);

    private readonly record struct NodeAddresses(IPEndPoint Listen, IPEndPoint Publish, IPEndPoint Learners);

    private string Yaml(List<(string Id, string Region)> nodes, Dictionary<string, NodeAddresses> view)
    {
        var inv = CultureInfo.InvariantCulture;
        var y = new StringBuilder();
        y.AppendLine("cluster: failover");
        y.AppendLine(inv, $"leader: {LeaderId}");
        y.AppendLine("quorum: majority");
        y.AppendLine("insecure: true"); // loopback, and the NATS servers run without TLS too
        y.AppendLine("defaults:");
        y.AppendLine("  elections: true");
        y.AppendLine(inv, $"  election-timeout: {settings.ElectionTimeoutSeconds * 1000:0}ms");
        y.AppendLine("  fsync: false");
        y.AppendLine("datacenters:");
        foreach (var region in settings.Regions)
        {
            var members = nodes.Where(n => n.Region == region && n.Id != LeaderId).Select(n => n.Id);
            y.AppendLine(inv, $"  {region}: {{ relays: [], members: [{string.Join(", ", members)}] }}");
        }
        y.AppendLine("nodes:");
        foreach (var (id, region) in nodes)
        {
            var a = view[id];
            y.AppendLine(inv, $"  {id}: {{ dc: {region}, listen: {a.Listen}, publish: {a.Publish}, learners: {a.Learners}, admin: {_admin[id]} }}");
        }
        return y.ToString();
    }

    public void Publish(long seq) => _toPublish.Writer.TryWrite(seq);

    /// <summary>
    /// One SDK publisher given every voter's publish address: it follows the leader by itself (the leader a refusing
    /// node names first, then the others) and sends what was not acknowledged again with the same producer sequences,
    /// so the new leader never appends a request twice. A publish fails only when no leader turns up within
    /// ReconnectTimeout; it then goes back in the queue as a new request.
    /// </summary>
    private async Task PublishLoopAsync()
    {
        var options = PublisherClientOptions.Default with
        {
            Endpoints = _publishEndpoints,
            NodeId = "failover-publisher",
            ConnectTimeout = TimeSpan.FromSeconds(2),
            ReconnectInitial = TimeSpan.FromMilliseconds(20),
            ReconnectMax = TimeSpan.FromMilliseconds(200),
        };
        var reader = _toPublish.Reader;
        try
        {
            await using var client = await PublisherClient.ConnectAsync(options, _stop.Token);
            string endpoint = client.Endpoint;
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                while (reader.TryRead(out long seq))
                {
                    if (_recorder.IsAcked(seq)) continue;
                    if (client.Endpoint != endpoint && _killedAt != 0)
                    {
                        endpoint = client.Endpoint;
                        _recorder.Event($"+{Stopwatch.GetElapsedTime(_killedAt).TotalMilliseconds:F0} ms: publisher connected to {endpoint}");
                    }
                    long sent = Stopwatch.GetTimestamp();
                    _ = TrackAsync(client.PublishAsync(ReadOnlyMemory<byte>.Empty, FailoverRecorder.Payload(seq), WaitLevel.Committed), seq, sent);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e)
        {
            _recorder.Event($"the publisher stopped: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task TrackAsync(ValueTask<PublishResult> ack, long seq, long sent)
    {
        try
        {
            await ack;
            _recorder.Acked(seq, sent);
        }
        catch (Exception e) when (e is PublishFailedException or ObjectDisposedException)
        {
            if (_stop.IsCancellationRequested) return;
            _recorder.Retried(mayHaveLanded: e is PublishFailedException { WasSent: true });
            _toPublish.Writer.TryWrite(seq);
        }
    }

    public Task<string> KillLeaderAsync()
    {
        // Whoever said last that it leads, by term.
        string leader = LeaderId;
        ulong best = 0;
        foreach (var (id, process) in _processes)
            foreach (Match m in LeadsTerm().Matches(process.Output))
            {
                ulong term = ulong.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                if (m.Groups[1].Value == id && term >= best) (best, leader) = (term, id);
            }
        _killedAt = Stopwatch.GetTimestamp();
        _processes[leader].Kill();
        return Task.FromResult($"{leader} (term {best})");
    }

    [GeneratedRegex(@"(\S+) leads term (\d+)")]
    private static partial Regex LeadsTerm();

    [GeneratedRegex(@"^(\d\d:\d\d:\d\d\.\d{3}) \w+: [^\[]*\[\d+\] (.*(Election:|leads term|follows in term|step|Stale|Timers ran|no-op).*)$")]
    private static partial Regex ElectionLine();

    public IReadOnlyList<string> Timeline(DateTime killWallClock)
    {
        var lines = new List<(double Ms, string Text)>();
        int refusals = 0;
        foreach (var (id, process) in _processes)
        {
            foreach (var raw in process.Output.Split('\n'))
            {
                var m = ElectionLine().Match(raw.TrimEnd('\r'));
                if (!m.Success) continue;
                if (raw.Contains("Refused connection", StringComparison.Ordinal))
                {
                    refusals++; // the publisher dialling every voter while none leads: counted, not listed
                    continue;
                }
                var at = killWallClock.Date + TimeSpan.ParseExact(m.Groups[1].Value, @"hh\:mm\:ss\.fff", CultureInfo.InvariantCulture);
                double ms = (at - killWallClock).TotalMilliseconds;
                if (ms < -1500 || ms > 15000) continue;
                lines.Add((ms, $"{id}: {m.Groups[2].Value}"));
            }
        }
        var timeline = lines.OrderBy(l => l.Ms).Select(l => $"{l.Ms:+0;-0} ms {l.Text}").ToList();
        timeline.Add($"({refusals} publisher connections refused with NotLeader in the run, not listed)");
        return timeline;
    }

    public async Task<string> DiagnoseAsync()
    {
        var text = new StringBuilder();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        foreach (var (id, admin) in _admin)
        {
            try { text.AppendLine(CultureInfo.InvariantCulture, $"{id} /status: {await http.GetStringAsync($"http://{admin}/status")}"); }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { text.AppendLine(CultureInfo.InvariantCulture, $"{id} /status: {e.Message}"); }
        }
        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _toPublish.Writer.TryComplete();
        foreach (var learner in _learners) await learner.DisposeAsync();
        await Task.WhenAll(_loops).ContinueWith(_ => { }, TaskScheduler.Default);
        string? logs = Environment.GetEnvironmentVariable("GEORELAY_BENCH_LOGS");
        foreach (var (id, process) in _processes)
        {
            if (!process.HasExited) await process.TerminateAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
            if (!string.IsNullOrEmpty(logs))
            {
                Directory.CreateDirectory(logs);
                File.WriteAllText(Path.Combine(logs, $"failover-{id}-{Environment.TickCount64}.log"), process.Output);
            }
            process.Dispose();
        }
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
