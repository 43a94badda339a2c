using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace GeoRelay.Server.Admin;

/// <summary>
/// A node's System.Diagnostics.Metrics instruments, on a Meter named "GeoRelay" tagged with the node
/// and its role. Almost all are observable and read one status snapshot per collection (taken under
/// the engine lock at most every 100 ms), so nothing is counted twice and the engines carry no metric code.
/// </summary>
public sealed class NodeMetrics : IDisposable
{
    public const string MeterName = "GeoRelay";
    private static readonly TimeSpan SnapshotAge = TimeSpan.FromMilliseconds(100);
    // Seconds, from a loopback ack to a slow intercontinental one; exporters' defaults are in milliseconds.
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly AdminNode _node;
    private readonly object _gate = new();
    private NodeStatusReport? _snapshot;
    private long _snapshotAt;

    public Meter Meter { get; }

    public NodeMetrics(AdminNode node)
    {
        _node = node;
        Meter = new Meter(new MeterOptions(MeterName)
        {
            Version = typeof(NodeMetrics).Assembly.GetName().Version?.ToString(),
            Tags = [new("node", node.NodeId), new("role", node.Role.ToString().ToLowerInvariant()), new("dc", node.Datacenter)],
        });

        // Every role.
        Meter.CreateObservableGauge("georelay.epoch", () => (long)Snapshot().Epoch, description: "Highest leader epoch this node has seen (its own, on the leader)");
        Meter.CreateObservableGauge("georelay.index.last", () => (long)Snapshot().Indexes.Last, "{entry}", "Highest index in this node's log");
        Meter.CreateObservableGauge("georelay.index.oldest", () => (long)Snapshot().Indexes.Oldest, "{entry}", "Oldest index this node still holds (retention)");
        Meter.CreateObservableGauge("georelay.index.durable", () => (long)Snapshot().Indexes.Durable, "{entry}", "Highest index durable in this node's log");
        Meter.CreateObservableGauge("georelay.lag", () => Snapshot().Lag, "{entry}",
            "Leader: appended but not committed; relay: retained but not durable on its slowest member; member: commit index minus durable index");
        Meter.CreateObservableCounter("georelay.peer.sent", () => PerPeer(p => p.BytesSent), "By", "Wire bytes sent to each peer (learners and publishers summed)");
        Meter.CreateObservableCounter("georelay.peer.received", () => PerPeer(p => p.BytesReceived), "By", "Wire bytes received from each peer (learners and publishers summed)");
        Meter.CreateObservableGauge("georelay.peer.connections", () => PerPeer(p => (long)p.Connections), "{connection}", "Open connections to each peer");
        Meter.CreateObservableGauge("georelay.peer.up", () => PerPeerState(), description: "1 while the peer's state is active, up, via-relay, direct or connected; 0 otherwise");
        Meter.CreateObservableCounter("georelay.refusals", () => PerRefusal(), "{connection}", "Connections refused or cut by a limit, a check or an operator, by reason");
        if (node is VoterAdmin)
        {
            // Voters (elections: true): their role changes at runtime, so these say what they are now.
            Meter.CreateObservableGauge("georelay.election.term", () => (long)(Snapshot().Election?.Term ?? 0), description: "This voter's election term");
            Meter.CreateObservableGauge("georelay.election.leader", () => Snapshot().Election?.Role == "leader" ? 1L : 0L,
                description: "1 while this voter leads; the sum over a cluster's voters is 1 when it has a leader");
            Meter.CreateObservableCounter("georelay.election.role_changes", () => (long)(Snapshot().Election?.RoleChanges ?? 0), "{change}",
                "Times this voter took or gave up the leader's role (leader changes)");
        }

        switch (node.Role)
        {
            case Topology.NodeRole.Leader: AddLeader(); break;
            case Topology.NodeRole.Relay:
                Meter.CreateObservableCounter("georelay.relay.batches", () => Snapshot().Batches, "{batch}", "Batches received from the leader");
                Meter.CreateObservableGauge("georelay.index.retained", () => (long)Snapshot().Indexes.Retained, "{entry}", "Highest index retained for learners");
                AddLearners();
                break;
            default:
                Meter.CreateObservableGauge("georelay.index.commit", () => (long)Snapshot().Indexes.Commit, "{entry}", "Commit index this member was told");
                AddLearners();
                break;
        }
    }

