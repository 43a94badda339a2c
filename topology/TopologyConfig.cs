namespace GeoRelay.Topology;

/// <summary>What a node is, which follows from where the topology file lists it.</summary>
public enum NodeRole
{
    /// <summary>Named by the top-level <c>leader</c> key.</summary>
    Leader,
    /// <summary>Listed in a datacenter's <c>relays</c>.</summary>
    Relay,
    /// <summary>Listed in a datacenter's <c>members</c>.</summary>
    Member,
}

/// <summary>One entry of <c>nodes:</c>.</summary>
public sealed record NodeConfig
{
    public required string Id { get; init; }
    public required string Datacenter { get; init; }
    public required NodeRole Role { get; init; }
    /// <summary><c>listen</c>: where peers (leader, relays, members) connect. Required for every node.</summary>
    public NodeEndpoint? Listen { get; init; }
    /// <summary><c>publish</c>: where publishers connect. Leader only, required there.</summary>
    public NodeEndpoint? Publish { get; init; }
    /// <summary><c>learners</c>: where learners subscribe. Optional; a node without it serves no learners.</summary>
    public NodeEndpoint? Learners { get; init; }
    /// <summary><c>admin</c>: status and metrics endpoint. Optional.</summary>
    public NodeEndpoint? Admin { get; init; }
    /// <summary>
    /// <c>web</c>: where browsers and other HTTP clients subscribe (WebSocket or Server-Sent Events, JSON). Optional; needs
    /// <see cref="Learners"/> on the same node, which the web endpoint subscribes to for each of its clients.
    /// </summary>
    public NodeEndpoint? Web { get; init; }

    /// <summary>
    /// <c>feed-from</c> (relays only): relays of the same datacenter this relay takes its feed from, in order, instead of
    /// from the relay the leader feeds: a second tier, for datacenters with more learners than one tier of relays can
    /// send to. Empty for a first-tier relay (the leader may route to it; it feeds from the active one meanwhile).
    /// </summary>
    public IReadOnlyList<string> FeedFrom { get; init; } = [];

    /// <summary><c>max-learners</c>: learners this node serves at most; more are refused with a hint naming another
    /// relay. Null: <see cref="ClusterDefaults.MaxLearners"/>.</summary>
    public int? MaxLearners { get; init; }

    /// <summary>
    /// <c>voter</c> (members only): false for a non-voting member, which takes the log and serves learners but never
    /// votes, never leads and does not count toward the quorum (a new member catching up before its promotion).
    /// Default true; the leader and relays always have true.
    /// </summary>
    public bool Voter { get; init; } = true;

    /// <summary>A relay the leader may route to: it has no <see cref="FeedFrom"/>.</summary>
    public bool IsFirstTier => FeedFrom.Count == 0;
}

/// <summary>One entry of <c>datacenters:</c>.</summary>
public sealed record DatacenterConfig
{
    public required string Name { get; init; }
    /// <summary>Relay node ids in priority order (empty for the leader's datacenter).</summary>
    public required IReadOnlyList<string> Relays { get; init; }
    /// <summary>Member node ids in file order; never empty in a file (a <see cref="TopologyConfig.LedBy"/> view may leave
    /// the leading member's datacenter without other members).</summary>
    public required IReadOnlyList<string> Members { get; init; }
    /// <summary>The leader lives here and serves it directly.</summary>
    public bool IsLeaderDatacenter { get; init; }
}

/// <summary>A validated topology. Obtain one from <see cref="TopologyLoader"/>.</summary>
public sealed record TopologyConfig
{
    private readonly IReadOnlyList<DatacenterConfig> _datacenters = [];
    private readonly Dictionary<string, DatacenterConfig> _datacentersByName = new(StringComparer.Ordinal);

    public required string Cluster { get; init; }
    public required string LeaderId { get; init; }
    public QuorumSpec Quorum { get; init; } = QuorumSpec.Majority;
    public ClusterDefaults Defaults { get; init; } = ClusterDefaults.Default;

    /// <summary><c>tls:</c> section, or null for plain TCP (which nodes accept only with <see cref="Insecure"/>).</summary>
    public TlsConfig? Tls { get; init; }

