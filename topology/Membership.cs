using GeoRelay.Topology.Internal;

namespace GeoRelay.Topology;

/// <summary>
/// The part of a topology that can change while the cluster runs, kept in the replicated log as configuration entries:
/// the preferred leader, the leader candidates, the datacenters with their relays and members, and every node's
/// datacenter, vote and addresses. The cluster name, quorum, defaults, tls, auth and insecure stay the file's.
/// Immutable; equal by content.
/// </summary>
public sealed partial class Membership : IEquatable<Membership>
{
    private readonly Dictionary<string, MembershipNode> _nodes;
    private byte[]? _encoding;

    /// <exception cref="ArgumentException">Two nodes have the same id (a membership cannot hold them; a file reports them as a problem).</exception>
    public Membership(string preferredLeader, IReadOnlyList<string>? leaderCandidates, IReadOnlyList<MembershipDatacenter> datacenters,
        IEnumerable<MembershipNode> nodes)
    {
        ArgumentNullException.ThrowIfNull(preferredLeader);
        ArgumentNullException.ThrowIfNull(datacenters);
        ArgumentNullException.ThrowIfNull(nodes);
        PreferredLeader = preferredLeader;
        LeaderCandidates = leaderCandidates?.ToArray();
        Datacenters = datacenters.ToArray();
        _nodes = new Dictionary<string, MembershipNode>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            if (!_nodes.TryAdd(node.Id, node))
            {
                throw new ArgumentException($"node '{node.Id}' is given twice", nameof(nodes));
            }
        }
    }

    /// <summary><c>leader:</c> the node that leads whenever it is up and caught up.</summary>
    public string PreferredLeader { get; }

    /// <summary><c>leader-candidates:</c> the voters that may lead, or null when every voter with a publish address may.</summary>
    public IReadOnlyList<string>? LeaderCandidates { get; }

    /// <summary>Datacenters in order.</summary>
    public IReadOnlyList<MembershipDatacenter> Datacenters { get; }

    /// <summary>Every node by id.</summary>
    public IReadOnlyDictionary<string, MembershipNode> Nodes => _nodes;

    /// <summary>The membership of a topology as its file wrote it, whoever leads at the moment.</summary>
    public static Membership Of(TopologyConfig topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        topology = topology.AsWritten;
        var datacenters = new List<MembershipDatacenter>(topology.Datacenters.Count);
        foreach (var dc in topology.Datacenters)
        {
            datacenters.Add(new MembershipDatacenter(dc.Name, dc.Relays.ToArray(), dc.Members.ToArray()));
        }
        var nodes = new List<MembershipNode>(topology.Nodes.Count);
        foreach (var node in topology.Nodes.Values)
        {
            nodes.Add(MembershipNode.From(node));
        }
        return new Membership(topology.LeaderId, topology.LeaderCandidates, datacenters, nodes);
    }

    /// <summary>What the node is here: the preferred leader, a relay or a member; null when no list places it.</summary>
    public NodeRole? RoleOf(string nodeId)
    {
        if (nodeId == PreferredLeader && _nodes.ContainsKey(nodeId))
        {
            return NodeRole.Leader;
        }
        foreach (var dc in Datacenters)
        {
            if (dc.Relays.Contains(nodeId, StringComparer.Ordinal)) return NodeRole.Relay;
            if (dc.Members.Contains(nodeId, StringComparer.Ordinal)) return NodeRole.Member;
        }
        return null;
    }

    /// <summary>The voters, as <see cref="TopologyConfig.Voters"/> lists them: the preferred leader, then every voting member in order.</summary>
    public IReadOnlyList<string> Voters
    {
        get
        {
            var voters = new List<string> { PreferredLeader };
            foreach (var dc in Datacenters)
            {
                foreach (string id in dc.Members)
                {
                    if (id != PreferredLeader && (!_nodes.TryGetValue(id, out var node) || node.Voter))
                    {
                        voters.Add(id);
                    }
                }
            }
            return voters;
        }
    }

    /// <summary>
    /// What is wrong with this membership in a cluster whose file is <paramref name="file"/>, with the messages the
    /// loader gives for the same mistakes in a file (empty when it is fine). The file provides the cluster name and quorum.
    /// </summary>
    public IReadOnlyList<string> Problems(TopologyConfig file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var (result, nameProblems) = Load(file);
        if (nameProblems.Count > 0)
        {
            return nameProblems;
        }
        var problems = new List<string>(result!.Problems.Count);
        foreach (var problem in result.Problems)
        {
            problems.Add(WithoutLineNumbers(problem.Message));
        }
        return problems;
    }

    // Line numbers point into the YAML this was checked as, which the caller never sees.
    private static string WithoutLineNumbers(string message) => LineReference().Replace(message, "");

    [System.Text.RegularExpressions.GeneratedRegex(@" \((?:first )?(?:at )?line \d+\)|;? first (?:defined )?at line \d+")]
    private static partial System.Text.RegularExpressions.Regex LineReference();

    /// <summary>
    /// The topology with this membership and everything else (cluster, quorum, defaults, tls, auth, insecure, source path)
    /// from <paramref name="file"/>: what a node runs with once this membership is committed.
    /// </summary>
    /// <exception cref="ArgumentException">The membership has <see cref="Problems"/>; the message lists them.</exception>
    public TopologyConfig ApplyTo(TopologyConfig file)
    {
        ArgumentNullException.ThrowIfNull(file);
        file = file.AsWritten;
        var (result, nameProblems) = Load(file);
        if (nameProblems.Count > 0 || !result!.Success)
        {
            var problems = nameProblems.Count > 0 ? nameProblems : result!.Problems.Select(p => WithoutLineNumbers(p.Message)).ToList();
            throw new ArgumentException($"the membership has {problems.Count} problem{(problems.Count == 1 ? "" : "s")}:\n" + string.Join("\n", problems));
        }
        return result.Config with
        {
            Defaults = file.Defaults, Tls = file.Tls, Auth = file.Auth, Insecure = file.Insecure, SourcePath = file.SourcePath,
        };
    }

    /// <summary>The topology <see cref="ApplyTo"/> would give, or null when the membership has problems.</summary>
    internal TopologyConfig? TryApplyTo(TopologyConfig file)
    {
        file = file.AsWritten;
        var (result, nameProblems) = Load(file);
        return nameProblems.Count > 0 || !result!.Success ? null : result.Config with
        {
            Defaults = file.Defaults, Tls = file.Tls, Auth = file.Auth, Insecure = file.Insecure, SourcePath = file.SourcePath,
        };
    }

    /// <summary>
    /// Validates by loading the file's head and <see cref="ToYaml"/> with the topology loader, so a membership is held to
    /// exactly the rules of a file. Names and addresses are checked first: they go into YAML unquoted.
    /// </summary>
    private (TopologyLoadResult? Result, List<string> NameProblems) Load(TopologyConfig file)
    {
        var nameProblems = new List<string>();
        CheckName(PreferredLeader, "leader");
        foreach (string id in LeaderCandidates ?? [])
        {
            CheckName(id, "leader-candidates entry");
        }
        foreach (var dc in Datacenters)
        {
            CheckName(dc.Name, "datacenter name");
            foreach (string id in dc.Relays) CheckName(id, $"relay of datacenter '{dc.Name}'");
            foreach (string id in dc.Members) CheckName(id, $"member of datacenter '{dc.Name}'");
        }
        foreach (var node in _nodes.Values)
        {
            CheckName(node.Id, "node id");
            CheckName(node.Datacenter, $"node '{node.Id}' dc");
            foreach (string parent in node.FeedFrom) CheckName(parent, $"node '{node.Id}' feed-from entry");
            foreach (var (key, endpoint) in node.Endpoints())
            {
                if (endpoint is { } e && (!NodeEndpoint.TryParse(e.ToString(), out var parsed, out _) || parsed != e))
                {
                    nameProblems.Add($"node '{node.Id}' {key}: '{e}' is not a canonical host:port address");
                }
            }
            if (node.MaxLearners is < 1)
            {
                nameProblems.Add($"node '{node.Id}' max-learners must be a whole number from 1 to {int.MaxValue}, not '{node.MaxLearners}'");
            }
        }
        if (nameProblems.Count > 0)
        {
            return (null, nameProblems);
        }
        string head = $"cluster: {file.Cluster}\nquorum: {file.Quorum}\ninsecure: true\n";
        return (TopologyLoader.Parse(head + ToYaml(), file.SourcePath.Length > 0 ? file.SourcePath : "membership"), nameProblems);

        void CheckName(string name, string what)
        {
            if (!TopologyReader.NamePattern().IsMatch(name))
            {
                nameProblems.Add($"{what} '{name}' must be 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit");
            }
        }
    }

    /// <summary>FNV-1a 64 of <see cref="Encode"/>: equal memberships hash equal on every node and every run.</summary>
    /// <exception cref="InvalidOperationException">The membership cannot be encoded (see <see cref="Encode"/>).</exception>
    public ulong Hash => Fnv1a64(Encoding());

    public bool Equals(Membership? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        if (PreferredLeader != other.PreferredLeader || _nodes.Count != other._nodes.Count || !Datacenters.SequenceEqual(other.Datacenters))
        {
            return false;
        }
        if (LeaderCandidates is null ? other.LeaderCandidates is not null
            : other.LeaderCandidates is null || !LeaderCandidates.SequenceEqual(other.LeaderCandidates, StringComparer.Ordinal))
        {
            return false;
        }
        foreach (var (id, node) in _nodes)
        {
            if (!other._nodes.TryGetValue(id, out var theirs) || !node.Equals(theirs))
            {
                return false;
            }
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as Membership);

    public override int GetHashCode() => HashCode.Combine(PreferredLeader, Datacenters.Count, _nodes.Count);

    public override string ToString() => $"membership led by {PreferredLeader}: {Datacenters.Count} datacenters, {_nodes.Count} nodes, voters {string.Join(",", Voters)}";

    private static ulong Fnv1a64(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in data)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }
        return hash;
    }
}
