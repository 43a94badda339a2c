using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using GeoRelay.Bench.CrossRegion;
using GeoRelay.Bench.Nats;
using GeoRelay.Cli.Demo;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace GeoRelay.Bench.Failover;

/// <summary>
/// NATS JetStream as the same shape: one nats-server (Debian) per region in one cluster, every route through the
/// emulated links (each server dials the others through its region's links, and advertises a route address nothing
/// listens on so that no direct route is gossiped), an R3 file stream whose leader is moved to the first region, a
/// publisher there (PublishAsync with Msg-Id, retried on the same id until acknowledged), and per region a durable R3
/// pull consumer consumed through that region's server.
/// </summary>
public sealed partial class JetStreamCluster(FailoverSettings settings, WanMesh mesh) : IFailoverSystem
{
    private const string Stream = "FAILOVER";
    private const string Subject = "failover.entries";
    private readonly Dictionary<string, NatsServerProcess> _servers = new();
    private readonly List<NatsConnection> _connections = new();
    private readonly List<Task> _loops = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"georelay-fojs-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
    private FailoverRecorder _recorder = null!;
    private NatsJSContext _publisher = null!;
    private NatsJSContext _admin = null!;
    private long _inFlight;

    public string Name => "jetstream";

    public string Description => Describe();

    public static string Describe() =>
        $"NATS JetStream, nats-server {Version()} (Debian), clustered: 3 servers (one per region), R3 file stream " +
        "(no fsync per message, the default), leader moved to the first region before the run, publisher PublishAsync with Msg-Id " +
        "(deduplicated) retried on timeout (1 s) or error, durable R3 pull consumers (explicit ack), NATS.Net 3.3.2, reconnect wait 20-500 ms";

    private static string Version()
    {
        try
        {
            var p = Process.Start(new ProcessStartInfo(NatsServerProcess.Binary, "--version") { RedirectStandardOutput = true })!;
            var text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return text.Replace("nats-server: ", "", StringComparison.Ordinal);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "(not installed)";
        }
    }

    private static NatsOpts Options(IEnumerable<IPEndPoint> servers, string name) => BenchNats.Options(servers.First(), name) with
    {
        // The region's own server first, the others (through the links) when it is gone.
        Url = string.Join(",", servers.Select(s => $"nats://{s}")),
        NoRandomize = true,
        ReconnectWaitMin = TimeSpan.FromMilliseconds(20),
        ReconnectWaitMax = TimeSpan.FromMilliseconds(500),
        ReconnectJitter = TimeSpan.Zero,
        MaxReconnectRetry = -1,
        RequestTimeout = TimeSpan.FromSeconds(1),
    };

