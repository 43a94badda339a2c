namespace GeoRelay.Topology;

/// <summary>How the leader reaches a datacenter.</summary>
public enum RouteKind
{
    /// <summary>One batch to the datacenter's active relay, which fans out to members and learners.</summary>
    Relay,
    /// <summary>The leader sends to each member itself: its own datacenter, or one whose relays are all down.</summary>
    Direct,
}

/// <summary>
/// The route to one datacenter. <see cref="RelayId"/> is set only for <see cref="RouteKind.Relay"/>.
/// <see cref="LearnerEndpoints"/> are where the datacenter's learners can subscribe, best first: the
/// healthy relays in priority order (the active one first), then the members, in file order; for the
/// leader's datacenter the leader comes first. Nodes without a <c>learners</c> address are skipped.
/// </summary>
public sealed record DatacenterRoute(
    string Datacenter,
    RouteKind Kind,
    string? RelayId,
    IReadOnlyList<string> Members,
    IReadOnlyList<NodeEndpoint> LearnerEndpoints);

/// <summary>Maps a topology and a health view of its relays to each datacenter's route.</summary>
public static class RoutePlanner
{
    /// <summary>
    /// One route per datacenter, in file order: the leader's datacenter is direct; any other goes
    /// through its first healthy relay in priority order, or direct to its members when none is
    /// healthy. Pure: <paramref name="isRelayHealthy"/> is asked once per relay and nothing else is read.
    /// </summary>
    public static IReadOnlyList<DatacenterRoute> Plan(TopologyConfig topology, Func<string, bool> isRelayHealthy)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(isRelayHealthy);
        var routes = new DatacenterRoute[topology.Datacenters.Count];
        for (int i = 0; i < routes.Length; i++)
        {
            routes[i] = PlanDatacenter(topology, topology.Datacenters[i], isRelayHealthy);
        }
        return routes;
    }

    /// <summary>The route of one datacenter (see <see cref="Plan"/>).</summary>
    public static DatacenterRoute PlanDatacenter(TopologyConfig topology, DatacenterConfig datacenter, Func<string, bool> isRelayHealthy)
    {
        var learners = new List<NodeEndpoint>();
        string? active = null;
        if (datacenter.IsLeaderDatacenter)
        {
            AddLearners(topology.Leader, learners);
        }
        else
        {
            foreach (string relayId in datacenter.Relays)
            {
                if (isRelayHealthy(relayId))
                {
                    // Second-tier relays feed from other relays; the leader never routes to them.
                    if (topology.Nodes[relayId].IsFirstTier) active ??= relayId;
                    AddLearners(topology.Nodes[relayId], learners);
                }
            }
        }
        foreach (string memberId in datacenter.Members)
        {
            AddLearners(topology.Nodes[memberId], learners);
        }
        return active is null
            ? new DatacenterRoute(datacenter.Name, RouteKind.Direct, null, datacenter.Members, learners)
            : new DatacenterRoute(datacenter.Name, RouteKind.Relay, active, datacenter.Members, learners);
    }

    private static void AddLearners(NodeConfig node, List<NodeEndpoint> learners)
    {
        if (node.Learners is { } endpoint)
        {
            learners.Add(endpoint);
        }
    }
}

/// <summary>
/// Who opens the connection between two nodes that talk to each other as peers: the node whose id
/// sorts lower (ordinal) dials the higher one, so every pair has exactly one connection.
/// </summary>
public static class MeshRule
{
    /// <summary>True when <paramref name="self"/> should dial <paramref name="peer"/> (never itself).</summary>
    public static bool Dials(string self, string peer)
    {
        ArgumentNullException.ThrowIfNull(self);
        ArgumentNullException.ThrowIfNull(peer);
        return string.CompareOrdinal(self, peer) < 0;
    }

    /// <summary>The peers in <paramref name="peers"/> that <paramref name="self"/> dials; it accepts the rest.</summary>
    public static IEnumerable<string> PeersToDial(string self, IEnumerable<string> peers)
    {
        foreach (string peer in peers)
        {
            if (Dials(self, peer))
            {
                yield return peer;
            }
        }
    }
}
