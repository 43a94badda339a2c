using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Admin.Console;

/// <summary>Each node's <c>/status</c> by id, or why there is none.</summary>
public delegate Task<Dictionary<string, (NodeStatusReport? Report, string? Error)>> ClusterStatusSource(CancellationToken ct);

/// <summary>
/// The cluster view behind a node's console: every node's status, asked at most once a second and only while someone
/// watches (so an idle console costs the cluster nothing), turned into a <see cref="ConsoleSnapshot"/>; what changed
/// between two views is kept as events in a ring of the last <see cref="MaxEvents"/>.
/// </summary>
public sealed class ClusterConsole(TopologyConfig topology, string nodeId, ClusterStatusSource ask, string? note, TimeProvider? time = null) : IDisposable
{
    public const int MaxEvents = 50;
    private static readonly TimeSpan Fresh = TimeSpan.FromMilliseconds(900);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly Queue<ConsoleEvent> _events = new();
    private ConsoleSnapshot? _latest;

    /// <summary>
    /// The console of <paramref name="node"/>: it asks itself in-process and its peers over their admin endpoints, with a
    /// short-lived admin token it mints when the topology has <c>auth</c> (a node holds the signing keys). A node with TLS
    /// but no token keys cannot be let in by its peers, so its console shows its own status only and says so.
    /// </summary>
    public static ClusterConsole ForNode(TopologyConfig topology, AdminNode node, TimeSpan peerTimeout)
    {
        var security = node.Host.Security;
        if (security.Tokens is null && security.Tls is not null)
            return new ClusterConsole(topology, node.NodeId, _ => Task.FromResult(Own(node)),
                $"only {node.NodeId}'s own status: this node has TLS but no token keys (auth), so it cannot authenticate to its peers' admin endpoints");
        var tokens = new PeerToken(security.Tokens, node.NodeId);
        return new ClusterConsole(topology, node.NodeId, async ct =>
        {
            var answers = await ClusterQuery.AskAllAsync(topology, tokens.Get(), security.Tls, peerTimeout, ct, skip: node.NodeId).ConfigureAwait(false);
            answers[node.NodeId] = (node.Status(), null);
            return answers;
        }, note: null);
    }

    private static Dictionary<string, (NodeStatusReport?, string?)> Own(AdminNode node) => new() { [node.NodeId] = (node.Status(), null) };

    /// <summary>The latest view, asking the cluster again when it is older than about a second (one ask for any number of watchers).</summary>
    public async Task<ConsoleSnapshot> SnapshotAsync(CancellationToken ct)
    {
        await _refreshing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            if (_latest is { } latest && now - latest.At < Fresh) return latest;
            var answers = await ask(ct).ConfigureAwait(false);
            var next = Build(topology, nodeId, note, answers, _time.GetUtcNow(), []);
            if (_latest is { } previous)
                foreach (var e in Changes(previous, next))
                {
                    _events.Enqueue(e);
                    if (_events.Count > MaxEvents) _events.Dequeue();
                }
            _latest = next with { Events = [.. _events] };
            return _latest;
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>The view from what each node answered: the leader's figures per datacenter, every node's state and learners.</summary>
    public static ConsoleSnapshot Build(TopologyConfig topology, string nodeId, string? note,
        IReadOnlyDictionary<string, (NodeStatusReport? Report, string? Error)> answers, DateTimeOffset at, IReadOnlyList<ConsoleEvent> events)
    {
        NodeStatusReport? leader = null;
        foreach (var (report, _) in answers.Values)
            if (report is { Role: "leader", State: "running" } && (leader is null || report.Epoch > leader.Epoch)) leader = report;
        var nodes = new List<ConsoleNode>();
        var learnersByDc = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var dc in topology.Datacenters)
        {
            var ids = new List<string>();
            if (topology.Leader.Datacenter == dc.Name) ids.Add(topology.LeaderId);
            ids.AddRange(dc.Relays);
            ids.AddRange(dc.Members);
            int learners = 0;
            foreach (var id in ids)
            {
                var config = topology.GetNode(id);
                string role = config.Role switch { NodeRole.Leader => "leader", NodeRole.Relay => "relay", _ => "member" };
                ConsoleNode node;
                if (!answers.TryGetValue(id, out var answer)) node = new(id, dc.Name, role, "not asked", "no admin address", null);
                else if (answer.Report is not { } r) node = new(id, dc.Name, role, "down", answer.Error, null);
                else node = new(id, dc.Name, r.Role, r.State, r.Feed, r.Learners?.Connected);
                learners += node.Learners ?? 0;
                nodes.Add(node);
            }
            learnersByDc[dc.Name] = learners;
        }
        var datacenters = new List<ConsoleDatacenter>();
        foreach (var dc in topology.Datacenters)
        {
            int learners = learnersByDc[dc.Name];
            DatacenterReport? d = null;
            if (leader is not null)
                foreach (var candidate in leader.Datacenters)
                    if (candidate.Name == dc.Name) d = candidate;
            datacenters.Add(d is null
                ? new ConsoleDatacenter(dc.Name, null, dc.Relays, dc.Members.Count, learners, null, null, null, null, null, null, null, null, null)
                : new ConsoleDatacenter(dc.Name, d.Route, dc.Relays, dc.Members.Count, learners, d.Acked, d.Lag, d.AckP50Seconds, d.AckP99Seconds,
                    d.BytesSent, d.EntryBytesSent, d.CompressionRatio, d.EntryBytesSent * (dc.Members.Count + learners), d.Failovers));
        }
        return new ConsoleSnapshot(topology.Cluster, at, nodeId, note, leader?.Node, leader?.Epoch ?? 0, leader?.Indexes.Commit ?? 0,
            leader?.Indexes.Last ?? 0, datacenters, nodes, events);
    }

