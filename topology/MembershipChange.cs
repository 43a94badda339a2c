namespace GeoRelay.Topology;

/// <summary>What one <see cref="MembershipChange"/> changes.</summary>
public enum MembershipChangeKind
{
    DatacenterAdded,
    DatacenterRemoved,
    /// <summary>A node joins, as <see cref="MembershipChange.Role"/> of <see cref="MembershipChange.Datacenter"/>.</summary>
    NodeAdded,
    NodeRemoved,
    /// <summary>A node keeps its id but changes datacenter, or between relay and member.</summary>
    NodeMoved,
    /// <summary>A non-voting member becomes a voter.</summary>
    VoterPromoted,
    /// <summary>A voting member becomes a non-voter.</summary>
    VoterDemoted,
    /// <summary>The relays two memberships share are in a different priority order.</summary>
    RelayOrderChanged,
    /// <summary>The members two memberships share are in a different order (it gives each member its slot in relay reports).</summary>
    MemberOrderChanged,
    /// <summary>One of publish, listen, learners, admin, web (<see cref="MembershipChange.Key"/>) changed, appeared or went.</summary>
    EndpointChanged,
    FeedFromChanged,
    MaxLearnersChanged,
    PreferredLeaderChanged,
    CandidatesChanged,
}

/// <summary>
/// One difference between two memberships (<see cref="MembershipDiff.Between"/>). <see cref="Old"/> and <see cref="New"/>
/// hold the values as text where the kind has them ("none" for an absent address, "default" for an absent max-learners).
/// </summary>
public sealed record MembershipChange(MembershipChangeKind Kind, string? Node, string? Datacenter)
{
    /// <summary>For added, removed and moved nodes: the role where it is (added, moved) or was (removed).</summary>
    public NodeRole? Role { get; init; }
    /// <summary>For added nodes: false when it joins as a non-voter.</summary>
    public bool Voter { get; init; } = true;
    /// <summary>For <see cref="MembershipChangeKind.EndpointChanged"/>: the YAML key (listen, publish, ...).</summary>
    public string? Key { get; init; }
    public string? Old { get; init; }
    public string? New { get; init; }

    /// <summary>One line for people: <c>+ member eu-m4 in eu-west (non-voter)</c>, <c>~ eu-m1 listen a -> b</c>, <c>^ promote eu-m4 to voter</c>.</summary>
    public override string ToString() => Kind switch
    {
        MembershipChangeKind.DatacenterAdded => $"+ datacenter {Datacenter}",
        MembershipChangeKind.DatacenterRemoved => $"- datacenter {Datacenter}",
        MembershipChangeKind.NodeAdded => $"+ {RoleName(Role)} {Node} in {Datacenter}{(Voter ? "" : " (non-voter)")}",
        MembershipChangeKind.NodeRemoved => $"- {RoleName(Role)} {Node} from {Datacenter}",
        MembershipChangeKind.NodeMoved => $"~ {Node} moves: {Old} -> {New}",
        MembershipChangeKind.VoterPromoted => $"^ promote {Node} to voter",
        MembershipChangeKind.VoterDemoted => $"v demote {Node} to non-voter",
        MembershipChangeKind.RelayOrderChanged => $"~ {Datacenter} relays {Old} -> {New}",
        MembershipChangeKind.MemberOrderChanged => $"~ {Datacenter} members {Old} -> {New}",
        MembershipChangeKind.EndpointChanged => $"~ {Node} {Key} {Old} -> {New}",
        MembershipChangeKind.FeedFromChanged => $"~ {Node} feed-from {Old} -> {New}",
        MembershipChangeKind.MaxLearnersChanged => $"~ {Node} max-learners {Old} -> {New}",
        MembershipChangeKind.PreferredLeaderChanged => $"~ leader {Old} -> {New}",
        _ => $"~ leader-candidates {Old} -> {New}",
    };

    internal static string RoleName(NodeRole? role) => role switch
    {
        NodeRole.Leader => "leader",
        NodeRole.Relay => "relay",
        NodeRole.Member => "member",
        _ => "unplaced node",
    };
}
