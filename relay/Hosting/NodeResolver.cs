using System.Net;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport;

namespace GeoRelay.Relay.Hosting;

internal static class NodeSetup
{
    /// <summary>Where to dial a node: its `listen` address.</summary>
    public static Func<string, EndPoint?> Resolver(TopologyConfig topology) => id =>
        topology.Nodes.TryGetValue(id, out var node) && node.Listen is { } listen ? listen.ToEndPoint() : null;

    public static ConnectionOptions Connections(TopologyConfig topology, long maxQueued) => new()
    {
        MaxFrameBytes = (int)Math.Min(int.MaxValue - 1024, topology.Defaults.MaxFrame),
        MaxQueuedBytes = maxQueued,
        HandshakeTimeout = topology.Defaults.HandshakeTimeout,
    };

    public static SegmentLogOptions Log(TopologyConfig topology, bool fsync) => SegmentLogOptions.Default with
    {
        RetentionMaxBytes = topology.Defaults.RetentionMaxBytes,
        RetentionMaxAge = topology.Defaults.RetentionMaxAge,
        Fsync = fsync,
    };

    public static string DataDirectory(string? given, string nodeId) =>
        given ?? Path.Combine(Path.GetTempPath(), "georelay", nodeId);
}
