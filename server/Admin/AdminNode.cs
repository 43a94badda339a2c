using GeoRelay.Leader;
using GeoRelay.Server.Hosting;
using GeoRelay.Relay;
using GeoRelay.Relay.Learners;
using GeoRelay.Topology;
using GeoRelay.Engines;

namespace GeoRelay.Server.Admin;

/// <summary>What the admin endpoint and the metrics read from a running node.</summary>
public abstract class AdminNode
{
    public abstract string NodeId { get; }
    public abstract NodeRole Role { get; }
    public abstract string Datacenter { get; }

    /// <summary>running, draining or deposed; anything but running answers /healthz with 503.</summary>
    public abstract string State { get; }

    /// <summary>A consistent snapshot, taken under the engine lock (the keyed state's figures under its own).</summary>
    public NodeStatusReport Status() => EngineStatus() with { Keyed = KeyedStateReport.Of(Log) };

    private protected abstract NodeStatusReport EngineStatus();

    /// <summary>The node's log.</summary>
    private protected abstract GeoRelay.Storage.IEntryLog Log { get; }

    /// <summary>The leader's ack latency samples; null on other roles.</summary>
    public virtual AckLatencyTracker? AckLatency => null;

    /// <summary>The host the node's engine runs on: its security, blacklist and connections.</summary>
    public abstract EngineHost Host { get; }

    /// <summary>
    /// Hands leadership to <paramref name="to"/> (<c>POST /transfer-leader/{to}</c>): the answer, or an error with its
    /// HTTP status. Only voters of a cluster with elections can.
    /// </summary>
    public virtual (TransferStarted? Started, int Status, string Code, string Message) TransferLeadership(string to) =>
        (null, 409, "no-elections", $"{NodeId} is a {RoleName(Role)} of a cluster without elections; leadership moves only with `elections: true`");

    /// <summary>The configuration this node holds (<c>GET /config</c>), or an error with its HTTP status: only voters of a cluster with elections hold one.</summary>
    public virtual (ConfigReport? Report, int Status, AdminError? Error) Configuration() => (null, 409, NoElections());

    /// <summary>
    /// Leader: commits <paramref name="next"/> as the cluster's membership (<c>POST /config/propose</c>); the configuration
    /// entry's index, or an error (421 with the leader from a voter that does not lead, 503 while the leader cannot take one yet (a change or transfer under way, its term not yet committed), 409 when it refuses this one).
    /// </summary>
    public virtual (ConfigProposed? Proposed, int Status, AdminError? Error) ProposeMembership(Membership next) => (null, 409, NoElections());

    /// <summary>Leader: where it sees <paramref name="node"/> (<c>GET /config/progress/{node}</c>); 421 from a voter that does not lead.</summary>
    public virtual (ConfigProgress? Progress, int Status, AdminError? Error) ProgressOf(string node) => (null, 409, NoElections());

    private AdminError NoElections() =>
        new("no-elections", $"{NodeId} is a {RoleName(Role)} of a cluster without elections; its membership changes only with `elections: true`");

    /// <summary>Each learner connection, taken under the engine lock; null on the leader, which serves none.</summary>
    public virtual IReadOnlyList<LearnerConnectionReport>? Learners() => null;

    /// <summary>Refused and cut connections by reason, every reason listed (0 included) so a metric exists before its first count.</summary>
    internal Dictionary<string, long> Refusals()
    {
        var counts = new Dictionary<string, long>();
        foreach (var (kind, count) in Host.Refusals.Snapshot()) counts[kind.ToString()] = count;
        return counts;
    }

    public static AdminNode For(IAsyncDisposable node) => node switch
    {
        LeaderNode leader => new LeaderAdmin(leader),
        RelayNode relay => new RelayAdmin(relay),
        MemberNode member => new MemberAdmin(member),
        VoterNode voter => new VoterAdmin(voter),
        _ => throw new ArgumentException($"no admin view for {node.GetType().Name}", nameof(node)),
    };

    private protected static string RoleName(NodeRole role) => role switch
    {
        NodeRole.Leader => "leader",
        NodeRole.Relay => "relay",
        _ => "member",
    };

