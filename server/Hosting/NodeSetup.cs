using System.Net;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport;
using GeoRelay.Transport.Security;
using GeoRelay.Server.Security;

namespace GeoRelay.Server.Hosting;

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
        IdleTimeout = topology.Defaults.IdleTimeout,
        FrameTimeout = topology.Defaults.FrameTimeout,
        MaxConnectionsPerPort = topology.Defaults.MaxConnectionsPerPort,
        MaxConnectionsPerAddress = topology.Defaults.MaxConnectionsPerAddress,
        MaxSubscribesPerSecond = topology.Defaults.MaxSubscribesPerSecond,
    };

    /// <summary>
    /// TLS material and the token keys named by the topology, loaded for <paramref name="nodeId"/>. A topology without
    /// TLS that does not say <c>insecure: true</c> stops the node, saying what to add; so does a missing file, with its path.
    /// </summary>
    public static HostSecurity Security(TopologyConfig topology, string nodeId)
    {
        if (SecurityPosture.StartRefusal(topology) is { } refusal) throw new InvalidOperationException(refusal);
        NodeTls? tls = null;
        TokenVerifier? tokens = null;
        try
        {
            if (topology.Tls is { } t)
                tls = NodeTls.Load(t.CaFile, t.CertificateFile(nodeId), t.KeyFile(nodeId));
            if (topology.Auth is { } a)
                tokens = TokenVerifier.Load(a, topology.SourcePath);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            tls?.Dispose();
            throw new InvalidOperationException($"{topology.SourcePath}: cannot load the security material for {nodeId}: {e.Message}", e);
        }
        return new HostSecurity
        {
            Tls = tls,
            TlsOnLearners = topology.Tls?.Learners ?? false,
            TlsOnPublish = topology.Tls?.Publish ?? false,
            Tokens = tokens,
            TokensOnLearners = topology.Auth?.Learners ?? false,
            TokensOnPublish = topology.Auth?.Publish ?? false,
        };
    }

    /// <summary>
    /// The node's log in <paramref name="dataDirectory"/>: its segments, wrapped in keyed compaction when the topology
    /// says <c>compaction: keyed</c> (the state file lives beside the segments).
    /// </summary>
    public static IEntryLog OpenLog(TopologyConfig topology, string dataDirectory, bool fsync, Action<string>? progress)
    {
        var segments = SegmentLog.Open(dataDirectory, Log(topology, fsync), progress);
        if (topology.Defaults.Compaction != LogCompaction.Keyed) return segments;
        try
        {
            return KeyedLog.Open(segments, dataDirectory, new KeyedCompactionOptions
            {
                TombstoneRetention = topology.Defaults.TombstoneRetention,
                PersistEveryBytes = Log(topology, fsync).SegmentBytes,
                Fsync = fsync,
            });
        }
        catch
        {
            segments.Dispose();
            throw;
        }
    }

    /// <remarks>
    /// Retention drops whole segments and never the active one, so segments are a quarter of the
    /// retention size (at most the 64 MiB default): a small window then really is small. The read cache
    /// is capped the same way, so a relay's memory follows its configured window.
    /// </remarks>
    public static SegmentLogOptions Log(TopologyConfig topology, bool fsync) => SegmentLogOptions.Default with
    {
        SegmentBytes = Math.Clamp(topology.Defaults.RetentionMaxBytes / 4, 4096, SegmentLogOptions.Default.SegmentBytes),
        CacheBytes = Math.Min(topology.Defaults.RetentionMaxBytes / 4, SegmentLogOptions.Default.CacheBytes),
        RetentionMaxBytes = topology.Defaults.RetentionMaxBytes,
        RetentionMaxAge = topology.Defaults.RetentionMaxAge,
        Fsync = fsync,
        WriteFormat = topology.Defaults.SegmentFormat,
    };
}
