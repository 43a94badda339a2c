using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;
using GeoRelay.Relay;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// A relay or member engine on real sockets, over its own segment log: upstream dials its listen port,
/// learners its learner port.
/// </summary>
public abstract class ReplicaNode<TEngine> : IAsyncDisposable where TEngine : class, IEngine, IDisposable
{
    private protected readonly SegmentLog Log;

    public TEngine Engine { get; }
    public EngineHost Host { get; }
    public TopologyConfig Topology { get; }
    public string NodeId { get; }
    private protected ILogger Logger { get; }

    private protected ReplicaNode(TopologyConfig topology, string nodeId, string? dataDirectory, ILoggerFactory loggers,
        string category, bool fsync, long maxQueued, Func<IEntryLog, EngineHost, ILogger, TEngine> create)
    {
        var node = topology.GetNode(nodeId);
        Topology = topology;
        NodeId = nodeId;
        var logger = Logger = loggers.CreateLogger(category);
        Log = SegmentLog.Open(NodeSetup.DataDirectory(dataDirectory, nodeId), NodeSetup.Log(topology, fsync),
            progress => logger.LogInformation("Recovery: {Progress}", progress));
        Host = new EngineHost(NodeSetup.Resolver(topology), NodeSetup.Connections(topology, maxQueued), loggers.CreateLogger("georelay.transport"),
            security: NodeSetup.Security(topology, nodeId));
        Engine = create(Log, Host, logger);
        Host.Attach(Engine);
        Host.Listen(node.Listen!.Value.ToEndPoint(), PortKind.Peer);
        if (node.Learners is { } learners) Host.Listen(learners.ToEndPoint(), PortKind.Learner);
        Host.Start();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        Host.Invoke(_ => { Log.Flush(); Engine.Dispose(); return 0; });
        Log.Dispose();
    }
}

/// <summary>A relay (relay daemon).</summary>
public sealed class RelayNode(TopologyConfig topology, string nodeId, string? dataDirectory, ILoggerFactory loggers)
    // Retention feeds learners; a crash loses nothing the leader cannot resend, so no fsync.
    // A member link may have to queue a whole window of the leader's batches (the window counts their
    // uncompressed bytes): cutting it as a slow consumer below that made the leader resend everything.
    // Learners are held to learner-backlog by the fan-out itself.
    : ReplicaNode<RelayEngine>(topology, nodeId, dataDirectory, loggers, "georelay.relay", fsync: false,
        Math.Max(topology.Defaults.LearnerBacklog, topology.Defaults.Window + topology.Defaults.BatchMaxBytes) * 2,
        (log, host, logger) => new RelayEngine(topology, nodeId, log, host, logger: logger))
{
    /// <summary>
    /// Before a clean stop: waits, at most <paramref name="bound"/>, until every member that is up has
    /// acked what this relay holds, so the batches it took are not left half forwarded.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan bound)
    {
        var drained = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check()
        {
            ulong retained = Engine.RetainedIndex;
            foreach (var (_, up, durable) in Engine.MemberStatus())
                if (up && durable < retained) return;
            drained.TrySetResult(retained);
        }
        Host.Invoke(_ => { Check(); Host.AfterDrain = Check; return 0; });
        try
        {
            HostingLog.RelayDrained(Logger, await drained.Task.WaitAsync(bound).ConfigureAwait(false));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        finally
        {
            Host.Invoke(_ => Host.AfterDrain = null);
        }
    }
}

/// <summary>A member (durable replica).</summary>
public sealed class MemberNode(TopologyConfig topology, string nodeId, string? dataDirectory, ILoggerFactory loggers)
    : ReplicaNode<MemberEngine>(topology, nodeId, dataDirectory, loggers, "georelay.member", topology.Defaults.Fsync, topology.Defaults.LearnerBacklog * 2,
        (log, host, logger) => new MemberEngine(topology, nodeId, log, host, logger: logger))
{
    /// <summary>SHA-256 over every entry (index, epoch, key, payload) up to <paramref name="through"/>: equal logs have equal digests.</summary>
    public string Digest(ulong through) => Host.Invoke(_ => LogDigest.Compute(Log, through));
}