    /// <summary>What changed from <paramref name="before"/> to <paramref name="after"/>: leader or term, routes, nodes down or back.</summary>
    public static List<ConsoleEvent> Changes(ConsoleSnapshot before, ConsoleSnapshot after)
    {
        var events = new List<ConsoleEvent>();
        var at = after.At;
        if (after.Leader != before.Leader || after.Term != before.Term)
            events.Add(new(at, "leader", after.Leader is null
                ? $"no leader answers (was {before.Leader ?? "none"}, term {before.Term})"
                : $"{after.Leader} leads term {after.Term}" + (before.Leader is null ? "" : $" (was {before.Leader}, term {before.Term})")));
        foreach (var dc in after.Datacenters)
        {
            var old = Find(before.Datacenters, dc.Name);
            // An unknown route (no leader answering) is the leader event's news, not a route change.
            if (old?.Route is { } was && dc.Route is { } now && was != now)
                events.Add(new(at, "route", $"{dc.Name}: route {was} -> {now}"));
        }
        foreach (var node in after.Nodes)
        {
            var old = FindNode(before.Nodes, node.Id);
            if (old is null) continue;
            if (old.State != "down" && node.State == "down") events.Add(new(at, "down", $"{node.Id} ({node.Datacenter}) went down: {node.Detail}"));
            else if (old.State == "down" && node.State != "down" && node.State != "not asked") events.Add(new(at, "up", $"{node.Id} ({node.Datacenter}) is back: {node.State}"));
        }
        return events;
    }

    private static ConsoleDatacenter? Find(IReadOnlyList<ConsoleDatacenter> list, string name)
    {
        foreach (var d in list) if (d.Name == name) return d;
        return null;
    }

    private static ConsoleNode? FindNode(IReadOnlyList<ConsoleNode> list, string id)
    {
        foreach (var n in list) if (n.Id == id) return n;
        return null;
    }

    public void Dispose() => _refreshing.Dispose();

    /// <summary>An admin token for asking peers, minted with the node's own signing key and renewed well before it expires.</summary>
    private sealed class PeerToken(Security.TokenVerifier? keys, string nodeId)
    {
        private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
        private string? _token;
        private DateTimeOffset _renewAt;

        public string? Get()
        {
            if (keys is null) return null;
            var now = DateTimeOffset.UtcNow;
            if (_token is null || now >= _renewAt)
            {
                var claims = new TokenClaims("console@" + nodeId, now + Lifetime, TokenScopes.Admin, [Array.Empty<byte>()]) { Id = TokenClaims.NewId() };
                _token = keys.Current.Authority.Mint(claims);
                _renewAt = now + Lifetime / 2;
            }
            return _token;
        }
    }
}