    private protected static Dictionary<string, PeerTraffic> TrafficByPeer(EngineHost host)
    {
        var map = new Dictionary<string, PeerTraffic>();
        foreach (var t in host.Traffic()) map[t.Peer] = t;
        return map;
    }

    private protected static PeerReport Peer(string id, string role, string dc, string state, Dictionary<string, PeerTraffic> traffic, ulong? index, long? lag)
    {
        traffic.TryGetValue(id, out var t);
        return new PeerReport(id, role, dc, state, t.Connections, t.BytesSent, t.BytesReceived, index, lag);
    }

    /// <summary>Learners and publishers, summed, when any came by.</summary>
    private protected static void AddClients(List<PeerReport> peers, Dictionary<string, PeerTraffic> traffic, string dc)
    {
        foreach (var key in (ReadOnlySpan<string>)["learners", "publishers"])
            if (traffic.TryGetValue(key, out var t))
                peers.Add(new PeerReport(key, key, dc, t.Connections > 0 ? "connected" : "idle", t.Connections, t.BytesSent, t.BytesReceived, null, null));
    }

    private protected static long Lag(ulong ahead, ulong behind) => ahead > behind ? (long)(ahead - behind) : 0;
}

/// <summary>What relays and members share: a node entry in the topology and a learner port.</summary>
internal abstract class ReplicaAdmin(TopologyConfig topology, string nodeId) : AdminNode
{
    private protected readonly TopologyConfig Topology = topology;
    private readonly NodeConfig _self = topology.GetNode(nodeId);

    public override string NodeId => _self.Id;
    public override string Datacenter => _self.Datacenter;
    public override string State => "running";

    private protected abstract LearnerFanout Fanout { get; }

    public override IReadOnlyList<LearnerConnectionReport> Learners() => Host.Invoke(_ => Connections(Fanout));

    /// <summary>Call under the engine lock.</summary>
    internal LearnerReport LearnersOf(LearnerFanout learners) =>
        new(learners.LearnerPortConnections, learners.SlowConsumerCuts, learners.FramesSent, Connections(learners), LearnerCapacity.MaxLearners(Topology, NodeId));

    private protected List<LearnerConnectionReport> Connections(LearnerFanout learners)
    {
        var status = learners.Status();
        var list = new List<LearnerConnectionReport>(status.Count);
        foreach (var l in status)
            list.Add(new LearnerConnectionReport(l.Connection, l.NodeId, l.Remote ?? Host.RemoteOf(l.Connection)?.ToString(), l.KeyPrefix,
                StateName(l.State), l.From, l.ReceivedIndex, l.DeliveredIndex, l.QueuedBytes));
        list.Sort((a, b) => a.Connection.CompareTo(b.Connection));
        return list;
    }

    private static string StateName(LearnerState state) => state switch
    {
        LearnerState.AwaitingSubscribe => "awaiting-subscribe",
        LearnerState.CatchingUp => "catching-up",
        LearnerState.Live => "live",
        LearnerState.Refilling => "refilling",
        _ => "closing",
    };
}

internal sealed class LeaderAdmin(LeaderNode node) : AdminNode
{
    private readonly TopologyConfig _topology = node.Topology;

    public override string NodeId => _topology.LeaderId;
    public override NodeRole Role => NodeRole.Leader;
    public override string Datacenter => _topology.Leader.Datacenter;
    public override string State => node.Engine.Deposed ? "deposed" : node.Draining ? "draining" : "running";
    public override AckLatencyTracker? AckLatency => node.AckLatency;
    public override EngineHost Host => node.Host;

    private protected override NodeStatusReport EngineStatus() => StatusOf(this, node.Host, node.Engine);
    private protected override GeoRelay.Storage.IEntryLog Log => node.Log;