    /// <summary><c>insecure:</c> true lets nodes run without <see cref="Tls"/>: peers are then not authenticated
    /// and traffic is plaintext. Default false: a node without TLS refuses to start (see <see cref="SecurityPosture"/>).</summary>
    public bool Insecure { get; init; }

    /// <summary><c>leader-candidates:</c> the voters that may lead, or null when every voter may.</summary>
    public IReadOnlyList<string>? LeaderCandidates { get; init; }

    /// <summary>
    /// The node named by <c>leader:</c> in the file: the preferred leader, which leads whenever it is up and caught up.
    /// <see cref="LeaderId"/> is the node leading this view of the topology (see <see cref="LedBy"/>).
    /// </summary>
    public string PreferredLeaderId
    {
        get => _preferredLeaderId ?? LeaderId;
        init => _preferredLeaderId = value;
    }

    private readonly string? _preferredLeaderId;

    /// <summary><c>auth:</c> section, or null when learners and publishers need no token.</summary>
    public AuthConfig? Auth { get; init; }

    /// <summary>Datacenters in file order.</summary>
    public required IReadOnlyList<DatacenterConfig> Datacenters
    {
        get => _datacenters;
        init
        {
            _datacenters = value;
            // Rebuilt on every init so that `with { Datacenters = ... }` cannot leave a stale index.
            _datacentersByName = new Dictionary<string, DatacenterConfig>(value.Count, StringComparer.Ordinal);
            foreach (var dc in value)
            {
                _datacentersByName[dc.Name] = dc;
            }
        }
    }

    /// <summary>Every node by id (leader, relays and members).</summary>
    public required IReadOnlyDictionary<string, NodeConfig> Nodes { get; init; }

    /// <summary>The file this was loaded from (full path), or the name given to <see cref="TopologyLoader.Parse"/>.</summary>
    public string SourcePath { get; init; } = "";

    public NodeConfig Leader => Nodes[LeaderId];

    public DatacenterConfig LeaderDatacenter => GetDatacenter(Leader.Datacenter);

    /// <summary>Every member of every datacenter, in file order.</summary>
    public IEnumerable<NodeConfig> AllMembers
    {
        get
        {
            foreach (var dc in _datacenters)
            {
                foreach (string id in dc.Members)
                {
                    yield return Nodes[id];
                }
            }
        }
    }

    /// <summary>Number of members over all datacenters, non-voters included.</summary>
    public int MemberCount
    {
        get
        {
            int count = 0;
            foreach (var dc in _datacenters)
            {
                count += dc.Members.Count;
            }
            return count;
        }
    }

    /// <summary>Number of members that vote (<see cref="NodeConfig.Voter"/>): the ones <see cref="RequiredAcks"/> counts.</summary>
    public int VotingMemberCount
    {
        get
        {
            int count = 0;
            foreach (var dc in _datacenters)
            {
                foreach (string id in dc.Members)
                {
                    if (Nodes[id].Voter)
                    {
                        count++;
                    }
                }
            }
            return count;
        }
    }

    /// <summary>The nodes that vote in elections: the preferred leader, then every voting member in file order. The same in every <see cref="LedBy"/> view.</summary>
    public IEnumerable<string> Voters
    {
        get
        {
            yield return PreferredLeaderId;
            foreach (var dc in _datacenters)
            {
                foreach (string id in dc.Members)
                {
                    if (id != PreferredLeaderId && Nodes[id].Voter)
                    {
                        yield return id;
                    }
                }
            }
            if (LeaderId != PreferredLeaderId)
            {
                yield return LeaderId;
            }
        }
    }

    /// <summary>The leader and the voting members: not relays, not non-voting members.</summary>
    public bool IsVoter(string nodeId) => Nodes.TryGetValue(nodeId, out var node) && node.Role != NodeRole.Relay && node.Voter;

