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
        var ports = new Queue<int>(FreeLoopbackPorts(topology.Nodes.Count * 4));
        NodeEndpoint? Next(NodeEndpoint? old) => old is null ? null : new NodeEndpoint("127.0.0.1", ports.Dequeue());
        var nodes = new Dictionary<string, NodeConfig>();
        foreach (var (id, node) in topology.Nodes)
            nodes[id] = node with { Listen = Next(node.Listen), Publish = Next(node.Publish), Learners = Next(node.Learners), Admin = Next(node.Admin) };
        return topology with { Nodes = nodes };
    }

    /// <summary>
    /// Distinct free loopback ports. All probes stay bound until every port is chosen: a probe closed
    /// early lets the kernel hand the same port out twice.
    /// </summary>
    public static List<int> FreeLoopbackPorts(int count)
    {
        var probes = new List<Socket>(count);
        try
        {
            var ports = new List<int>(count);
            for (int i = 0; i < count; i++)
            {
                var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                probes.Add(probe);
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                ports.Add(((IPEndPoint)probe.LocalEndPoint!).Port);
            }
            return ports;
        }
        finally
        {
            foreach (var probe in probes) probe.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Leader.DisposeAsync();
        foreach (var r in Relays.Values) await r.DisposeAsync();
        foreach (var m in Members.Values) await m.DisposeAsync();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
