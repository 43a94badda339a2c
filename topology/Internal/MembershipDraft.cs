namespace GeoRelay.Topology.Internal;

/// <summary>A membership being edited by <see cref="MembershipPlan"/>: mutable copies of its lists, turned back into a
/// <see cref="Membership"/> for each step.</summary>
internal sealed class MembershipDraft
{
    public MembershipDraft(Membership membership)
    {
        PreferredLeader = membership.PreferredLeader;
        Candidates = membership.LeaderCandidates?.ToList();
        foreach (var dc in membership.Datacenters)
        {
            Datacenters.Add((dc.Name, dc.Relays.ToList(), dc.Members.ToList()));
        }
        foreach (var (id, node) in membership.Nodes)
        {
            Nodes[id] = node;
        }
    }

    public string PreferredLeader { get; set; }
    public List<string>? Candidates { get; set; }
    public List<(string Name, List<string> Relays, List<string> Members)> Datacenters { get; } = [];
    public Dictionary<string, MembershipNode> Nodes { get; } = new(StringComparer.Ordinal);

    public (string Name, List<string> Relays, List<string> Members)? Find(string datacenter)
    {
        foreach (var dc in Datacenters)
        {
            if (dc.Name == datacenter) return dc;
        }
        return null;
    }

    /// <summary>Takes the node out of every list and of the nodes; a datacenter left without members goes with its relays.</summary>
    public List<string> Remove(string id)
    {
        var gone = new List<string>();
        Nodes.Remove(id);
        Candidates?.Remove(id);
        for (int i = Datacenters.Count - 1; i >= 0; i--)
        {
            var dc = Datacenters[i];
            dc.Relays.Remove(id);
            if (dc.Members.Remove(id) && dc.Members.Count == 0 && PreferredLeaderDatacenter() != dc.Name)
            {
                foreach (string relay in dc.Relays) Nodes.Remove(relay);
                gone.Add(dc.Name);
                Datacenters.RemoveAt(i);
            }
        }
        return gone;
    }

    /// <summary>Makes <paramref name="id"/> (a voting member) the preferred leader; the one before becomes a member of its datacenter.</summary>
    public void MakePreferredLeader(string id)
    {
        string old = PreferredLeader;
        foreach (var dc in Datacenters) dc.Members.Remove(id);
        if (Nodes.TryGetValue(old, out var oldNode) && Find(oldNode.Datacenter) is { } home)
        {
            home.Members.Add(old);
        }
        PreferredLeader = id;
        if (Candidates is not null && !Candidates.Contains(id))
        {
            Candidates.Add(id);
        }
    }

    private string? PreferredLeaderDatacenter() => Nodes.TryGetValue(PreferredLeader, out var leader) ? leader.Datacenter : null;

    public Membership ToMembership() =>
        new(PreferredLeader, Candidates?.ToArray(),
            Datacenters.ConvertAll(d => new MembershipDatacenter(d.Name, d.Relays.ToArray(), d.Members.ToArray())), Nodes.Values);
}
