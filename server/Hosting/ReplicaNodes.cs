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
    private protected readonly IEntryLog Log;

    /// <summary>The node's log (a <see cref="KeyedLog"/> with keyed compaction).</summary>
    public IEntryLog EntryLog => Log;

    public TEngine Engine { get; }
    public EngineHost Host { get; }
    public TopologyConfig Topology { get; }
    public string NodeId { get; }
    private protected ILogger Logger { get; }

    private protected ReplicaNode(TopologyConfig topology, string nodeId, string dataDirectory, ILoggerFactory loggers,
        string category, bool fsync, long maxQueued, Func<IEntryLog, EngineHost, ILogger, TEngine> create)
    {
        var node = topology.GetNode(nodeId);
        Topology = topology;
        NodeId = nodeId;
        var logger = Logger = loggers.CreateLogger(category);
        Log = NodeSetup.OpenLog(topology, dataDirectory, fsync,
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
        try
        {
            // A failed log is not flushed again: its fsync is never retried.
            Host.Invoke(_ => { if (Host.Failure is null) Log.Flush(); return 0; });
        }
        catch (DiskFailedException) { } // logged by the host, which now counts as failed
        Host.Invoke(_ => { Engine.Dispose(); return 0; });
        try { Log.Dispose(); }
        catch (DiskFailedException e) { Host.ReportDiskFailure(e); }
    }

    private protected Task<bool> WaitForAsync(Func<bool> done, TimeSpan bound) => EngineWaits.UntilAsync(Host, done, bound);
}

/// <summary>A relay (relay daemon).</summary>
public sealed class RelayNode(TopologyConfig topology, string nodeId, string dataDirectory, ILoggerFactory loggers)
    // Retention feeds learners; a crash loses nothing the leader cannot resend, so no fsync.
    // A member link may have to queue a whole window of the leader's batches (the window counts their
    // uncompressed bytes): cutting it as a slow consumer below that made the leader resend everything.
    // Learners are held to learner-backlog by the fan-out itself.
    : ReplicaNode<RelayEngine>(topology, nodeId, dataDirectory, loggers, "georelay.relay", fsync: false,
        Math.Max(topology.Defaults.LearnerBacklog, topology.Defaults.Window + topology.Defaults.BatchMaxBytes) * 2,
        (log, host, logger) => new RelayEngine(topology, nodeId, log, host, logger: logger))
{
    /// <summary>
    /// Before a clean stop: takes no more batches, waits, at most <paramref name="bound"/>, until every member that
    /// is up has acked what this relay holds (so the batches it took are not left half forwarded), then tells the
    /// leader with one last DcAck. Once it closes, the leader resends the rest through the next relay.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan bound)
    {
        if (Host.Failure is not null) return false;
        Host.Invoke(_ => { Engine.BeginDrain(); return 0; });
        bool drained = await WaitForAsync(() =>
        {
            ulong retained = Engine.RetainedIndex;
            foreach (var (_, up, durable) in Engine.MemberStatus())
                if (up && durable < retained) return false;
            return true;
        }, bound).ConfigureAwait(false);
        if (!drained) return false;
        ulong through = Host.Invoke(_ => { Engine.SendFinalAck(); return Engine.RetainedIndex; });
        HostingLog.RelayDrained(Logger, through);
        return true;
    }
}

/// <summary>A member (durable replica).</summary>
public sealed class MemberNode(TopologyConfig topology, string nodeId, string dataDirectory, ILoggerFactory loggers)
    : ReplicaNode<MemberEngine>(topology, nodeId, dataDirectory, loggers, "georelay.member", topology.Defaults.Fsync, topology.Defaults.LearnerBacklog * 2,
        (log, host, logger) => new MemberEngine(topology, nodeId, log, host, logger: logger))
{
    /// <summary>
    /// Before a clean stop: takes no more Appends, makes what it appended durable and acks that to every upstream,
    /// waiting at most <paramref name="bound"/>. The log then ends at an index the leader was told about.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan bound)
    {
        if (Host.Failure is not null) return false;
        ulong last = Host.Invoke(_ => { Engine.BeginDrain(); return Engine.LastIndex; });
        HostingLog.MemberDraining(Logger, bound.TotalSeconds, last);
        if (!await WaitForAsync(() => Engine.Drained, bound).ConfigureAwait(false))
        {
            if (Host.Failure is null) HostingLog.MemberDrainTimedOut(Logger, bound.TotalSeconds, Host.Invoke(_ => Engine.DurableIndex));
            return false;
        }
        var (durable, upstreams) = Host.Invoke(_ => (Engine.DurableIndex, Engine.UpstreamCount));
        HostingLog.MemberDrained(Logger, durable, upstreams);
        return true;
    }

    /// <summary>SHA-256 over every entry (index, epoch, key, payload) up to <paramref name="through"/>: equal logs have equal digests.</summary>
    public string Digest(ulong through) => Host.Invoke(_ => LogDigest.Compute(Log, through));
}
