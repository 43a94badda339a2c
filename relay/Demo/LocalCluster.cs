using System.Net;
using System.Net.Sockets;
using GeoRelay.Leader;
using GeoRelay.Relay.Hosting;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay.Demo;

/// <summary>Every node of a topology inside one process on loopback, on fresh free ports.</summary>
public sealed class LocalCluster : IAsyncDisposable
{
    public TopologyConfig Topology { get; }
    public LeaderNode Leader { get; }
    public Dictionary<string, RelayNode> Relays { get; } = new();
    public Dictionary<string, MemberNode> Members { get; } = new();
    public string DataDirectory { get; }

    private LocalCluster(TopologyConfig topology, string data, LeaderOptions options, ILoggerFactory loggers)
    {
        Topology = topology;
        DataDirectory = data;
        foreach (var dc in topology.Datacenters)
        {
            foreach (var m in dc.Members) Members[m] = new MemberNode(topology, m, Path.Combine(data, m), loggers);
            foreach (var p in dc.Proxies) Relays[p] = new RelayNode(topology, p, Path.Combine(data, p), loggers);
        }
        Leader = new LeaderNode(topology, 1, Path.Combine(data, topology.LeaderId), options, loggers);
    }

    public static LocalCluster Start(TopologyConfig topology, LeaderOptions options, ILoggerFactory loggers)
    {
        var data = Path.Combine(Path.GetTempPath(), "georelay-demo-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        return new LocalCluster(WithFreePorts(topology), data, options, loggers);
    }

    /// <summary>The same topology with every address moved to a free loopback port.</summary>
    public static TopologyConfig WithFreePorts(TopologyConfig topology)
    {
        var nodes = new Dictionary<string, NodeConfig>();
        foreach (var (id, node) in topology.Nodes)
        {
            nodes[id] = node with
            {
                Listen = node.Listen is null ? null : FreeLoopback(),
                Publish = node.Publish is null ? null : FreeLoopback(),
                Learners = node.Learners is null ? null : FreeLoopback(),
                Admin = node.Admin is null ? null : FreeLoopback(),
            };
        }
        return topology with { Nodes = nodes };
    }

    public static NodeEndpoint FreeLoopback()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new NodeEndpoint("127.0.0.1", ((IPEndPoint)probe.LocalEndPoint!).Port);
    }

    public async ValueTask DisposeAsync()
    {
        await Leader.DisposeAsync();
        foreach (var r in Relays.Values) await r.DisposeAsync();
        foreach (var m in Members.Values) await m.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
