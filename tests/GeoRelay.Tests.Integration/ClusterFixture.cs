using System.Net;
using System.Net.Sockets;
using GeoRelay.Cli.Demo;
using GeoRelay.Server.Hosting;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Integration;

/// <summary>
/// A topology sample copied to a temp folder with every port replaced by a free one, and the
/// georelay processes of its nodes, each with its own data folder.
/// </summary>
public sealed class ClusterFixture : IDisposable
{
    public string Directory { get; }
    public string ConfigPath { get; }
    public TopologyConfig Topology { get; }
    public Dictionary<string, GeoRelayProcess> Processes { get; } = new();
    private readonly List<GeoRelayProcess> _all = new();

    public ClusterFixture(string sample, Func<string, string>? editYaml = null)
    {
        Directory = Path.Combine(Path.GetTempPath(), "georelay-it-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        var yaml = LocalCluster.WithFreePorts(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", sample)));
        if (editYaml is not null) yaml = editYaml(yaml);
        ConfigPath = Path.Combine(Directory, sample);
        File.WriteAllText(ConfigPath, yaml);
        Topology = TopologyLoader.LoadFile(ConfigPath).GetConfigOrThrow();
    }

    /// <summary>Extra environment variables for a node's process (e.g. a GC heap limit), set before it starts.</summary>
    public Dictionary<string, Dictionary<string, string>> NodeEnvironment { get; } = new();

    public string DataOf(string node) => Path.Combine(Directory, "data", node);

    /// <summary>More command-line arguments for a node's process (e.g. `--log-format json`), by node id.</summary>
    public Dictionary<string, string> ExtraArguments { get; } = new();

    public GeoRelayProcess StartNode(string node)
    {
        var role = Topology.GetNode(node).Role;
        string args = role switch
        {
            NodeRole.Leader => $"leader --config \"{ConfigPath}\" --data \"{DataOf(node)}\"",
            NodeRole.Relay => $"relay --config \"{ConfigPath}\" --node {node} --data \"{DataOf(node)}\"",
            _ => $"member --config \"{ConfigPath}\" --node {node} --data \"{DataOf(node)}\"",
        };
        if (ExtraArguments.TryGetValue(node, out var extra)) args += " " + extra;
        var process = new GeoRelayProcess(node, args, environment: NodeEnvironment.GetValueOrDefault(node));
        Processes[node] = process;
        _all.Add(process);
        return process;
    }

    /// <summary>Starts members, then relays, then the leader, each once it listens.</summary>
    public async Task StartAllAsync()
    {
        var started = new List<Task>();
        foreach (var dc in Topology.Datacenters)
            foreach (var m in dc.Members) started.Add(StartNode(m).WaitForLineAsync("Listening for Peer", TimeSpan.FromSeconds(60)));
        foreach (var dc in Topology.Datacenters)
            foreach (var p in dc.Relays) started.Add(StartNode(p).WaitForLineAsync("Listening for Peer", TimeSpan.FromSeconds(60)));
        await Task.WhenAll(started);
        await StartNode(Topology.LeaderId).WaitForLineAsync("Listening for Publish", TimeSpan.FromSeconds(60));
        // The admin endpoint binds beside the node, not before it: tests that read /status or /metrics wait for it.
        foreach (var (id, node) in Topology.Nodes)
        {
            bool adminOff = ExtraArguments.TryGetValue(id, out var extra) && extra.Contains("--admin off", StringComparison.Ordinal);
            bool adminOn = !adminOff && (node.Admin is not null || (extra?.Contains("--admin ", StringComparison.Ordinal) ?? false));
            if (adminOn) await Processes[id].WaitForLineAsync("Admin endpoint on", TimeSpan.FromSeconds(60));
        }
    }

    public GeoRelayProcess Run(string name, string arguments, string? stdin = null, bool streamInput = false)
    {
        var process = new GeoRelayProcess(name, arguments, stdin, streamInput: streamInput);
        _all.Add(process);
        return process;
    }

    /// <summary>Digest and entry count of a stopped node's log.</summary>
    public (string Digest, ulong Last) LogOf(string node)
    {
        using var log = SegmentLog.Open(DataOf(node), SegmentLogOptions.Default with { Fsync = false });
        return (LogDigest.Compute(log, log.LastIndex), log.LastIndex);
    }

    /// <summary>Every entry of a stopped node's log, in order.</summary>
    public List<LogEntry> EntriesOf(string node)
    {
        using var log = SegmentLog.Open(DataOf(node), SegmentLogOptions.Default with { Fsync = false });
        var entries = new List<LogEntry>();
        var batch = new List<LogEntry>();
        ulong next = Math.Max(1, log.FirstIndex);
        while (next <= log.LastIndex && log.Read(next, 4096, 16 << 20, batch) > 0)
        {
            // Copied: the log's buffers are not the caller's once it is closed.
            foreach (var e in batch) entries.Add(e with { Key = e.Key.ToArray(), Payload = e.Payload.ToArray() });
            next = batch[^1].Index + 1;
            batch.Clear();
        }
        return entries;
    }

    public void Dispose()
    {
        foreach (var p in _all) p.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
