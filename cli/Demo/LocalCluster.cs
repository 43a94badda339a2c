using System.Net;
using System.Net.Sockets;
using GeoRelay.Leader;
using GeoRelay.Server.Hosting;
using GeoRelay.Topology;
using GeoRelay.Voter;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Cli.Demo;

/// <summary>
/// Where node <paramref name="from"/> dials to reach <paramref name="to"/>, whose peer port is
/// <paramref name="address"/>: the address itself, or a forwarder in front of it (a WAN emulator
/// that delays the links between regions, say). A forwarder listens on <paramref name="spare"/>, a
/// loopback port reserved together with the cluster's own (binding port 0 instead could take a port
/// already chosen for a node that is not listening yet).
/// </summary>
public delegate NodeEndpoint DialRoute(NodeConfig from, NodeConfig to, NodeEndpoint address, IPEndPoint spare);

/// <summary>
/// Every node of a topology inside one process on loopback, on fresh free ports. With <c>elections</c> (the default)
/// the leader node and the members run as voters (<see cref="Voters"/>) and any of them may lead; without, the
/// leader node always leads (<see cref="Leader"/>) and the members only follow (<see cref="Members"/>).
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly HashSet<string> _stopped = new();
    private readonly Dictionary<string, TopologyConfig> _views = new();
    private readonly LeaderOptions _options;
    private readonly ILoggerFactory _loggers;

    public TopologyConfig Topology { get; }
    /// <summary>The fixed leader (<c>elections: false</c>), else null.</summary>
    public LeaderNode? Leader { get; }
    public Dictionary<string, RelayNode> Relays { get; } = new();
    /// <summary>Members that only follow (<c>elections: false</c>).</summary>
    public Dictionary<string, MemberNode> Members { get; } = new();
    /// <summary>The leader node and the members as voters (<c>elections: true</c>); a crashed one is absent until it restarts.</summary>
    public Dictionary<string, VoterNode> Voters { get; } = new();
    public string DataDirectory { get; }

    private LocalCluster(TopologyConfig topology, string data, LeaderOptions options, ILoggerFactory loggers, DialRoute? dialRoute, Queue<int> spare)
    {
        Topology = topology;
        DataDirectory = data;
        _options = options;
        _loggers = loggers;
        foreach (var id in topology.Nodes.Keys) _views[id] = ViewOf(topology, id, dialRoute, spare);
        foreach (var dc in topology.Datacenters)
        {
            foreach (var p in dc.Relays) Relays[p] = new RelayNode(_views[p], p, Path.Combine(data, p), loggers);
            if (!topology.Defaults.Elections)
                foreach (var m in dc.Members) Members[m] = new MemberNode(_views[m], m, Path.Combine(data, m), loggers);
        }
        if (topology.Defaults.Elections)
            foreach (var id in topology.Voters) StartVoter(id);
        else
            Leader = new LeaderNode(_views[topology.LeaderId], 1, Path.Combine(data, topology.LeaderId), options, loggers);
    }

    private void StartVoter(string id) =>
        Voters[id] = new VoterNode(_views[id], id, Path.Combine(DataDirectory, id), VoterOptions.Default with { Leader = _options }, _loggers);

    /// <summary>Whoever leads now: its id, host and leader engine; null while no node leads (an election is on).</summary>
    public (string Id, EngineHost Host, LeaderEngine Engine)? Leading()
    {
        if (Leader is not null) return (Topology.LeaderId, Leader.Host, Leader.Engine);
        foreach (var (id, voter) in Voters)
            if (voter.Host.Invoke(_ => voter.Engine.Leader) is { } engine) return (id, voter.Host, engine);
        return null;
    }

    /// <summary>The running node of that id (leader, voter, relay or member); null while it is stopped or crashed.</summary>
    public IAsyncDisposable? Running(string id)
    {
        if (id == Topology.LeaderId && Leader is not null) return Leader;
        if (Voters.TryGetValue(id, out var voter)) return voter;
        if (Relays.TryGetValue(id, out var relay)) return _stopped.Contains(id) ? null : relay;
        return Members.GetValueOrDefault(id);
    }

    /// <summary>Stops a voter as a crash would look to its peers (its connections close); its data stays for <see cref="RestartVoter"/>.</summary>
    public async Task CrashVoterAsync(string id)
    {
        if (!Voters.Remove(id, out var voter)) return;
        await voter.DisposeAsync();
    }

    /// <summary>Starts a crashed voter again on its data.</summary>
    public void RestartVoter(string id)
    {
        if (!Voters.ContainsKey(id)) StartVoter(id);
    }

    /// <param name="dialRoute">When set, every node dials its peers where this says (see <see cref="DialRoute"/>).</param>
    public static LocalCluster Start(TopologyConfig topology, LeaderOptions options, ILoggerFactory loggers, DialRoute? dialRoute = null)
    {
        var data = Path.Combine(Path.GetTempPath(), "georelay-demo-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        int addresses = topology.Nodes.Count * 5; // listen, publish, learners, admin, web
        int spares = dialRoute is null ? 0 : topology.Nodes.Count * topology.Nodes.Count;
        var ports = new Queue<int>(FreeLoopbackPorts(addresses + spares));
        return new LocalCluster(WithPorts(topology, ports), data, options, loggers, dialRoute, ports);
    }

    /// <summary>
    /// The topology as node <paramref name="self"/> sees it: every other node's peer address replaced by
    /// where <paramref name="dialRoute"/> says to dial it. Nodes dial by the `listen` address of the
    /// topology they were given, and the handshake's topology hash covers no address, so this is all a
    /// forwarder needs.
    /// </summary>
    private static TopologyConfig ViewOf(TopologyConfig topology, string self, DialRoute? dialRoute, Queue<int> spare)
    {
        if (dialRoute is null) return topology;
        var from = topology.GetNode(self);
        var nodes = new Dictionary<string, NodeConfig>();
        foreach (var (id, node) in topology.Nodes)
            nodes[id] = id == self || node.Listen is not { } listen ? node
                : node with { Listen = dialRoute(from, node, listen, new IPEndPoint(IPAddress.Loopback, spare.Dequeue())) };
        return topology with { Nodes = nodes };
    }

    /// <summary>Stops one relay as a crash would look to its peers: its connections close.</summary>
    public async Task StopRelayAsync(string id)
    {
        if (!_stopped.Add(id)) return;
        await Relays[id].DisposeAsync();
    }

    /// <summary>The same topology with every address moved to a free loopback port.</summary>
    public static TopologyConfig WithFreePorts(TopologyConfig topology) => WithPorts(topology, new Queue<int>(FreeLoopbackPorts(topology.Nodes.Count * 5)));

    private static TopologyConfig WithPorts(TopologyConfig topology, Queue<int> ports)
    {
        NodeEndpoint? Next(NodeEndpoint? old) => old is null ? null : new NodeEndpoint("127.0.0.1", ports.Dequeue());
        var nodes = new Dictionary<string, NodeConfig>();
        foreach (var (id, node) in topology.Nodes)
            nodes[id] = node with { Listen = Next(node.Listen), Publish = Next(node.Publish), Learners = Next(node.Learners), Admin = Next(node.Admin), Web = Next(node.Web) };
        return topology with { Nodes = nodes };
    }

    /// <summary>Topology YAML with every 127.0.0.1 port replaced by a free one (a port used twice maps to one new port).</summary>
    public static string WithFreePorts(string yaml)
    {
        var addresses = System.Text.RegularExpressions.Regex.Matches(yaml, @"127\.0\.0\.1:(\d+)");
        var free = new Queue<int>(FreeLoopbackPorts(addresses.Count));
        var ports = new Dictionary<string, int>();
        return System.Text.RegularExpressions.Regex.Replace(yaml, @"127\.0\.0\.1:(\d+)", m =>
        {
            if (!ports.TryGetValue(m.Groups[1].Value, out var port)) ports[m.Groups[1].Value] = port = free.Dequeue();
            return "127.0.0.1:" + port;
        });
    }

    /// <summary>
    /// Distinct free loopback ports, below the kernel's ephemeral range: a port taken from that range (bind to port 0)
    /// can be handed to some process's outgoing connection before the node that was given it binds, which failed
    /// a test with "address already in use". All probes stay bound until every port is chosen: a probe closed early
    /// lets the same port be picked twice.
    /// </summary>
    public static List<int> FreeLoopbackPorts(int count)
    {
        var (low, high) = ListenRange();
        var probes = new List<Socket>(count);
        try
        {
            var ports = new List<int>(count);
            for (int attempts = 0; ports.Count < count; attempts++)
            {
                var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                // Outside the range (or when it is crowded): whatever the kernel gives.
                int port = attempts < count * 50 && high > low ? Random.Shared.Next(low, high) : 0;
                try
                {
                    // Listening, not just bound: sockets that are only bound (with the SO_REUSEADDR .NET sets) may share a port.
                    probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
                    probe.Listen(1);
                }
                catch (SocketException)
                {
                    probe.Dispose();
                    continue;
                }
                probes.Add(probe);
                int chosen = ((IPEndPoint)probe.LocalEndPoint!).Port;
                if (!ports.Contains(chosen)) ports.Add(chosen);
            }
            return ports;
        }
        finally
        {
            foreach (var probe in probes) probe.Dispose();
        }
    }

    /// <summary>Ports to listen on: from 10000 up to the start of the ephemeral range (Linux's ip_local_port_range).</summary>
    private static (int Low, int High) ListenRange()
    {
        int ephemeral = 32768;
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            if (text.Length > 0 && int.TryParse(text[0], out int first)) ephemeral = first;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return (10_000, Math.Max(10_000, ephemeral));
    }

    public async ValueTask DisposeAsync()
    {
        if (Leader is not null) await Leader.DisposeAsync();
        foreach (var v in Voters.Values) await v.DisposeAsync();
        foreach (var (id, r) in Relays)
            if (_stopped.Add(id)) await r.DisposeAsync();
        foreach (var m in Members.Values) await m.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