    /// <summary>A leader engine's status (the leader daemon's, or a voter's while it leads).</summary>
    internal static NodeStatusReport StatusOf(AdminNode view, EngineHost host, LeaderEngine engine)
    {
        var traffic = TrafficByPeer(host);
        var (status, peerStatus, last, durable, commit, oldest) = host.Invoke(_ =>
            (engine.Status(), engine.PeerStatus(), engine.LastIndex, engine.DurableIndex, engine.CommitIndex, engine.OldestIndex));
        var datacenters = new List<DatacenterReport>(status.Count);
        var peers = new List<PeerReport>();
        long batches = 0;
        for (int i = 0; i < status.Count; i++)
        {
            var s = status[i];
            batches += s.Batches;
            var ack = view.AckLatency?.Recent(s.Name);
            datacenters.Add(new DatacenterReport(s.Name, s.Route, s.Connected, s.Delivered, Lag(last, s.Delivered), s.Batches,
                s.BytesSent, s.EntryBytesSent, s.BytesSent > 0 ? (double)s.EntryBytesSent / s.BytesSent : 0,
                s.Failovers, s.InflightBytes, s.DirectTime.TotalSeconds, ack?.P50, ack?.P99));
            var (_, relays, members) = peerStatus[i];
            foreach (var p in relays)
                peers.Add(Peer(p.Id, "relay", s.Name, RelayStateName(p.State), traffic, s.Delivered, Lag(last, s.Delivered)));
            foreach (var m in members)
                peers.Add(Peer(m.Id, "member", s.Name, MemberReachName(m.Reach), traffic, m.Durable, Lag(last, m.Durable)));
        }
        AddClients(peers, traffic, view.Datacenter);
        return new NodeStatusReport(view.NodeId, "leader", view.Datacenter, engine.Epoch, view.State,
            new StatusIndexes(last, durable, commit, 0, oldest), Lag(last, commit), batches, peers, datacenters, null, view.Refusals(), Feed: "leader");
    }

    private static string RelayStateName(RelayState state) => state switch
    {
        RelayState.Active => "active",
        RelayState.Connecting => "connecting",
        RelayState.FailedOver => "failed-over",
        _ => "standby",
    };

    private static string MemberReachName(MemberReach reach) => reach switch
    {
        MemberReach.ViaRelay => "via-relay",
        MemberReach.Direct => "direct",
        _ => "down",
    };
}

internal sealed class RelayAdmin(RelayNode node) : ReplicaAdmin(node.Topology, node.NodeId)
{
    private protected override GeoRelay.Storage.IEntryLog Log => node.EntryLog;
    public override NodeRole Role => NodeRole.Relay;
    public override EngineHost Host => node.Host;
    private protected override LearnerFanout Fanout => node.Engine.Learners;

    private protected override NodeStatusReport EngineStatus()
    {
        var traffic = TrafficByPeer(node.Host);
        var engine = node.Engine;
        var (members, upstream, epoch, retained, batches, learners, feed, oldest) = node.Host.Invoke(_ =>
            (engine.MemberStatus(), engine.UpstreamConnected, engine.HighestEpoch, engine.RetainedIndex, engine.BatchesReceived,
             LearnersOf(engine.Learners), engine.FeedSource, engine.FirstRetainedIndex));
        var peers = new List<PeerReport>
        {
            Peer(Topology.LeaderId, "leader", Topology.Leader.Datacenter, upstream ? "active" : "down", traffic, null, null),
        };
        ulong slowest = retained;
        foreach (var (id, up, durable) in members)
        {
            if (up) slowest = Math.Min(slowest, durable);
            peers.Add(Peer(id, "member", Datacenter, up ? "up" : "down", traffic, durable, Lag(retained, durable)));
        }
        AddClients(peers, traffic, Datacenter);
        return new NodeStatusReport(NodeId, "relay", Datacenter, epoch, State,
            new StatusIndexes(retained, retained, 0, retained, oldest), Lag(retained, slowest), batches, peers, [], learners, Refusals(), Feed: feed);
    }
}

internal sealed class MemberAdmin(MemberNode node) : ReplicaAdmin(node.Topology, node.NodeId)
{
    private protected override GeoRelay.Storage.IEntryLog Log => node.EntryLog;
    public override NodeRole Role => NodeRole.Member;
    public override EngineHost Host => node.Host;
    private protected override LearnerFanout Fanout => node.Engine.Learners;

    private protected override NodeStatusReport EngineStatus() => StatusOf(this, node.Host, node.Engine, Topology);

