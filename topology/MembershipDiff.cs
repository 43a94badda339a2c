namespace GeoRelay.Topology;

/// <summary>What differs between two memberships, for people to review before a change and for logs after it.</summary>
public static class MembershipDiff
{
    /// <summary>
    /// Every difference from <paramref name="from"/> to <paramref name="to"/>, empty when they are equal: datacenters
    /// added, nodes added, moves, promotions and demotions, per-node settings, order changes, nodes and datacenters
    /// removed, then the preferred leader and the candidates. The preferred leader changing is one change: the old one
    /// becoming a member and the new one leaving the members follow from it and are not listed again.
    /// </summary>
    public static IReadOnlyList<MembershipChange> Between(Membership from, Membership to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var changes = new List<MembershipChange>();
        var fromDcs = from.Datacenters.ToDictionary(d => d.Name, StringComparer.Ordinal);
        var toDcs = to.Datacenters.ToDictionary(d => d.Name, StringComparer.Ordinal);

        foreach (var dc in to.Datacenters)
        {
            if (!fromDcs.ContainsKey(dc.Name)) changes.Add(new(MembershipChangeKind.DatacenterAdded, null, dc.Name));
        }
        foreach (string id in to.NodeIdsInOrder())
        {
            var node = to.Nodes[id];
            if (!from.Nodes.ContainsKey(id))
            {
                changes.Add(new(MembershipChangeKind.NodeAdded, id, node.Datacenter) { Role = to.RoleOf(id), Voter = node.Voter });
            }
        }
        foreach (string id in to.NodeIdsInOrder())
        {
            if (from.Nodes.TryGetValue(id, out var old))
            {
                NodeChanges(changes, id, old, from.RoleOf(id), to.Nodes[id], to.RoleOf(id));
            }
        }
        foreach (var dc in to.Datacenters)
        {
            if (fromDcs.TryGetValue(dc.Name, out var old))
            {
                OrderChange(changes, MembershipChangeKind.RelayOrderChanged, dc.Name, old.Relays, dc.Relays);
                OrderChange(changes, MembershipChangeKind.MemberOrderChanged, dc.Name, old.Members, dc.Members);
            }
        }
        foreach (string id in from.NodeIdsInOrder())
        {
            if (!to.Nodes.ContainsKey(id))
            {
                changes.Add(new(MembershipChangeKind.NodeRemoved, id, from.Nodes[id].Datacenter) { Role = from.RoleOf(id) });
            }
        }
        foreach (var dc in from.Datacenters)
        {
            if (!toDcs.ContainsKey(dc.Name)) changes.Add(new(MembershipChangeKind.DatacenterRemoved, null, dc.Name));
        }
        if (from.PreferredLeader != to.PreferredLeader)
        {
            changes.Add(new(MembershipChangeKind.PreferredLeaderChanged, to.PreferredLeader, to.Nodes.TryGetValue(to.PreferredLeader, out var l) ? l.Datacenter : null)
            {
                Old = from.PreferredLeader, New = to.PreferredLeader,
            });
        }
        if (!SameCandidates(from.LeaderCandidates, to.LeaderCandidates))
        {
            changes.Add(new(MembershipChangeKind.CandidatesChanged, null, null) { Old = Candidates(from.LeaderCandidates), New = Candidates(to.LeaderCandidates) });
        }
        return changes;
    }

    private static void NodeChanges(List<MembershipChange> changes, string id, MembershipNode old, NodeRole? oldRole, MembershipNode now, NodeRole? newRole)
    {
        // Leader and member are one kind of node: the preferred leader changing moves nobody.
        bool oldRelay = oldRole == NodeRole.Relay, newRelay = newRole == NodeRole.Relay;
        if (old.Datacenter != now.Datacenter || oldRelay != newRelay)
        {
            changes.Add(new(MembershipChangeKind.NodeMoved, id, now.Datacenter)
            {
                Role = newRole,
                Old = $"{MembershipChange.RoleName(oldRole)} of {old.Datacenter}",
                New = $"{MembershipChange.RoleName(newRole)} of {now.Datacenter}",
            });
        }
        if (old.Voter != now.Voter)
        {
            changes.Add(new(now.Voter ? MembershipChangeKind.VoterPromoted : MembershipChangeKind.VoterDemoted, id, now.Datacenter));
        }
        using (var olds = old.Endpoints().GetEnumerator())
        {
            foreach (var (key, endpoint) in now.Endpoints())
            {
                olds.MoveNext();
                if (olds.Current.Endpoint != endpoint)
                {
                    changes.Add(new(MembershipChangeKind.EndpointChanged, id, now.Datacenter)
                    {
                        Key = key, Old = olds.Current.Endpoint?.ToString() ?? "none", New = endpoint?.ToString() ?? "none",
                    });
                }
            }
        }
        if (!old.FeedFrom.SequenceEqual(now.FeedFrom, StringComparer.Ordinal))
        {
            changes.Add(new(MembershipChangeKind.FeedFromChanged, id, now.Datacenter) { Old = List(old.FeedFrom), New = List(now.FeedFrom) });
        }
        if (old.MaxLearners != now.MaxLearners)
        {
            changes.Add(new(MembershipChangeKind.MaxLearnersChanged, id, now.Datacenter)
            {
                Old = old.MaxLearners?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
                New = now.MaxLearners?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default",
            });
        }
    }

    /// <summary>Reports an order change only among the nodes both lists hold: additions and removals are changes of their own.</summary>
    private static void OrderChange(List<MembershipChange> changes, MembershipChangeKind kind, string dc, IReadOnlyList<string> old, IReadOnlyList<string> now)
    {
        var kept = now.Where(old.Contains).ToList();
        var keptBefore = old.Where(now.Contains).ToList();
        if (!kept.SequenceEqual(keptBefore, StringComparer.Ordinal))
        {
            changes.Add(new(kind, null, dc) { Old = List(keptBefore), New = List(kept) });
        }
    }

    private static bool SameCandidates(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b, StringComparer.Ordinal);

    private static string Candidates(IReadOnlyList<string>? candidates) => candidates is null ? "(every voter)" : List(candidates);

    private static string List(IReadOnlyList<string> ids) => ids.Count == 0 ? "none" : string.Join(", ", ids);
}
