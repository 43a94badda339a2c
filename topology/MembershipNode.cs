namespace GeoRelay.Topology;

/// <summary>One node of a <see cref="Membership"/>: everything about it that can change at runtime. Its role follows from
/// where the membership lists it, as in a topology file.</summary>
public sealed record MembershipNode
{
    public required string Id { get; init; }
    public required string Datacenter { get; init; }
    /// <summary>False for a non-voting member (<c>voter: false</c>). Default true.</summary>
    public bool Voter { get; init; } = true;
    public NodeEndpoint? Listen { get; init; }
    public NodeEndpoint? Publish { get; init; }
    public NodeEndpoint? Learners { get; init; }
    public NodeEndpoint? Admin { get; init; }
    public NodeEndpoint? Web { get; init; }
    /// <summary><c>feed-from</c> (relays only), in order; empty for none.</summary>
    public IReadOnlyList<string> FeedFrom { get; init; } = [];
    /// <summary><c>max-learners</c>, or null for the cluster default.</summary>
    public int? MaxLearners { get; init; }

    public static MembershipNode From(NodeConfig node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new MembershipNode
        {
            Id = node.Id,
            Datacenter = node.Datacenter,
            Voter = node.Voter,
            Listen = node.Listen,
            Publish = node.Publish,
            Learners = node.Learners,
            Admin = node.Admin,
            Web = node.Web,
            FeedFrom = node.FeedFrom.ToArray(),
            MaxLearners = node.MaxLearners,
        };
    }

    /// <summary>The endpoints by their YAML key, in the order the file and the encoding write them.</summary>
    public IEnumerable<(string Key, NodeEndpoint? Endpoint)> Endpoints()
    {
        yield return ("publish", Publish);
        yield return ("listen", Listen);
        yield return ("learners", Learners);
        yield return ("admin", Admin);
        yield return ("web", Web);
    }

    // By content: the generated record equality would compare FeedFrom by reference.
    public bool Equals(MembershipNode? other) =>
        other is not null && Id == other.Id && Datacenter == other.Datacenter && Voter == other.Voter
        && Listen == other.Listen && Publish == other.Publish && Learners == other.Learners && Admin == other.Admin
        && Web == other.Web && MaxLearners == other.MaxLearners && FeedFrom.SequenceEqual(other.FeedFrom, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Id, Datacenter, Voter, Listen, Publish, FeedFrom.Count, MaxLearners);
}
