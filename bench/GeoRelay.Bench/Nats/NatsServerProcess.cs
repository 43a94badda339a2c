using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Cli.Demo;

namespace GeoRelay.Bench.Nats;

/// <summary>A remote cluster this server's gateway dials, at the given URLs (e.g. a WAN link's listen endpoint).</summary>
public sealed record NatsGatewayRemote(string ClusterName, IReadOnlyList<IPEndPoint> Urls);

/// <summary>
/// One nats-server's configuration. Ports of 0 are replaced with free loopback ports by
/// <see cref="WithFreePorts"/> (which <see cref="NatsServerProcess.StartAsync"/> calls), so a caller that needs
/// a port before the start (to point a WAN link at a gateway) calls it first.
/// </summary>
public sealed record NatsServerConfig
{
    /// <summary>Server name, unique in the supercluster. Required.</summary>
    public required string ServerName { get; init; }

    /// <summary>Client port on 127.0.0.1. Default 0: a free port.</summary>
    public int ClientPort { get; init; }

    /// <summary>Cluster name; null (the default) writes no cluster block. A gateway needs it.</summary>
    public string? ClusterName { get; init; }

    /// <summary>Route port of the cluster block. Default 0: a free port.</summary>
    public int ClusterPort { get; init; }

    /// <summary>Route ports of the other servers of the same cluster. Default none.</summary>
    public IReadOnlyList<int> Routes { get; init; } = [];

    /// <summary>Whether to write a gateway block (named after the cluster). Default false.</summary>
    public bool Gateway { get; init; }

    /// <summary>Gateway listen port. Default 0: a free port.</summary>
    public int GatewayPort { get; init; }

    /// <summary>Remote clusters the gateway dials. Default none.</summary>
    public IReadOnlyList<NatsGatewayRemote> Remotes { get; init; } = [];

    /// <summary>HTTP monitoring port (/varz, /gatewayz); 0 (the default) turns monitoring off.</summary>
    public int MonitorPort { get; init; }

    /// <summary>JetStream's store directory; null (the default) leaves JetStream off.</summary>
    public string? JetStreamStoreDir { get; init; }

    /// <summary>
    /// Route address this server tells the other servers of its cluster (cluster.advertise); null (the default) lets
    /// nats-server advertise its route listener. A benchmark whose routes go through emulated WAN links gives an
    /// address nothing listens on, so servers only use the routes configured, never a gossiped direct one.
    /// </summary>
    public string? ClusterAdvertise { get; init; }

    /// <summary>Largest message, bytes. Default 1 MiB (nats-server's default).</summary>
    public int MaxPayload { get; init; } = 1 << 20;

    /// <summary>Per-connection pending bytes before the server cuts a slow consumer. Default 64 MiB (nats-server's default).</summary>
    public long MaxPending { get; init; } = 64L << 20;

    /// <summary>Whether nats-server also listens for WebSocket clients (its <c>websocket</c> block, plain, no compression). Default false.</summary>
    public bool WebSocket { get; init; }

    /// <summary>The WebSocket listener's port, when <see cref="WebSocket"/>; 0 takes a free one.</summary>
    public int WebSocketPort { get; init; }

    public NatsServerConfig WithFreePorts()
    {
        var free = new Queue<int>(LocalCluster.FreeLoopbackPorts(4));
        return this with
        {
            ClientPort = ClientPort != 0 ? ClientPort : free.Dequeue(),
            ClusterPort = ClusterName is null || ClusterPort != 0 ? ClusterPort : free.Dequeue(),
            GatewayPort = !Gateway || GatewayPort != 0 ? GatewayPort : free.Dequeue(),
            WebSocketPort = !WebSocket || WebSocketPort != 0 ? WebSocketPort : free.Dequeue(),
        };
    }