    /// <summary>
    /// Whether the node may become leader: a voter listed in <see cref="LeaderCandidates"/> when that is given, else any
    /// voter with a <c>publish</c> address (a leader without one could take no writes, so a file that gives members none
    /// keeps its <c>leader</c> node as the only one that leads).
    /// </summary>
    public bool CanLead(string nodeId) =>
        IsVoter(nodeId) && (LeaderCandidates is { } listed ? listed.Contains(nodeId, StringComparer.Ordinal) : Nodes[nodeId].Publish is not null);

    /// <summary>
    /// The topology as it stands while <paramref name="leaderId"/> leads: that voter takes the leader's role (its
    /// datacenter is then served directly, not through relays), and the node that led before becomes a member of its
    /// own datacenter, listed last. Every node derives the same view from the same leader id, so the member slots a
    /// relay reports match the leader's.
    /// </summary>
    /// <exception cref="ArgumentException">The node is not a voter.</exception>
    public TopologyConfig LedBy(string leaderId)
    {
        // Always from the file's view, so the result does not depend on who led before.
        var file = AsWritten;
        return leaderId == LeaderId ? this : leaderId == file.LeaderId ? file : file.Reroot(leaderId);
    }

    /// <summary>This topology as the file wrote it (led by <see cref="PreferredLeaderId"/>).</summary>
    public TopologyConfig AsWritten => _asWritten ?? this;

    private TopologyConfig? _asWritten;

    private TopologyConfig Reroot(string leaderId)
    {
        if (!IsVoter(leaderId))
        {
            throw new ArgumentException($"'{leaderId}' is not a voter of cluster '{Cluster}' and cannot lead", nameof(leaderId));
        }
        var nodes = new Dictionary<string, NodeConfig>(Nodes, StringComparer.Ordinal)
        {
            [LeaderId] = Nodes[LeaderId] with { Role = NodeRole.Member },
            [leaderId] = Nodes[leaderId] with { Role = NodeRole.Leader },
        };
        string oldDc = Nodes[LeaderId].Datacenter, newDc = Nodes[leaderId].Datacenter;
        var datacenters = new List<DatacenterConfig>(_datacenters.Count);
        foreach (var dc in _datacenters)
        {
            var members = new List<string>(dc.Members.Count + 1);
            foreach (string m in dc.Members)
            {
                if (m != leaderId)
                {
                    members.Add(m);
                }
            }
            if (dc.Name == oldDc)
            {
                members.Add(LeaderId);
            }
            datacenters.Add(dc with { Members = members, IsLeaderDatacenter = dc.Name == newDc });
        }
        var view = this with { LeaderId = leaderId, PreferredLeaderId = LeaderId, Nodes = nodes, Datacenters = datacenters };
        view._asWritten = this;
        return view;
    }

    /// <summary>Member acks that commit an entry (<see cref="Quorum"/> over the voting members; non-voters' acks do not count).</summary>
    public int RequiredAcks => Quorum.RequiredAcks(VotingMemberCount);

    /// <exception cref="KeyNotFoundException">No datacenter has that name.</exception>
    public DatacenterConfig GetDatacenter(string name) =>
        _datacentersByName.TryGetValue(name, out var dc) ? dc : throw new KeyNotFoundException($"no datacenter '{name}' in cluster '{Cluster}'");

    public bool TryGetDatacenter(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DatacenterConfig? datacenter) =>
        _datacentersByName.TryGetValue(name, out datacenter);

    /// <summary>The zstd level for a link between two nodes: <c>local-level</c> inside one datacenter,
    /// <c>level</c> across datacenters or when either end is not a node of the topology (publishers, tools).</summary>
    public int CompressionLevelBetween(string nodeId, string otherNodeId) =>
        Nodes.TryGetValue(nodeId, out var a) && Nodes.TryGetValue(otherNodeId, out var b) && a.Datacenter == b.Datacenter
            ? Defaults.LocalCompressionLevel
            : Defaults.CompressionLevel;

    /// <exception cref="KeyNotFoundException">No node has that id.</exception>
    public NodeConfig GetNode(string id) =>
        Nodes.TryGetValue(id, out var node) ? node : throw new KeyNotFoundException($"no node '{id}' in cluster '{Cluster}'");
}
