using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport.Engines;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay.Hosting;

/// <summary>A proxy (relay daemon) on real sockets: the leader dials its listen port, learners its learner port.</summary>
public sealed class RelayNode : IAsyncDisposable
{
    private readonly SegmentLog _log;

    public RelayEngine Engine { get; }
    public EngineHost Host { get; }

    public RelayNode(TopologyConfig topology, string nodeId, string? dataDirectory, ILoggerFactory loggers)
    {
        var node = topology.GetNode(nodeId);
        var logger = loggers.CreateLogger("georelay.relay");
        // Retention feeds learners; a crash loses nothing the leader cannot resend, so no fsync.
        _log = SegmentLog.Open(NodeSetup.DataDirectory(dataDirectory, nodeId), NodeSetup.Log(topology, fsync: false),
            progress => logger.LogInformation("Recovery: {Progress}", progress));
        Host = new EngineHost(NodeSetup.Resolver(topology), NodeSetup.Connections(topology, topology.Defaults.LearnerBacklog * 2), loggers.CreateLogger("georelay.transport"));
        Engine = new RelayEngine(topology, nodeId, _log, Host, logger: logger);
        Host.Attach(Engine);
        Host.Listen(node.Listen!.Value.ToEndPoint(), PortKind.Peer);
        if (node.Learners is { } learners) Host.Listen(learners.ToEndPoint(), PortKind.Learner);
        Host.Start();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        Host.Invoke(_ => { Engine.Dispose(); return 0; });
        _log.Dispose();
    }
}

/// <summary>A member (durable replica) on real sockets.</summary>
public sealed class MemberNode : IAsyncDisposable
{
    private readonly SegmentLog _log;

    public MemberEngine Engine { get; }
    public EngineHost Host { get; }

    public MemberNode(TopologyConfig topology, string nodeId, string? dataDirectory, ILoggerFactory loggers)
    {
        var node = topology.GetNode(nodeId);
        var logger = loggers.CreateLogger("georelay.member");
        _log = SegmentLog.Open(NodeSetup.DataDirectory(dataDirectory, nodeId), NodeSetup.Log(topology, topology.Defaults.Fsync),
            progress => logger.LogInformation("Recovery: {Progress}", progress));
        Host = new EngineHost(NodeSetup.Resolver(topology), NodeSetup.Connections(topology, topology.Defaults.LearnerBacklog * 2), loggers.CreateLogger("georelay.transport"));
        Engine = new MemberEngine(topology, nodeId, _log, Host, logger: logger);
        Host.Attach(Engine);
        Host.Listen(node.Listen!.Value.ToEndPoint(), PortKind.Peer);
        if (node.Learners is { } learners) Host.Listen(learners.ToEndPoint(), PortKind.Learner);
        Host.Start();
    }

    /// <summary>SHA-256 over every entry (index, epoch, key, payload) up to <paramref name="through"/>: equal logs have equal digests.</summary>
    public string Digest(ulong through) => Host.Invoke(_ => LogDigest.Compute(_log, through));

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        Host.Invoke(_ => { _log.Flush(); Engine.Dispose(); return 0; });
        _log.Dispose();
    }
}

public static class LogDigest
{
    public static string Compute(IEntryLog log, ulong through)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var batch = new List<LogEntry>();
        Span<byte> head = stackalloc byte[16];
        ulong next = Math.Max(1, log.FirstIndex);
        while (next <= Math.Min(through, log.LastIndex))
        {
            batch.Clear();
            if (log.Read(next, 4096, 16 << 20, batch) == 0) break;
            foreach (var e in batch)
            {
                if (e.Index > through) break;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head, e.Index);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head[8..], e.Epoch);
                sha.AppendData(head);
                sha.AppendData(e.Key.Span);
                sha.AppendData(e.Payload.Span);
                next = e.Index + 1;
            }
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }
}