    /// <summary>A member engine's status (the member daemon's, or a voter's while it follows).</summary>
    internal static NodeStatusReport StatusOf(ReplicaAdmin view, EngineHost host, MemberEngine engine, TopologyConfig topology)
    {
        var traffic = TrafficByPeer(host);
        var (last, durable, commit, epoch, learners, oldest) = host.Invoke(_ =>
            (engine.LastIndex, engine.DurableIndex, engine.CommitIndex, engine.HighestEpoch,
             view.LearnersOf(engine.Learners), engine.OldestIndex));
        var peers = new List<PeerReport>();
        var feeds = new List<string>();
        void Upstream(string id, string role, string dc)
        {
            traffic.TryGetValue(id, out var t);
            peers.Add(Peer(id, role, dc, t.Connections > 0 ? "connected" : "idle", traffic, null, null));
            if (t.Connections > 0) feeds.Add(role + " " + id);
        }
        Upstream(topology.LeaderId, "leader", topology.Leader.Datacenter);
        foreach (var p in topology.GetDatacenter(view.Datacenter).Relays) Upstream(p, "relay", view.Datacenter);
        AddClients(peers, traffic, view.Datacenter);
        return new NodeStatusReport(view.NodeId, "member", view.Datacenter, epoch, view.State,
            new StatusIndexes(last, durable, commit, 0, oldest), Lag(commit, durable), 0, peers, [], learners, view.Refusals(),
            Feed: feeds.Count > 0 ? string.Join(", ", feeds) : null);
    }
}

/// <summary>A voter: the leader's view while it leads, the member's while it follows, and the election's state either way.</summary>
internal sealed partial class VoterAdmin(VoterNode node) : ReplicaAdmin(node.Topology, node.NodeId)
{
    private protected override GeoRelay.Storage.IEntryLog Log => node.Log;
    public override NodeRole Role => node.Engine.Leader is not null ? NodeRole.Leader : NodeRole.Member;
    public override EngineHost Host => node.Host;
    public override string State => node.Draining ? "draining" : "running";
    private protected override LearnerFanout Fanout => node.Engine.Member?.Learners ?? EmptyFanout;

    public override IReadOnlyList<LearnerConnectionReport> Learners() =>
        node.Host.Invoke(_ => node.Engine.Member is null ? (IReadOnlyList<LearnerConnectionReport>)[] : Connections(node.Engine.Member.Learners));

    private protected override NodeStatusReport EngineStatus()
    {
        var (leader, member) = node.Host.Invoke(_ => (node.Engine.Leader, node.Engine.Member));
        var report = leader is not null ? LeaderAdmin.StatusOf(this, node.Host, leader) : MemberAdmin.StatusOf(this, node.Host, member!, Topology);
        var (term, role, known, votedFor, changes) = node.ElectionState();
        return report with { Election = new ElectionReport(term, role.ToString().ToLowerInvariant(), known, votedFor, changes) };
    }

    public override (TransferStarted? Started, int Status, string Code, string Message) TransferLeadership(string to)
    {
        // The configuration the log holds, not the file: a membership change may have added or promoted the target since.
        var config = node.Host.Invoke(_ => node.Engine.Configuration);
        if (!config.IsVoter(to)) return (null, 400, "bad-request", $"'{to}' is not a voter (the leader or a voting member) of cluster '{config.Cluster}'");
        if (!config.CanLead(to)) return (null, 400, "bad-request", $"'{to}' is not among the leader-candidates");
        var (term, role, leader, _, _) = node.ElectionState();
        if (role != GeoRelay.Engines.Consensus.RaftRole.Leader)
            return (null, 409, "not-leader", leader is null
                ? $"{NodeId} does not lead, and no leader is known in term {term}; ask again shortly"
                : $"{NodeId} does not lead; {leader} leads term {term}: ask its admin endpoint");
        if (to == NodeId) return (null, 409, "already-leader", $"{NodeId} already leads term {term}");
        return node.TransferLeadership(to)
            ? (new TransferStarted(NodeId, to, term), 202, "", "")
            : (null, 409, "transfer-refused", $"{NodeId} could not start a transfer to {to} (see its log)");
    }

    private static LearnerFanout EmptyFanout => throw new InvalidOperationException("a leading voter serves no learners");
}
