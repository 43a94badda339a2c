namespace GeoRelay.Topology;

/// <summary>How the leader reaches a datacenter.</summary>
public enum RouteKind
{
    /// <summary>One batch to the datacenter's active proxy, which fans out to members and learners.</summary>
    Proxy,
    /// <summary>The leader sends to each member itself: its own datacenter, or one whose proxies are all down.</summary>
    Direct,
}

/// <summary>
/// The route to one datacenter. <see cref="ProxyId"/> is set only for <see cref="RouteKind.Proxy"/>.
/// <see cref="LearnerEndpoints"/> are where the datacenter's learners can subscribe, best first: the
/// healthy proxies in priority order (the active one first), then the members, in file order; for the
/// leader's datacenter the leader comes first. Nodes without a <c>learners</c> address are skipped.
/// </summary>
public sealed record DatacenterRoute(
    string Datacenter,
    RouteKind Kind,
    string? ProxyId,
    IReadOnlyList<string> Members,
    IReadOnlyList<NodeEndpoint> LearnerEndpoints);

/// <summary>Maps a topology and a health view of its proxies to each datacenter's route.</summary>
public static class RoutePlanner
{
    /// <summary>
    /// One route per datacenter, in file order: the leader's datacenter is direct; any other goes
    /// through its first healthy proxy in priority order, or direct to its members when none is
    /// healthy. Pure: <paramref name="isProxyHealthy"/> is asked once per proxy and nothing else is read.
    /// </summary>
    public static IReadOnlyList<DatacenterRoute> Plan(TopologyConfig topology, Func<string, bool> isProxyHealthy)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(isProxyHealthy);
        var routes = new DatacenterRoute[topology.Datacenters.Count];
        for (int i = 0; i < routes.Length; i++)
        {
            routes[i] = PlanDatacenter(topology, topology.Datacenters[i], isProxyHealthy);
        }
        return routes;
    }

    /// <summary>The route of one datacenter (see <see cref="Plan"/>).</summary>
    public static DatacenterRoute PlanDatacenter(TopologyConfig topology, DatacenterConfig datacenter, Func<string, bool> isProxyHealthy)
    {
        var learners = new List<NodeEndpoint>();
        string? active = null;
        if (datacenter.IsLeaderDatacenter)
        {
            AddLearners(topology.Leader, learners);
        }
        else
        {
            foreach (string proxyId in datacenter.Proxies)
            {
                if (isProxyHealthy(proxyId))
                {
                    active ??= proxyId;
                    AddLearners(topology.Nodes[proxyId], learners);
                }
            }
        }
        foreach (string memberId in datacenter.Members)
        {
            AddLearners(topology.Nodes[memberId], learners);
        }
        return active is null
            ? new DatacenterRoute(datacenter.Name, RouteKind.Direct, null, datacenter.Members, learners)
            : new DatacenterRoute(datacenter.Name, RouteKind.Proxy, active, datacenter.Members, learners);
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
