using System.Globalization;
using System.Text;

namespace GeoRelay.Topology;

public sealed partial class Membership
{
    /// <summary>
    /// The <c>leader</c>, <c>leader-candidates</c> (when set), <c>datacenters</c> and <c>nodes</c> sections of a topology
    /// file, laid out as the samples are, for an operator to paste over those sections of their file.
    /// </summary>
    public string ToYaml()
    {
        var text = new StringBuilder();
        text.Append("leader: ").Append(PreferredLeader).Append('\n');
        if (LeaderCandidates is not null)
        {
            text.Append("leader-candidates: [").AppendJoin(", ", LeaderCandidates).Append("]\n");
        }
        text.Append("\ndatacenters:\n");
        foreach (var dc in Datacenters)
        {
            text.Append("  ").Append(dc.Name).Append(":\n");
            text.Append("    relays: [").AppendJoin(", ", dc.Relays).Append("]\n");
            text.Append("    members: [").AppendJoin(", ", dc.Members).Append("]\n");
        }

        text.Append("\nnodes:\n");
        var groups = NodesByDatacenter();
        int idWidth = 0, dcWidth = 0;
        foreach (var node in _nodes.Values)
        {
            idWidth = Math.Max(idWidth, node.Id.Length);
            dcWidth = Math.Max(dcWidth, node.Datacenter.Length);
        }
        for (int g = 0; g < groups.Count; g++)
        {
            if (g > 0) text.Append('\n');
            foreach (var node in groups[g])
            {
                AppendNode(text, node, idWidth, dcWidth);
            }
        }
        return text.ToString();
    }

    /// <summary>Node ids in the order <see cref="ToYaml"/> writes them: per datacenter the leader, relays, members; unplaced nodes last.</summary>
    internal IEnumerable<string> NodeIdsInOrder()
    {
        foreach (var group in NodesByDatacenter())
        {
            foreach (var node in group)
            {
                yield return node.Id;
            }
        }
    }

    /// <summary>Nodes grouped as the samples group them: per datacenter the leader, relays, then members; unplaced nodes last.</summary>
    private List<List<MembershipNode>> NodesByDatacenter()
    {
        var groups = new List<List<MembershipNode>>();
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dc in Datacenters)
        {
            var group = new List<MembershipNode>();
            if (_nodes.TryGetValue(PreferredLeader, out var leader) && leader.Datacenter == dc.Name) Add(group, PreferredLeader);
            foreach (string id in dc.Relays) Add(group, id);
            foreach (string id in dc.Members) Add(group, id);
            if (group.Count > 0) groups.Add(group);
        }
        var rest = new List<MembershipNode>();
        foreach (string id in _nodes.Keys.Order(StringComparer.Ordinal)) Add(rest, id);
        if (rest.Count > 0) groups.Add(rest);
        return groups;

        void Add(List<MembershipNode> group, string id)
        {
            if (_nodes.TryGetValue(id, out var node) && written.Add(id)) group.Add(node);
        }
    }

    private static void AppendNode(StringBuilder text, MembershipNode node, int idWidth, int dcWidth)
    {
        text.Append("  ").Append(node.Id).Append(':').Append(' ', idWidth - node.Id.Length + 1)
            .Append("{ dc: ").Append(node.Datacenter).Append(',').Append(' ', dcWidth - node.Datacenter.Length + 1);
        var parts = new List<string>();
        foreach (var (key, endpoint) in node.Endpoints())
        {
            // Quoted when bracketed: a flow map would read [::1]:7000 as a list.
            if (endpoint is { } e) parts.Add(key + ": " + (e.IsIPv6 ? $"\"{e}\"" : e.ToString()));
        }
        if (node.FeedFrom.Count > 0) parts.Add("feed-from: [" + string.Join(", ", node.FeedFrom) + "]");
        if (node.MaxLearners is { } max) parts.Add("max-learners: " + max.ToString(CultureInfo.InvariantCulture));
        if (!node.Voter) parts.Add("voter: false");
        text.AppendJoin(", ", parts).Append(parts.Count > 0 ? " }\n" : "}\n");
    }
}
