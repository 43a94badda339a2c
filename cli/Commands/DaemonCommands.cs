using System.CommandLine;
using GeoRelay.Leader;
using GeoRelay.Server.Admin;
using GeoRelay.Server.Admin.Console;
using GeoRelay.Server.Hosting;
using GeoRelay.Server.Web;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Voter;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Cli;

/// <summary>
/// `georelay leader|relay|member`: one node as a long-running daemon; SIGTERM drains and stops (exit code 0); a disk
/// failure stops it at once with <see cref="DiskFailedExitCode"/>.
/// </summary>
public static class DaemonCommands
{
    /// <summary>
    /// The exit code of a daemon stopped by a disk failure (a failed write, fsync, truncation or deletion of its log):
    /// EX_IOERR of sysexits.h. Exit code 2 is a bad configuration or command line.
    /// </summary>
    public const int DiskFailedExitCode = 74;

    private static readonly Option<string> ConfigOption = new("--config") { Description = "Topology YAML file", Required = true };
    private static readonly Option<string?> DataOption = new("--data")
    {
        Description = "Data directory (default: $XDG_STATE_HOME/georelay/<cluster>/<node>; as root /var/lib/georelay/<cluster>/<node>; else ~/.local/state/georelay/<cluster>/<node>)",
    };
    private static readonly Option<string> LogFormatOption = new("--log-format") { Description = "console or json", DefaultValueFactory = _ => "console" };
    private static readonly Option<string?> AdminOption = new("--admin")
    {
        Description = "Admin endpoint HOST:PORT, or a bare PORT for 127.0.0.1 (/metrics, /healthz, /status, /learners, /blacklist; HTTPS and an admin token when the node has tls and auth); default: the node's `admin` address in the topology; `off` for none",
    };
    private static readonly Option<Uri?> OtlpOption = new("--otlp")
    {
        Description = "Also push metrics to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318",
        HelpName = "url",
        CustomParser = result =>
        {
            string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https") return uri;
            result.AddError($"--otlp: '{text}' is not an http:// or https:// URL");
            return null;
        },
    };
    private static readonly Option<TimeSpan> OtlpIntervalOption = DurationOption.Create("--otlp-interval", "How often to push OTLP metrics", TimeSpan.FromSeconds(10));
    private static readonly Option<TimeSpan> DrainTimeoutOption = DurationOption.Create("--drain-timeout", "On SIGTERM, how long to wait for in-flight batches to be acked before stopping", TimeSpan.FromSeconds(5));

    static DaemonCommands()
    {
        LogFormatOption.AcceptOnlyFromAmong("console", "json");
    }

    private static void AddCommonOptions(Command command)
    {
        foreach (var option in new Option[] { LogFormatOption, AdminOption, OtlpOption, OtlpIntervalOption, DrainTimeoutOption })
            command.Options.Add(option);
    }

    public static IEnumerable<Command> Create()
    {
        var epoch = new Option<ulong>("--epoch") { Description = "Leader epoch; must exceed any earlier leader's (ignored with `elections: true`: the election's term is the epoch)", DefaultValueFactory = _ => 1 };
        var direct = new Option<bool>("--direct") { Description = "Send to every member directly (no relays), the baseline" };
        var noMux = new Option<bool>("--no-mux") { Description = "Repeat entry ranges per recipient instead of sharing them in one mux batch (a benchmark baseline)" };
        var compression = new Option<int?>("--compression-level") { Description = "zstd level on the leader's links; 0 turns compression off (default: the topology's)" };
        var leader = new Command("leader", "Run the leader: accepts publishes, sends one batch per datacenter") { ConfigOption, DataOption, epoch, direct, noMux, compression };
        AddCommonOptions(leader);
        leader.SetAction((parse, ct) =>
        {
            var topology = Load(parse.GetValue(ConfigOption)!);
            if (topology is null) return Task.FromResult(2);
            var options = LeaderOptions.Default with
            {
                UseRelays = !parse.GetValue(direct),
                UseMux = !parse.GetValue(noMux),
                CompressionLevel = parse.GetValue(compression),
            };
            if (DataDirectory(parse, topology, topology.LeaderId) is not { } data) return Task.FromResult(2);
            return RunAsync(parse, topology, topology.LeaderId, data, loggers => topology.Defaults.Elections
                ? new VoterNode(topology, topology.LeaderId, data.Path, VoterOptions.Default with { Leader = options }, loggers)
                : new LeaderNode(topology, parse.GetValue(epoch), data.Path, options, loggers), ct);
        });

        var relay = ReplicaCommand("relay", "Run a datacenter relay: fans batches out to members and learners", NodeRole.Relay,
            (topology, id, data, loggers) => new RelayNode(topology, id, data, loggers));
        var member = ReplicaCommand("member", "Run a member: a durable replica that acks and serves learners", NodeRole.Member,
            (topology, id, data, loggers) => topology.Defaults.Elections
                ? new VoterNode(topology, id, data, VoterOptions.Default, loggers)
                : new MemberNode(topology, id, data, loggers));
        return [leader, relay, member];
    }