    private void AddLeader()
    {
        Meter.CreateObservableCounter("georelay.entries", () => (long)Snapshot().Indexes.Last, "{entry}", "Entries appended (the leader's last index)");
        Meter.CreateObservableGauge("georelay.index.commit", () => (long)Snapshot().Indexes.Commit, "{entry}", "Highest index durable on a quorum of members");
        Meter.CreateObservableCounter("georelay.dc.batches", () => PerDc(d => d.Batches), "{batch}", "Batches (or direct Appends) sent to each datacenter");
        Meter.CreateObservableCounter("georelay.dc.sent", () => PerDc(d => d.BytesSent), "By", "Wire bytes sent to each datacenter (after mux and zstd)");
        Meter.CreateObservableCounter("georelay.dc.entry.sent", () => PerDc(d => d.EntryBytesSent), "By", "Entry bytes carried to each datacenter (before mux and zstd)");
        Meter.CreateObservableGauge("georelay.dc.compression.ratio", () => PerDc(d => d.CompressionRatio), description: "Entry bytes per wire byte sent to each datacenter");
        Meter.CreateObservableGauge("georelay.dc.acked", () => PerDc(d => (long)d.Acked), "{entry}", "Highest index durable on every reachable member of each datacenter");
        Meter.CreateObservableGauge("georelay.dc.lag", () => PerDc(d => d.Lag), "{entry}", "Entries appended but not acked by each datacenter");
        Meter.CreateObservableGauge("georelay.dc.inflight", () => PerDc(d => d.InflightBytes), "By", "Un-acked bytes in flight to each datacenter (the window)");
        Meter.CreateObservableCounter("georelay.dc.failovers", () => PerDc(d => d.Failovers), "{failover}", "Times each datacenter's relay was abandoned");
        Meter.CreateObservableCounter("georelay.dc.direct.time", () => PerDc(d => d.DirectSeconds), "s", "Time each datacenter with relays spent on direct sends");
        Meter.CreateObservableGauge("georelay.dc.direct", () => PerDc(d => d.Route == "direct" ? 1L : 0L), description: "1 while the leader sends to the datacenter's members directly");
        var latency = Meter.CreateHistogram<double>("georelay.dc.ack.latency", "s",
            "From an entry being durable on the leader to the datacenter acking it (sampled once per millisecond)",
            tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        var tags = new Dictionary<string, KeyValuePair<string, object?>>();
        // A voter that leads has no ack latency tracker (yet): its histogram stays empty.
        if (_node.AckLatency is { } tracker)
            tracker.Recorded = (dc, seconds) =>
            {
                if (!tags.TryGetValue(dc, out var tag)) tags[dc] = tag = new("peer_dc", dc);
                latency.Record(seconds, tag);
            };
    }

    private void AddLearners()
    {
        Meter.CreateObservableGauge("georelay.learners.connected", () => (long)(Snapshot().Learners?.Connected ?? 0), "{learner}", "Learner connections");
        Meter.CreateObservableCounter("georelay.learners.slow_consumer_cuts", () => Snapshot().Learners?.SlowConsumerCuts ?? 0, "{learner}", "Learners disconnected with SlowConsumer");
        Meter.CreateObservableCounter("georelay.learners.frames", () => Snapshot().Learners?.FramesSent ?? 0, "{frame}", "Deliver frames queued on learner connections");
    }

    /// <summary>The next read takes a fresh snapshot (a scrape calls this first, so it never sees an older one).</summary>
    public void Invalidate()
    {
        lock (_gate) _snapshot = null;
    }

    /// <summary>The node's status, refreshed when older than 100 ms (one engine-lock visit per scrape).</summary>
    public NodeStatusReport Snapshot()
    {
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            if (_snapshot is null || Stopwatch.GetElapsedTime(_snapshotAt, now) > SnapshotAge)
            {
                _snapshot = _node.Status();
                _snapshotAt = now;
            }
            return _snapshot;
        }
    }

    private List<Measurement<T>> PerDc<T>(Func<DatacenterReport, T> value) where T : struct
    {
        var list = new List<Measurement<T>>();
        foreach (var d in Snapshot().Datacenters) list.Add(new(value(d), new KeyValuePair<string, object?>("peer_dc", d.Name)));
        return list;
    }

    private List<Measurement<long>> PerPeer(Func<PeerReport, long> value)
    {
        var list = new List<Measurement<long>>();
        foreach (var p in Snapshot().Peers)
            list.Add(new(value(p), new("peer", p.Id), new("peer_role", p.Role), new("peer_dc", p.Datacenter)));
        return list;
    }

    private List<Measurement<long>> PerRefusal()
    {
        var list = new List<Measurement<long>>();
        foreach (var (reason, count) in Snapshot().Refusals ?? new Dictionary<string, long>())
            list.Add(new(count, new KeyValuePair<string, object?>("reason", reason)));
        return list;
    }

    private List<Measurement<long>> PerPeerState()
    {
        var list = new List<Measurement<long>>();
        foreach (var p in Snapshot().Peers)
        {
            long up = p.State is "active" or "up" or "via-relay" or "direct" or "connected" ? 1 : 0;
            list.Add(new(up, new("peer", p.Id), new("peer_role", p.Role), new("peer_dc", p.Datacenter), new("state", p.State)));
        }
        return list;
    }

    public void Dispose()
    {
        if (_node.AckLatency is { } tracker) tracker.Recorded = null;
        Meter.Dispose();
    }
}