    public async Task StartAsync(FailoverRecorder recorder, CancellationToken cancellationToken)
    {
        _recorder = recorder;
        var regions = settings.Regions;
        int n = regions.Length;
        // Client, route, unused advertise port per server; a route and a client link per (server, other region).
        var free = new Queue<int>(LocalCluster.FreeLoopbackPorts(n * 3 + n * n * 2));
        var client = new Dictionary<string, int>();
        var route = new Dictionary<string, int>();
        var advertise = new Dictionary<string, int>();
        foreach (var region in regions)
        {
            client[region] = free.Dequeue();
            route[region] = free.Dequeue();
            advertise[region] = free.Dequeue();
        }
        var starts = new List<Task<NatsServerProcess>>();
        foreach (var region in regions)
        {
            var routes = regions.Where(r => r != region).Select(r => mesh.Route(region, r, new IPEndPoint(IPAddress.Loopback, route[r]), free.Dequeue()).Port).ToList();
            var config = new NatsServerConfig
            {
                ServerName = ServerName(region), ClusterName = "failover", ClientPort = client[region], ClusterPort = route[region],
                Routes = routes, ClusterAdvertise = $"127.0.0.1:{advertise[region]}",
                JetStreamStoreDir = Path.Combine(_directory, region),
            };
            starts.Add(NatsServerProcess.StartAsync(config, cancellationToken));
        }
        foreach (var (region, start) in regions.Zip(starts)) _servers[region] = await start;

        var endpoints = regions.ToDictionary(r => r, r => regions.Where(o => o != r)
            .Select(o => mesh.Route(r, o, new IPEndPoint(IPAddress.Loopback, client[o]), free.Dequeue())).Prepend(new IPEndPoint(IPAddress.Loopback, client[r])).ToList());

        var adminConnection = await Connect(endpoints[regions[0]], "failover-admin");
        _admin = new NatsJSContext(adminConnection);
        var config2 = new StreamConfig(Stream, [Subject])
        {
            NumReplicas = 3,
            Storage = StreamConfigStorage.File,
            DuplicateWindow = TimeSpan.FromMinutes(2),
        };
        // JetStream answers 503 until the cluster has elected its meta leader.
        await RetryAsync(() => _admin.CreateStreamAsync(config2, cancellationToken).AsTask(), "create the R3 stream", cancellationToken);
        await MoveLeaderToAsync(ServerName(regions[0]), cancellationToken);

        for (int r = 0; r < n; r++)
        {
            string region = regions[r];
            var connection = await Connect(endpoints[region], $"{region}-subscriber");
            var js = new NatsJSContext(connection);
            var consumer = await RetryAsync(() => js.CreateOrUpdateConsumerAsync(Stream, new ConsumerConfig($"sub-{region}")
            {
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                DeliverPolicy = ConsumerConfigDeliverPolicy.All,
                NumReplicas = 3,
                MaxAckPending = 100_000,
                // What a dead consumer leader had sent and nobody acknowledged comes again after 3 s, within the drain (default 30 s).
                AckWait = TimeSpan.FromSeconds(3),
            }, cancellationToken).AsTask(), $"create {region}'s consumer", cancellationToken);
            int regionIndex = r;
            _loops.Add(Task.Run(async () =>
            {
                try
                {
                    // Pull requests expire every 2 s with a heartbeat each 0.5 s, so a consumer leader that died is noticed
                    // within about a second (the defaults, 30 s and 15 s, would leave a subscriber waiting for its pull).
                    var opts = new NatsJSConsumeOpts { MaxMsgs = 2000, Expires = TimeSpan.FromSeconds(2), IdleHeartbeat = TimeSpan.FromMilliseconds(500) };
                    await foreach (var msg in consumer.ConsumeAsync(NatsRawSerializer<byte[]>.Default, opts, _stop.Token))
                    {
                        if (msg.Data is { } data) _recorder.Delivered(regionIndex, data, msg.Metadata?.Sequence.Stream ?? 0);
                        await msg.AckAsync(cancellationToken: _stop.Token);
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
                catch (Exception e)
                {
                    _recorder.Event($"{region} consumer stopped: {e.GetType().Name}: {e.Message}");
                }
            }));
        }
        var publisherConnection = await Connect(endpoints[regions[0]], "failover-publisher");
        _publisher = new NatsJSContext(publisherConnection); // its requests time out after the connection's RequestTimeout, 1 s
    }

    private static string ServerName(string region) => $"{region}-nats";

    private async Task<NatsConnection> Connect(List<IPEndPoint> endpoints, string name)
    {
        var connection = new NatsConnection(Options(endpoints, name));
        await connection.ConnectAsync();
        _connections.Add(connection);
        return connection;
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> action, string what, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await action();
            }
            catch (Exception e) when (e is NatsJSApiException or NatsJSException or NatsNoRespondersException or TimeoutException or NatsException
                                      && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    private async Task<string?> StreamLeaderAsync(CancellationToken cancellationToken)
    {
        try
        {
            var stream = await _admin.GetStreamAsync(Stream, cancellationToken: cancellationToken);
            return stream.Info.Cluster?.Leader;
        }
        catch (Exception e) when (e is NatsJSApiException or NatsJSException or NatsException or TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Asks the stream leader to step down until the wanted server leads (each step-down elects at random).</summary>
    private async Task MoveLeaderToAsync(string server, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            string? leader = null;
            var wait = Stopwatch.StartNew();
            while ((leader = await StreamLeaderAsync(cancellationToken)) is null && wait.Elapsed < TimeSpan.FromSeconds(20))
                await Task.Delay(100, cancellationToken);
            if (leader == server) return;
            try
            {
                await _admin.Connection.RequestAsync<object, string>($"$JS.API.STREAM.LEADER.STEPDOWN.{Stream}", null, cancellationToken: cancellationToken);
            }
            catch (Exception e) when (e is NatsException or TimeoutException) { }
            await Task.Delay(500, cancellationToken);
        }
        throw new TimeoutException($"the stream leader did not move to {server} after 20 step-downs");
    }

    public void Publish(long seq) => _ = PublishOneAsync(seq);

    private async Task PublishOneAsync(long seq)
    {
        byte[] payload = FailoverRecorder.Payload(seq);
        var opts = new NatsJSPubOpts { MsgId = seq.ToString(CultureInfo.InvariantCulture), RetryAttempts = 1 };
        Interlocked.Increment(ref _inFlight);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                long sent = Stopwatch.GetTimestamp();
                try
                {
                    var ack = await _publisher.PublishAsync(Subject, payload, NatsRawSerializer<byte[]>.Default, opts, cancellationToken: _stop.Token);
                    if (ack.Error is null)
                    {
                        _recorder.Acked(seq, sent, ack.Duplicate);
                        return;
                    }
                    _recorder.Retried(mayHaveLanded: false); // the stream answered with an error: not stored
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception)
                {
                    // A timeout or a dropped connection: the outcome is unknown, and the same Msg-Id makes the retry safe.
                    _recorder.Retried(mayHaveLanded: true);
                }
                await Task.Delay(20);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public async Task<string> KillLeaderAsync()
    {
        string? leader = await StreamLeaderAsync(_stop.Token);
        var victim = _servers.FirstOrDefault(s => ServerName(s.Key) == leader);
        if (victim.Value is null) throw new InvalidOperationException($"stream leader '{leader}' is none of the servers");
        victim.Value.Kill();
        return leader!;
    }

    [GeneratedRegex(@"^\[\d+\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) \[\w+\] (.*(leader|Leader|election|Election|lost|closed|Raft|quorum).*)$")]
    private static partial Regex LeaderLine();

    public IReadOnlyList<string> Timeline(DateTime killWallClock)
    {
        // What the stream holds at the end: tells a message the stream lost from one a consumer did not deliver.
        try
        {
            var stream = _admin.GetStreamAsync(Stream).AsTask().WaitAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            var state = stream.Info.State;
            _recorder.Event($"stream at the end: {state.Messages} messages, sequences {state.FirstSeq}..{state.LastSeq}, leader {stream.Info.Cluster?.Leader}");
        }
        catch (Exception e)
        {
            _recorder.Event($"stream info at the end failed: {e.GetType().Name}: {e.Message}");
        }
        var lines = new List<(double Ms, string Text)>();
        foreach (var (region, server) in _servers)
        {
            foreach (var raw in server.Log.Split('\n'))
            {
                var m = LeaderLine().Match(raw.TrimEnd('\r'));
                if (!m.Success) continue;
                var at = DateTime.ParseExact(m.Groups[1].Value, "yyyy/MM/dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture);
                double ms = (at - killWallClock).TotalMilliseconds;
                if (ms < -1500 || ms > 15000) continue;
                lines.Add((ms, $"{ServerName(region)}: {m.Groups[2].Value}"));
            }
        }
        return lines.OrderBy(l => l.Ms).Select(l => $"{l.Ms:+0;-0} ms {l.Text}").Take(60).ToList();
    }

    public Task<string> DiagnoseAsync() => Task.FromResult("");

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_loops).ContinueWith(_ => { }, TaskScheduler.Default);
        foreach (var connection in _connections) await connection.DisposeAsync();
        string? logs = Environment.GetEnvironmentVariable("GEORELAY_BENCH_LOGS");
        foreach (var (region, server) in _servers)
        {
            if (!string.IsNullOrEmpty(logs))
            {
                Directory.CreateDirectory(logs);
                File.WriteAllText(Path.Combine(logs, $"failover-{ServerName(region)}-{Environment.TickCount64}.log"), server.Log);
            }
            await server.DisposeAsync();
        }
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
