using System.CommandLine;
using GeoRelay.Leader;
using GeoRelay.Relay.Hosting;
using GeoRelay.Topology;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay.Cli;

/// <summary>`georelay leader|relay|member`: one node as a long-running daemon; SIGTERM drains and stops.</summary>
public static class DaemonCommands
{
    private static readonly Option<string> ConfigOption = new("--config") { Description = "Topology YAML file", Required = true };
    private static readonly Option<string?> DataOption = new("--data") { Description = "Data directory (default: $TMPDIR/georelay/<node>)" };
    private static readonly Option<string> LogFormatOption = new("--log-format") { Description = "console or json", DefaultValueFactory = _ => "console" };

    public static IEnumerable<Command> Create()
    {
        var epoch = new Option<ulong>("--epoch") { Description = "Leader epoch; must exceed any earlier leader's", DefaultValueFactory = _ => 1 };
        var direct = new Option<bool>("--direct") { Description = "Send to every member directly (no proxies), the baseline" };
        var noMux = new Option<bool>("--no-mux") { Description = "Repeat entry ranges per recipient instead of sharing them in one mux batch (a benchmark baseline)" };
        var compression = new Option<int?>("--compression-level") { Description = "zstd level on the leader's links; 0 turns compression off (default: the topology's)" };
        var leader = new Command("leader", "Run the leader: accepts publishes, sends one batch per datacenter") { ConfigOption, DataOption, epoch, direct, noMux, compression, LogFormatOption };
        leader.SetAction((parse, ct) =>
        {
            var topology = Load(parse.GetValue(ConfigOption)!);
            if (topology is null) return Task.FromResult(2);
            var options = LeaderOptions.Default with
            {
                UseProxies = !parse.GetValue(direct),
                UseMux = !parse.GetValue(noMux),
                CompressionLevel = parse.GetValue(compression),
            };
            return RunAsync(parse.GetValue(LogFormatOption)!, loggers => new LeaderNode(topology, parse.GetValue(epoch), parse.GetValue(DataOption), options, loggers), ct);
        });

        var relay = ReplicaCommand("relay", "Run a datacenter proxy: fans batches out to members and learners", NodeRole.Proxy,
            (topology, id, data, loggers) => new RelayNode(topology, id, data, loggers));
        var member = ReplicaCommand("member", "Run a member: a durable replica that acks and serves learners", NodeRole.Member,
            (topology, id, data, loggers) => new MemberNode(topology, id, data, loggers));
        return [leader, relay, member];
    }

    /// <summary>`relay` and `member` differ only in the role they check and the node they start.</summary>
    private static Command ReplicaCommand(string name, string description, NodeRole role,
        Func<TopologyConfig, string, string?, ILoggerFactory, IAsyncDisposable> start)
    {
        var node = new Option<string>("--node") { Description = "This node's id in the topology", Required = true };
        var command = new Command(name, description) { ConfigOption, node, DataOption, LogFormatOption };
        command.SetAction((parse, ct) =>
        {
            var topology = Load(parse.GetValue(ConfigOption)!);
            if (topology is null) return Task.FromResult(2);
            var id = parse.GetValue(node)!;
            if (!CheckRole(topology, id, role)) return Task.FromResult(2);
            return RunAsync(parse.GetValue(LogFormatOption)!, loggers => start(topology, id, parse.GetValue(DataOption), loggers), ct);
        });
        return command;
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
        if (format == "json") logging.AddJsonConsole();
        else logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
    }

    private static async Task<int> RunAsync(string logFormat, Func<ILoggerFactory, IAsyncDisposable> start, CancellationToken ct)
    {
        var builder = Host.CreateApplicationBuilder();
        ConfigureLogging(builder.Logging, logFormat);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddHostedService(sp => new NodeService(start, sp.GetRequiredService<ILoggerFactory>()));
        using var host = builder.Build();
        await host.RunAsync(ct).ConfigureAwait(false);
        return 0;
    }

    private sealed class NodeService(Func<ILoggerFactory, IAsyncDisposable> start, ILoggerFactory loggers) : IHostedService
    {
        private IAsyncDisposable? _node;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _node = start(loggers);
            return Task.CompletedTask;
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_node is not null) await _node.DisposeAsync().ConfigureAwait(false);
        }
    }
}
