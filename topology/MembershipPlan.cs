using GeoRelay.Topology.Internal;

namespace GeoRelay.Topology;

/// <summary>
/// Turns a desired membership into steps a Raft leader can commit one at a time: consecutive memberships differ by at
/// most one voter (the single-server change rule), every intermediate one is as valid as a loaded file, and the leader is
/// handed on before it stops being a voter.
/// </summary>
public static class MembershipPlan
{
    /// <summary>
    /// The steps from <paramref name="current"/> to <paramref name="desired"/>, in this order where validity allows:
    /// new datacenters and relays and changed settings of nodes that stay; each new member added as a non-voter; each new
    /// voter promoted (the driver waits for it to catch up); each voter that goes removed or demoted, after a transfer
    /// when it leads; relays and datacenters that go; the preferred leader, the candidates and the order of members last.
    /// Empty when the two are equal. A step that would make a membership invalid is put off until it no longer does (a new
    /// node taking a leaving node's address is added after that node leaves).
    /// </summary>
    /// <param name="file">The topology file: its cluster and quorum judge every intermediate membership.</param>
    /// <param name="currentLeader">The voter leading now.</param>
    /// <exception cref="ArgumentException">Either membership has problems, a node would change datacenter or between relay
    /// and member, or <paramref name="currentLeader"/> is not a voter of <paramref name="current"/>.</exception>
    /// <exception cref="InvalidOperationException">No order of safe steps reaches <paramref name="desired"/> (the message names what is left).</exception>
    public static IReadOnlyList<MembershipStep> Steps(TopologyConfig file, Membership current, Membership desired, string currentLeader)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(currentLeader);
        CheckInputs(file, current, desired, currentLeader);

