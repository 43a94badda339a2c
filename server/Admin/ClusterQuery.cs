using System.Text.Json;
using System.Text.Json.Serialization;
using GeoRelay.Relay.Learners;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Admin;

/// <summary>
/// Every node of a topology that has an admin endpoint, asked for its <c>/status</c> at once, and learners per node and
/// datacenter from the answers: what <c>georelay status --config FILE</c> prints and a node's console shows. A node that
/// does not answer is down, with the reason.
/// </summary>
public static class ClusterQuery
{
    /// <summary>Asks every node with an <c>admin</c> address for its <c>/status</c>, all at once, each within <paramref name="timeout"/>.</summary>
    public static async Task<ClusterStatusReport> QueryAsync(TopologyConfig topology, string? token, NodeTls? tls, TimeSpan timeout, CancellationToken ct) =>
        Build(topology, await AskAllAsync(topology, token, tls, timeout, ct).ConfigureAwait(false));

    /// <summary>
    /// Every node with an <c>admin</c> address (but <paramref name="skip"/>) asked for its <c>/status</c> at once, each within
    /// <paramref name="timeout"/>: by id, its report, or why there is none.
    /// </summary>
    public static async Task<Dictionary<string, (NodeStatusReport? Report, string? Error)>> AskAllAsync(TopologyConfig topology, string? token,
        NodeTls? tls, TimeSpan timeout, CancellationToken ct, string? skip = null)
    {
        var asked = new Dictionary<string, Task<AdminAnswer>>(StringComparer.Ordinal);
        foreach (var node in topology.Nodes.Values)
            if (node.Admin is { } admin && node.Id != skip)
                asked[node.Id] = AdminRequest.SendAsync(admin, HttpMethod.Get, "/status", null, token, tls, timeout, ct);
        await Task.WhenAll(asked.Values).ConfigureAwait(false);
        var answers = new Dictionary<string, (NodeStatusReport? Report, string? Error)>(StringComparer.Ordinal);
        foreach (var (id, task) in asked)
        {
            var answer = task.Result;
            answers[id] = answer.Body is null ? (null, answer.Error) : Read(answer.Body);
        }
        return answers;
    }

    private static (NodeStatusReport?, string?) Read(string body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, AdminJson.Default.NodeStatusReport) is { } report ? (report, null) : (null, "empty /status");
        }
        catch (JsonException e)
        {
            return (null, "/status is not a node status: " + e.Message);
        }
    }

    /// <summary>
    /// The table from what each node answered (by id: its report, or why there is none); nodes without an admin address
    /// are listed as not asked. Datacenters and nodes in file order: the leader first in its datacenter, then relays, then members.
    /// </summary>
    public static ClusterStatusReport Build(TopologyConfig topology, IReadOnlyDictionary<string, (NodeStatusReport? Report, string? Error)> answers)
    {
        var datacenters = new List<DatacenterLearners>();
        int down = 0;
        foreach (var dc in topology.Datacenters)
        {
            var ids = new List<string>();
            if (topology.Leader.Datacenter == dc.Name) ids.Add(topology.LeaderId);
            ids.AddRange(dc.Relays);
            ids.AddRange(dc.Members);
            var nodes = new List<NodeLearners>(ids.Count);
            int learners = 0;
            long max = 0;
            bool limited = true, serving = false;
            foreach (string id in ids)
            {
                var config = topology.GetNode(id);
                bool serves = config.Learners is not null;
                int? limit = serves ? LearnerCapacity.MaxLearners(topology, id) : null;
                NodeLearners row;
                if (!answers.TryGetValue(id, out var answer))
                {
                    row = new NodeLearners(id, RoleName(config.Role), "not asked (no admin address)", null, null, limit, serves);
                }
                else if (answer.Report is not { } r)
                {
                    down++;
                    row = new NodeLearners(id, RoleName(config.Role), "down: " + answer.Error, null, null, limit, serves);
                }
                else
                {
                    row = new NodeLearners(id, r.Role, r.State, Feed(r), serves ? r.Learners?.Connected : null,
                        serves && r.Learners is { } l ? l.Max : limit, serves);
                }
                nodes.Add(row);
                if (!serves) continue; // no learner port: no part of the totals
                serving = true;
                learners += row.Learners ?? 0;
                if (row.MaxLearners is { } m) max += m;
                else limited = false;
            }
            datacenters.Add(new DatacenterLearners(dc.Name, learners, limited ? max : null, serving, nodes));
        }
        return new ClusterStatusReport(topology.Cluster, answers.Count, down, datacenters);
    }

    /// <summary>A relay's feed; a voter's part in the election with its upstreams; a member's upstreams; "leader" on the leader.</summary>
    private static string? Feed(NodeStatusReport r)
    {
        if (r.Election is { } e && r.Role != "leader")
            return r.Feed is null ? e.Role : $"{e.Role}, {r.Feed}";
        return r.Feed;
    }

    private static string RoleName(NodeRole role) => role switch
    {
        NodeRole.Leader => "leader",
        NodeRole.Relay => "relay",
        _ => "member",
    };

    public static string Json(ClusterStatusReport report) => JsonSerializer.Serialize(report, ClusterStatusJson.Default.ClusterStatusReport);
}

/// <summary>What <c>georelay status --config FILE --json</c> prints.</summary>
/// <param name="Asked">Nodes asked (those with an admin address).</param>
/// <param name="Down">Nodes asked that did not answer.</param>
public sealed record ClusterStatusReport(string Cluster, int Asked, int Down, IReadOnlyList<DatacenterLearners> Datacenters);

/// <param name="Learners">Learners connected to the datacenter's nodes that answered.</param>
/// <param name="MaxLearners">The sum of the <c>max-learners</c> of its nodes with a learner port; null when one of them has no limit.</param>
/// <param name="ServesLearners">Some node of the datacenter has a learner port.</param>
public sealed record DatacenterLearners(string Name, int Learners, long? MaxLearners, bool ServesLearners, IReadOnlyList<NodeLearners> Nodes);

/// <param name="State">running, draining, deposed; <c>down: why</c> for a node that did not answer; <c>not asked</c> without an admin address.</param>
/// <param name="Feed">Where its entries come from now (see <see cref="NodeStatusReport.Feed"/>); a voter's election role first.</param>
/// <param name="Learners">Learners connected; null when unknown (down, not asked) or when the node serves none.</param>
/// <param name="MaxLearners">Its <c>max-learners</c>; null for no limit, or when it serves no learners.</param>
/// <param name="ServesLearners">It has a learner port (a <c>learners</c> address).</param>
public sealed record NodeLearners(string Node, string Role, string State, string? Feed, int? Learners, int? MaxLearners, bool ServesLearners);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(ClusterStatusReport))]
internal sealed partial class ClusterStatusJson : JsonSerializerContext;
