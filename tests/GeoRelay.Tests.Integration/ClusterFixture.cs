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

    /// <param name="elections">
    /// Keep the sample's <c>elections</c> (on by default). Otherwise the <c>leader</c> node always leads: the tests of the
    /// data path, operations and security count indexes and publish to one address, and an election (a member may win
    /// the first one, and an overloaded machine can miss heartbeats) would add no-ops and move the publish port.
    /// Elections run for real in Elections/ and Partition/, and in the demo.
    /// </param>
    public ClusterFixture(string sample, Func<string, string>? editYaml = null, bool elections = false)
    {
        Directory = Path.Combine(Path.GetTempPath(), "georelay-it-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        var yaml = LocalCluster.WithFreePorts(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", sample)));
        if (!elections) yaml = FixedLeader(yaml);
        if (editYaml is not null) yaml = editYaml(yaml);
        ConfigPath = Path.Combine(Directory, sample);
        File.WriteAllText(ConfigPath, yaml);
        Topology = TopologyLoader.LoadFile(ConfigPath).GetConfigOrThrow();
    }

    private static string FixedLeader(string yaml)
    {
        if (System.Text.RegularExpressions.Regex.IsMatch(yaml, @"(?m)^  elections: *\S+"))
            return System.Text.RegularExpressions.Regex.Replace(yaml, @"(?m)^  elections: *\S+", "  elections: false");
        return System.Text.RegularExpressions.Regex.IsMatch(yaml, @"(?m)^defaults: *$")
            ? System.Text.RegularExpressions.Regex.Replace(yaml, @"(?m)^defaults: *$", "defaults:\n  elections: false")
            : yaml + "\ndefaults:\n  elections: false\n";
    }

    /// <summary>Extra environment variables for a node's process (e.g. a GC heap limit), set before it starts.</summary>
    public Dictionary<string, Dictionary<string, string>> NodeEnvironment { get; } = new();

    public string DataOf(string node) => Path.Combine(Directory, "data", node);

    /// <summary>More command-line arguments for a node's process (e.g. `--log-format json`), by node id.</summary>
    public Dictionary<string, string> ExtraArguments { get; } = new();

    public GeoRelayProcess StartNode(string node) => StartNode(node, ConfigPath, Topology.GetNode(node).Role);

    /// <summary>Starts a node with another topology file than the cluster's (one a membership change made, or an older one).</summary>
    public GeoRelayProcess StartNode(string node, string configPath) =>
        StartNode(node, configPath, TopologyLoader.LoadFile(configPath).GetConfigOrThrow().GetNode(node).Role);

    /// <summary>
    /// Starts <paramref name="node"/> with another topology file than the fixture's (a node a membership change adds,
    /// given the file that lists it); it is stopped with the others.
    /// </summary>
    public GeoRelayProcess StartNode(string node, string configPath, NodeRole role)
    {
        string args = role switch
        {
            NodeRole.Leader => $"leader --config \"{configPath}\" --data \"{DataOf(node)}\"",
            NodeRole.Relay => $"relay --config \"{configPath}\" --node {node} --data \"{DataOf(node)}\"",
            _ => $"member --config \"{configPath}\" --node {node} --data \"{DataOf(node)}\"",
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
        var leader = StartNode(Topology.LeaderId);
        await leader.WaitForLineAsync("Listening for Publish", TimeSpan.FromSeconds(60));
        // With elections a member may win while the leader node starts; it leads once it is back and caught up.
        if (Topology.Defaults.Elections) await leader.WaitForLineAsync($"{Topology.LeaderId} leads term", TimeSpan.FromSeconds(60));
        // The admin and web endpoints bind beside the node, not before it: tests that use them wait for them.
        foreach (var (id, node) in Topology.Nodes)
        {
            bool adminOff = ExtraArguments.TryGetValue(id, out var extra) && extra.Contains("--admin off", StringComparison.Ordinal);
            bool adminOn = !adminOff && (node.Admin is not null || (extra?.Contains("--admin ", StringComparison.Ordinal) ?? false));
            if (adminOn) await Processes[id].WaitForLineAsync("Admin endpoint on", TimeSpan.FromSeconds(60));
            if (node.Web is not null) await Processes[id].WaitForLineAsync("Web endpoint on", TimeSpan.FromSeconds(60));
        }
    }

    public GeoRelayProcess Run(string name, string arguments, string? stdin = null, bool keepInputOpen = false)
    {
        var process = new GeoRelayProcess(name, arguments, stdin, keepInputOpen: keepInputOpen);
        _all.Add(process);
        return process;
    }

    /// <summary>
    /// A stopped node's log: a digest of its application entries (index, epoch, key, payload), its last index, and how
    /// many application entries it holds. Internal entries (exactly-once producer markers, no-ops) are left out of the
    /// digest and the count: with elections a clean stop of the leader hands leadership over, and the new leader's
    /// no-op reaches only the nodes still running.
    /// </summary>
    public (string Digest, ulong Last, ulong Count) LogOf(string node)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        Span<byte> head = stackalloc byte[16];
        ulong last = 0, count = 0;
        foreach (var e in EntriesOf(node))
        {
            last = e.Index;
            if (GeoRelay.Codec.Frames.InternalEntries.IsInternal(e.Key.Span)) continue;
            count++;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head, e.Index);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head[8..], e.Epoch);
            sha.AppendData(head);
            sha.AppendData(e.Key.Span);
            sha.AppendData(e.Payload.Span);
        }
        return (Convert.ToHexString(sha.GetHashAndReset()), last, count);
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