        var steps = new List<MembershipStep>();
        var now = current;
        string leader = currentLeader;
        // Every move brings one node, datacenter or list closer to the desired one; this only guards against a bug looping.
        int limit = 4 * (current.Nodes.Count + desired.Nodes.Count + current.Datacenters.Count + desired.Datacenters.Count) + 16;
        while (!now.Equals(desired))
        {
            if (steps.Count > limit)
            {
                throw new InvalidOperationException($"no plan within {limit} steps; left: " + string.Join("; ", MembershipDiff.Between(now, desired)));
            }
            if (!TryNextMove(file, now, desired, ref leader, steps, out var next))
            {
                throw new InvalidOperationException("no safe next step; left: " + string.Join("; ", MembershipDiff.Between(now, desired)));
            }
            now = next;
        }
        return steps;
    }

    private static void CheckInputs(TopologyConfig file, Membership current, Membership desired, string currentLeader)
    {
        if (desired.Problems(file) is { Count: > 0 } desiredProblems)
        {
            throw new ArgumentException("the desired membership has problems:\n" + string.Join("\n", desiredProblems), nameof(desired));
        }
        if (current.Problems(file) is { Count: > 0 } currentProblems)
        {
            throw new ArgumentException("the current membership has problems:\n" + string.Join("\n", currentProblems), nameof(current));
        }
        if (!current.Voters.Contains(currentLeader, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{currentLeader}' is not a voter of the current membership, so it cannot be leading", nameof(currentLeader));
        }
        var moves = MembershipDiff.Between(current, desired).Where(c => c.Kind == MembershipChangeKind.NodeMoved).ToList();
        if (moves.Count > 0)
        {
            throw new ArgumentException("a node keeps its id only where it stays: remove it in one plan and add it back in another (" +
                string.Join("; ", moves) + ")", nameof(desired));
        }
    }

    /// <summary>Takes the first move, in plan order, whose result is valid; adds it (and a transfer before it when needed) to <paramref name="steps"/>.</summary>
    private static bool TryNextMove(TopologyConfig file, Membership now, Membership desired, ref string leader, List<MembershipStep> steps, out Membership next)
    {
        var voters = now.Voters.ToHashSet(StringComparer.Ordinal);
        foreach (var (kind, description, candidate, node) in Moves(now, desired))
        {
            var nextVoters = candidate.Voters.ToHashSet(StringComparer.Ordinal);
            if (nextVoters.Count(v => !voters.Contains(v)) + voters.Count(v => !nextVoters.Contains(v)) > 1)
            {
                continue;
            }
            if (candidate.TryApplyTo(file) is not { } topology)
            {
                continue;
            }
            if (!nextVoters.Contains(leader))
            {
                var before = now.ApplyTo(file);
                string? target = TransferTarget(before, topology, desired.PreferredLeader, nextVoters);
                if (target is null)
                {
                    continue;
                }
                steps.Add(new MembershipStep(MembershipStepKind.TransferLeadership, $"transfer leadership from {leader} to {target}", null, target));
                leader = target;
            }
            steps.Add(new MembershipStep(kind, description, candidate, node));
            next = candidate;
            return true;
        }
        next = now;
        return false;
    }

    /// <summary>A voter of both memberships that may lead in both; the desired preferred leader when it qualifies.</summary>
    private static string? TransferTarget(TopologyConfig before, TopologyConfig after, string desiredLeader, HashSet<string> nextVoters)
    {
        bool Fits(string id) => nextVoters.Contains(id) && before.CanLead(id) && after.CanLead(id);
        if (Fits(desiredLeader)) return desiredLeader;
        if (Fits(after.LeaderId)) return after.LeaderId;
        return after.Voters.FirstOrDefault(Fits);
    }

    /// <summary>Every move towards <paramref name="desired"/> that could come next, in plan order; the caller takes the first valid one.</summary>
    private static IEnumerable<(MembershipStepKind Kind, string Description, Membership Next, string? Node)> Moves(Membership now, Membership desired)
    {
        // (a) new datacenters, each with its relays and first member (a datacenter never stands without a member).
        foreach (var dc in desired.Datacenters)
        {
            if (now.Datacenters.Any(d => d.Name == dc.Name)) continue;
            var draft = new MembershipDraft(now);
            int at = InsertPosition(desired.Datacenters.Select(d => d.Name).ToList(), dc.Name, draft.Datacenters.Select(d => d.Name).ToList());
            string first = dc.Members[0];
            draft.Datacenters.Insert(at, (dc.Name, dc.Relays.ToList(), [first]));
            foreach (string relay in dc.Relays) draft.Nodes[relay] = desired.Nodes[relay];
            draft.Nodes[first] = desired.Nodes[first] with { Voter = false };
            string relays = dc.Relays.Count == 0 ? "" : $" with relays {string.Join(", ", dc.Relays)} and";
            yield return (MembershipStepKind.Change, $"add datacenter {dc.Name}{relays} with {first} as a non-voter", draft.ToMembership(), null);
        }
        // (a) new relays of datacenters that exist, at their priority position.
        foreach (var dc in desired.Datacenters)
        {
            foreach (string relay in dc.Relays)
            {
                if (now.Nodes.ContainsKey(relay) || now.Datacenters.FirstOrDefault(d => d.Name == dc.Name) is not { } existing) continue;
                var draft = new MembershipDraft(now);
                var relays = draft.Find(dc.Name)!.Value.Relays;
                relays.Insert(InsertPosition(dc.Relays, relay, existing.Relays), relay);
                draft.Nodes[relay] = desired.Nodes[relay];
                yield return (MembershipStepKind.Change, $"add relay {relay} to {dc.Name} at priority {IndexIn(relays, relay) + 1}", draft.ToMembership(), null);
            }
        }
        // (a) addresses, feed-from and max-learners of nodes that stay.
        foreach (var (id, node) in now.Nodes)
        {
            if (!desired.Nodes.TryGetValue(id, out var wanted)) continue;
            var settled = wanted with { Voter = node.Voter };
            if (settled.Equals(node)) continue;
            var draft = new MembershipDraft(now);
            draft.Nodes[id] = settled;
            var changes = MembershipDiff.Between(now, draft.ToMembership());
            yield return (MembershipStepKind.Change, "change " + string.Join(", ", changes.Select(c => c.ToString().TrimStart('~', ' '))), draft.ToMembership(), null);
        }
        // (a) relay priority order among the relays that stay; relays that go keep their place until they go.
        foreach (var dc in desired.Datacenters)
        {
            if (now.Datacenters.FirstOrDefault(d => d.Name == dc.Name) is not { } existing) continue;
            var kept = dc.Relays.Where(existing.Relays.Contains).ToList();
            if (kept.SequenceEqual(existing.Relays.Where(dc.Relays.Contains))) continue;
            var draft = new MembershipDraft(now);
            var relays = draft.Find(dc.Name)!.Value.Relays;
            var leaving = relays.Where(r => !dc.Relays.Contains(r)).ToList();
            relays.Clear();
            relays.AddRange(kept.Concat(leaving));
            yield return (MembershipStepKind.Change, $"reorder the relays of {dc.Name}: {string.Join(", ", relays)}", draft.ToMembership(), null);
        }
        // (b) new members (and a new preferred leader), each as a non-voter first.
        foreach (string id in desired.NodeIdsInOrder())
        {
            if (now.Nodes.ContainsKey(id) || desired.RoleOf(id) == NodeRole.Relay) continue;
            var node = desired.Nodes[id];
            var draft = new MembershipDraft(now);
            if (draft.Find(node.Datacenter) is not { } dc) continue;
            dc.Members.Add(id);
            draft.Nodes[id] = node with { Voter = false };
            yield return (MembershipStepKind.Change, $"add {id} to {node.Datacenter} as a non-voter", draft.ToMembership(), null);
        }
        // (c) promotions, one voter at a time.
        foreach (string id in desired.Voters)
        {
            if (!now.Nodes.TryGetValue(id, out var node) || node.Voter) continue;
            var draft = new MembershipDraft(now);
            draft.Nodes[id] = node with { Voter = true };
            yield return (MembershipStepKind.Promote, $"promote {id} to voter once it has caught up", draft.ToMembership(), id);
        }
        // (d) voters that go or stop voting. The preferred leader first hands that role on, a candidate leaves the
        // candidates; Steps puts a leadership transfer before the step when the node leads.
        var desiredVoters = desired.Voters.ToHashSet(StringComparer.Ordinal);
        foreach (string id in now.Voters)
        {
            if (desiredVoters.Contains(id)) continue;
            var draft = new MembershipDraft(now);
            if (id == now.PreferredLeader)
            {
                string? successor = desiredVoters.Contains(desired.PreferredLeader) && IsVotingMember(now, desired.PreferredLeader)
                    ? desired.PreferredLeader
                    : now.Voters.FirstOrDefault(v => v != id && desiredVoters.Contains(v) && now.Nodes[v].Publish is not null);
                if (successor is null) continue;
                draft.MakePreferredLeader(successor);
                yield return (MembershipStepKind.Change, $"make {successor} the preferred leader in place of {id}", draft.ToMembership(), null);
                continue;
            }
            if (draft.Candidates?.Remove(id) == true)
            {
                yield return (MembershipStepKind.Change, $"drop {id} from the leader candidates", draft.ToMembership(), null);
                continue;
            }
            yield return RemoveOrDemote(now, desired, id);
        }
        // (d) non-voting members that go, then (e) relays that go.
        foreach (string id in now.NodeIdsInOrder())
        {
            if (desired.Nodes.ContainsKey(id) || now.RoleOf(id) != NodeRole.Member || now.Nodes[id].Voter) continue;
            yield return RemoveOrDemote(now, desired, id);
        }
        foreach (string id in now.NodeIdsInOrder())
        {
            if (desired.Nodes.ContainsKey(id) || now.RoleOf(id) != NodeRole.Relay) continue;
            var draft = new MembershipDraft(now);
            draft.Remove(id);
            yield return (MembershipStepKind.Change, $"remove relay {id} from {now.Nodes[id].Datacenter}", draft.ToMembership(), null);
        }
        // (f) the preferred leader, the candidates, then whatever order is left: the desired membership itself.
        if (now.PreferredLeader != desired.PreferredLeader && IsVotingMember(now, desired.PreferredLeader))
        {
            var draft = new MembershipDraft(now);
            draft.MakePreferredLeader(desired.PreferredLeader);
            yield return (MembershipStepKind.Change, $"make {desired.PreferredLeader} the preferred leader", draft.ToMembership(), null);
        }
        if (!SameList(now.LeaderCandidates, desired.LeaderCandidates))
        {
            var draft = new MembershipDraft(now) { Candidates = desired.LeaderCandidates?.ToList() };
            string list = desired.LeaderCandidates is null ? "every voter" : string.Join(", ", desired.LeaderCandidates);
            yield return (MembershipStepKind.Change, $"set the leader candidates to {list}", draft.ToMembership(), null);
        }
        yield return (MembershipStepKind.Change, "put the members and relays in the desired order", desired, null);
    }

    private static (MembershipStepKind, string, Membership, string?) RemoveOrDemote(Membership now, Membership desired, string id)
    {
        var draft = new MembershipDraft(now);
        var node = now.Nodes[id];
        if (desired.Nodes.TryGetValue(id, out var wanted))
        {
            draft.Nodes[id] = node with { Voter = wanted.Voter };
            return (MembershipStepKind.Change, $"demote {id} to non-voter", draft.ToMembership(), null);
        }
        var goneDatacenters = draft.Remove(id);
        string also = goneDatacenters.Count == 0 ? "" : $", and datacenter {string.Join(", ", goneDatacenters)} with it";
        return (MembershipStepKind.Change, $"remove {(node.Voter ? "voter" : "non-voter")} {id} from {node.Datacenter}{also}", draft.ToMembership(), null);
    }

    private static bool IsVotingMember(Membership membership, string id) =>
        membership.RoleOf(id) == NodeRole.Member && membership.Nodes[id].Voter;

    private static bool SameList(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a is null ? b is null : b is not null && a.SequenceEqual(b, StringComparer.Ordinal);

    private static int IndexIn(IReadOnlyList<string> list, string item)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] == item) return i;
        }
        return -1;
    }

    /// <summary>Where <paramref name="item"/> goes in <paramref name="existing"/>: after the last entry that precedes it in <paramref name="desiredOrder"/>.</summary>
    private static int InsertPosition(IReadOnlyList<string> desiredOrder, string item, IReadOnlyList<string> existing)
    {
        int at = 0;
        foreach (string before in desiredOrder)
        {
            if (before == item) break;
            int index = IndexIn(existing, before);
            if (index >= 0) at = Math.Max(at, index + 1);
        }
        return at;
    }
}