    /// <summary>`relay` and `member` differ only in the role they check and the node they start.</summary>
    private static Command ReplicaCommand(string name, string description, NodeRole role,
        Func<TopologyConfig, string, string, ILoggerFactory, IAsyncDisposable> start)
    {
        var node = new Option<string>("--node") { Description = "This node's id in the topology", Required = true };
        var command = new Command(name, description) { ConfigOption, node, DataOption };
        AddCommonOptions(command);
        command.SetAction((parse, ct) =>
        {
            var topology = Load(parse.GetValue(ConfigOption)!);
            if (topology is null) return Task.FromResult(2);
            var id = parse.GetValue(node)!;
            if (!CheckRole(topology, id, role)) return Task.FromResult(2);
            if (DataDirectory(parse, topology, id) is not { } data) return Task.FromResult(2);
            return RunAsync(parse, topology, id, data, loggers => start(topology, id, data.Path, loggers), ct);
        });
        return command;
    }

    /// <summary>--data, else the persistent default (<see cref="DefaultDataDirectory"/>); null, having said why, when there is none.</summary>
    private static DefaultDataDirectory.Choice? DataDirectory(ParseResult parse, TopologyConfig topology, string nodeId)
    {
        if (parse.GetValue(DataOption) is { } given) return new DefaultDataDirectory.Choice(Path.GetFullPath(given), "--data");
        var choice = DefaultDataDirectory.ForThisProcess(topology.Cluster, nodeId, out var problem);
        if (choice is null) Console.Error.WriteLine(problem);
        return choice;
    }

    internal static TopologyConfig? Load(string path)
    {
        var result = TopologyLoader.LoadFile(path);
        if (result.Success) return result.Config;
        foreach (var problem in result.Problems) Console.Error.WriteLine(problem);
        return null;
    }

    private static bool CheckRole(TopologyConfig topology, string id, NodeRole role)
    {
        if (topology.Nodes.TryGetValue(id, out var n) && n.Role == role) return true;
        Console.Error.WriteLine(n is null ? $"{topology.SourcePath}: no node '{id}'" : $"{topology.SourcePath}: node '{id}' is a {n.Role}, not a {role}");
        return false;
    }

    internal static void ConfigureLogging(ILoggingBuilder logging, string format)
    {
        logging.ClearProviders();
        // ASP.NET Core logs every admin request at Information; only its problems belong in a node's log.
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        if (format == "json") logging.AddJsonConsole();
        else logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    }

    /// <summary>The admin address: --admin, else the topology's; null when neither (or `--admin off`).</summary>
    private static bool TryAdminEndPoint(ParseResult parse, TopologyConfig topology, string nodeId, out System.Net.EndPoint? endPoint)
    {
        endPoint = null;
        var flag = parse.GetValue(AdminOption);
        if (flag == "off") return true;
        if (flag is not null)
        {
            if (!NodeEndpoint.TryParseAdmin(flag, out var parsed, out var error))
            {
                Console.Error.WriteLine($"--admin: {error}");
                return false;
            }
            endPoint = parsed.ToEndPoint();
            return true;
        }
        endPoint = topology.GetNode(nodeId).Admin?.ToEndPoint();
        return true;
    }

    private static async Task<int> RunAsync(ParseResult parse, TopologyConfig topology, string nodeId, DefaultDataDirectory.Choice data,
        Func<ILoggerFactory, IAsyncDisposable> start, CancellationToken ct)
    {
        if (!SecurityCommands.MayStart(topology)) return 2;
        if (GeoRelay.Codec.Frames.ProtocolVersion.LocalMaxProblem is { } pin)
        {
            Console.Error.WriteLine(pin);
            return 2;
        }
        if (!TryAdminEndPoint(parse, topology, nodeId, out var admin)) return 2;
        // One engine per process (not the in-process demo, whose many engines stalled with it): see SocketRuntime.
        GeoRelay.Transport.SocketRuntime.PreferInlineCompletions();
        var settings = new NodeServiceSettings(admin, parse.GetValue(OtlpOption), parse.GetValue(OtlpIntervalOption), parse.GetValue(DrainTimeoutOption),
            topology, nodeId);
        var builder = Host.CreateApplicationBuilder();
        ConfigureLogging(builder.Logging, parse.GetValue(LogFormatOption)!);
        // The drain bound plus room to close connections and flush logs.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(10));
        NodeService? service = null;
        builder.Services.AddHostedService(sp => service = new NodeService(start, settings, data,
            sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<IHostApplicationLifetime>()));
        using var host = builder.Build();
        try
        {
            await host.RunAsync(ct).ConfigureAwait(false);
        }
        catch (DiskFailedException)
        {
            return DiskFailedExitCode; // opening or recovering the log failed; logged as it happened
        }
        return service?.DiskFailure is not null ? DiskFailedExitCode : 0;
    }