    /// <summary>The nats-server configuration file text.</summary>
    public string Render()
    {
        if (Gateway && ClusterName is null)
            throw new InvalidOperationException($"server {ServerName}: a gateway needs a cluster name");
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.AppendLine(inv, $"server_name: \"{ServerName}\"");
        text.AppendLine(inv, $"listen: \"127.0.0.1:{ClientPort}\"");
        text.AppendLine(inv, $"max_payload: {MaxPayload}");
        text.AppendLine(inv, $"max_pending: {MaxPending}");
        if (MonitorPort != 0) text.AppendLine(inv, $"http: \"127.0.0.1:{MonitorPort}\"");
        if (JetStreamStoreDir is not null) text.AppendLine(inv, $"jetstream {{ store_dir: \"{JetStreamStoreDir}\" }}");
        if (WebSocket) text.AppendLine(inv, $"websocket {{ listen: \"127.0.0.1:{WebSocketPort}\", no_tls: true, compression: false }}");
        if (ClusterName is not null)
        {
            text.AppendLine("cluster {");
            text.AppendLine(inv, $"  name: \"{ClusterName}\"");
            text.AppendLine(inv, $"  listen: \"127.0.0.1:{ClusterPort}\"");
            // Clients get only the address we gave them, never a gossiped one.
            text.AppendLine("  no_advertise: true");
            if (ClusterAdvertise is not null) text.AppendLine(inv, $"  advertise: \"{ClusterAdvertise}\"");
            text.AppendLine("  routes: [" + string.Join(", ", Routes.Select(p => $"\"nats-route://127.0.0.1:{p}\"")) + "]");
            text.AppendLine("}");
        }
        if (Gateway)
        {
            text.AppendLine("gateway {");
            text.AppendLine(inv, $"  name: \"{ClusterName}\"");
            text.AppendLine(inv, $"  listen: \"127.0.0.1:{GatewayPort}\"");
            text.AppendLine("  gateways: [");
            foreach (var remote in Remotes)
            {
                string urls = string.Join(", ", remote.Urls.Select(u => $"\"nats://{u}\""));
                text.AppendLine(inv, $"    {{ name: \"{remote.ClusterName}\", urls: [{urls}] }}");
            }
            text.AppendLine("  ]");
            text.AppendLine("}");
        }
        return text.ToString();
    }
}

/// <summary>
/// Starts /usr/sbin/nats-server (installing the Debian package nats-server when missing) with a generated
/// configuration in a temporary directory, waits until it says it is ready, and on dispose stops that process
/// and no other.
/// <code>
/// await using var server = await NatsServerProcess.StartAsync(new NatsServerConfig { ServerName = "a" });
/// await using var nats = await NatsClient.ConnectAsync(server.ClientEndPoint);
/// </code>
/// </summary>
public sealed class NatsServerProcess : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/nats-server";

    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public NatsServerConfig Config { get; }
    public IPEndPoint ClientEndPoint => new(IPAddress.Loopback, Config.ClientPort);
    public IPEndPoint? GatewayEndPoint => Config.Gateway ? new(IPAddress.Loopback, Config.GatewayPort) : null;
    public IPEndPoint? WebSocketEndPoint => Config.WebSocket ? new(IPAddress.Loopback, Config.WebSocketPort) : null;
    public int ProcessId { get; }
    public bool HasExited => _process.HasExited;

    /// <summary>Everything the server logged so far (it logs to stderr).</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    private NatsServerProcess(NatsServerConfig config, string directory)
    {
        Config = config;
        _directory = directory;
        string configFile = Path.Combine(directory, "nats.conf");
        File.WriteAllText(configFile, config.Render());
        var start = new ProcessStartInfo(DebianPackages.Require(Binary, "nats-server"), ["-c", configFile])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            WorkingDirectory = directory,
        };
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException(
            $"nats-server {config.ServerName} exited with code {_process.ExitCode} before it was ready:\n{Log}"));
        _process.Start();
        ProcessId = _process.Id;
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
    }

    /// <summary>Starts the server and waits (up to 20 s) for its "Server is ready" line.</summary>
    public static async Task<NatsServerProcess> StartAsync(NatsServerConfig config, CancellationToken cancellationToken = default)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"georelay-nats-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(directory);
        var server = new NatsServerProcess(config.WithFreePorts(), directory);
        try
        {
            await server._ready.Task.WaitAsync(TimeSpan.FromSeconds(20), cancellationToken);
            return server;
        }
        catch (TimeoutException)
        {
            await server.DisposeAsync();
            throw new TimeoutException($"nats-server {config.ServerName} not ready after 20 s:\n{server.Log}");
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
        if (line.Contains("Server is ready", StringComparison.Ordinal)) _ready.TrySetResult();
    }

    /// <summary>SIGKILL, for fault scenarios; the object still needs disposing.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill();
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try { await _process.WaitForExitAsync(timeout.Token); } catch (OperationCanceledException) { }
        }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