    private sealed record NodeServiceSettings(System.Net.EndPoint? Admin, Uri? Otlp, TimeSpan OtlpInterval, TimeSpan DrainTimeout,
        TopologyConfig Topology, string NodeId);

    private static EngineHost HostOf(IAsyncDisposable node) => node switch
    {
        LeaderNode leader => leader.Host,
        RelayNode relay => relay.Host,
        MemberNode member => member.Host,
        VoterNode voter => voter.Host,
        _ => throw new ArgumentException($"no engine host in {node.GetType().Name}", nameof(node)),
    };

    /// <summary>
    /// Starts the node, then its web learner endpoint (when the node has `web`), admin endpoint and metrics; on stop, drains (the leader waits for its
    /// in-flight batches to be acked; a relay for its members to ack what it holds; a member makes what it
    /// appended durable and acks it) while /healthz says draining, then stops the endpoints and the node.
    /// A disk failure stops the application at once, without a drain.
    /// </summary>
    private sealed class NodeService(Func<ILoggerFactory, IAsyncDisposable> start, NodeServiceSettings settings, DefaultDataDirectory.Choice data,
        ILoggerFactory loggers, IHostApplicationLifetime lifetime) : IHostedService
    {
        private readonly ILogger _logger = loggers.CreateLogger("georelay.daemon");
        private IAsyncDisposable? _node;
        private EngineHost? _host;

        /// <summary>The disk failure that stopped the node, if one did.</summary>
        public DiskFailedException? DiskFailure => _host?.Failure;
        private NodeMetrics? _metrics;
        private PrometheusExporter? _exporter;
        private AdminServer? _admin;
        private ClusterConsole? _console;
        private WebLearnerServer? _web;
        private IDisposable? _otlp;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            DaemonLog.DataDirectory(_logger, data.Path, data.Source);
            try
            {
                _node = start(loggers);
            }
            catch (DiskFailedException e)
            {
                DaemonLog.DiskFailedAtStart(_logger, e.Operation, e.Path ?? data.Path, e.Error);
                throw;
            }
            _host = HostOf(_node);
            _ = _host.Failed.ContinueWith(_ => lifetime.StopApplication(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            var view = AdminNode.For(_node);
            if (settings.Topology.GetNode(settings.NodeId).Web is { } web)
                _web = await WebLearnerServer.StartAsync(web.ToEndPoint(), settings.Topology, settings.NodeId, view.Host.Security, WebEndpointOptions.Default, loggers).ConfigureAwait(false);
            if (settings.Admin is null && settings.Otlp is null) return;
            _metrics = new NodeMetrics(view);
            if (settings.Otlp is { } otlp)
                _otlp = OtlpExport.Start(otlp, settings.OtlpInterval, loggers.CreateLogger("georelay.admin"));
            if (settings.Admin is { } admin)
            {
                _exporter = new PrometheusExporter(_metrics.Meter, _metrics.Invalidate);
                // A peer that has not answered within a second shows as down: the console refreshes every second.
                _console = ClusterConsole.ForNode(settings.Topology, view, TimeSpan.FromSeconds(1));
                _admin = await AdminServer.StartAsync(admin, view, _exporter, loggers, cancellationToken, _console).ConfigureAwait(false);
            }
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            // A node whose disk failed makes nothing durable any more: nothing to drain.
            if (_host?.Failure is null)
            {
                switch (_node)
                {
                    case LeaderNode leader: await leader.DrainAsync(settings.DrainTimeout).ConfigureAwait(false); break;
                    case RelayNode relay: await relay.DrainAsync(settings.DrainTimeout).ConfigureAwait(false); break;
                    case MemberNode member: await member.DrainAsync(settings.DrainTimeout).ConfigureAwait(false); break;
                    case VoterNode voter: await voter.DrainAsync(settings.DrainTimeout).ConfigureAwait(false); break;
                }
            }
            _otlp?.Dispose(); // pushes a last export
            // Web clients are told the node is stopping (they resume elsewhere) before their upstream learners are cut.
            if (_web is not null) await _web.DisposeAsync().ConfigureAwait(false);
            if (_admin is not null) await _admin.DisposeAsync().ConfigureAwait(false);
            _console?.Dispose();
            if (_node is not null) await _node.DisposeAsync().ConfigureAwait(false);
            _exporter?.Dispose();
            _metrics?.Dispose();
            if (DiskFailure is { } failure) DaemonLog.StoppedAfterDiskFailure(_logger, DiskFailedExitCode, failure.Path ?? data.Path);
        }
    }
}
