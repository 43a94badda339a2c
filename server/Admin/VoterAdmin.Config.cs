using GeoRelay.Engines.Consensus;
using GeoRelay.Topology;

namespace GeoRelay.Server.Admin;

/// <summary>The <c>/config</c> routes of a voter: its configuration history, and changes proposed to it while it leads.</summary>
internal sealed partial class VoterAdmin
{
    public override (ConfigReport? Report, int Status, AdminError? Error) Configuration()
    {
        var engine = node.Engine;
        var (term, leader, acting, committedIndex, latestIndex, committed, latest) = node.Host.Invoke(_ =>
            (engine.Election.Term, engine.Election.Leader, engine.Configuration, engine.Memberships.CommittedIndex, engine.Memberships.LatestIndex,
             Membership.Of(engine.Memberships.Committed), engine.Memberships.LatestMembership));
        var nonVoters = new List<string>();
        foreach (var (id, n) in committed.Nodes)
            if (!n.Voter && committed.RoleOf(id) == NodeRole.Member) nonVoters.Add(id);
        nonVoters.Sort(StringComparer.Ordinal);
        bool differs = latestIndex != committedIndex && !latest.Equals(committed);
        return (new ConfigReport(NodeId, leader, AdminOf(acting, leader), term, committedIndex, latestIndex,
            committed.ToYaml(), differs ? latest.ToYaml() : null, committed.Voters, nonVoters,
            Convert.ToBase64String(committed.Encode()), differs ? Convert.ToBase64String(latest.Encode()) : null), 200, null);
    }

    public override (ConfigProposed? Proposed, int Status, AdminError? Error) ProposeMembership(Membership next)
    {
        var engine = node.Engine;
        var (index, term, refusal, busy, notLeader) = node.Host.Invoke(_ =>
        {
            var election = engine.Election;
            if (election.Role != RaftRole.Leader) return (0UL, election.Term, (string?)null, false, NotLeader(election.Term, election.Leader, engine.Configuration));
            // Refusals that pass by themselves (a new leader's first commit, the previous change committing, a transfer
            // finishing) are told apart from the others, so that a client retries those only.
            bool passing = election.TransferTarget is not null || engine.Memberships.Uncommitted > 0 || engine.Leader is { CommittedOwnEpoch: false };
            ulong at = engine.ProposeMembership(next, out var why);
            return (at, election.Term, why, passing, (AdminError?)null);
        });
        if (notLeader is not null) return (null, 421, notLeader);
        if (refusal is not null && busy) return (null, 503, new AdminError("busy", $"{NodeId} cannot take a membership change yet: {refusal}"));
        if (refusal is not null) return (null, 409, new AdminError("refused", $"{NodeId} refused the membership: {refusal}"));
        return (new ConfigProposed(index, term), 200, null);
    }

    public override (ConfigProgress? Progress, int Status, AdminError? Error) ProgressOf(string member)
    {
        var engine = node.Engine;
        var (progress, known, notLeader) = node.Host.Invoke(_ =>
        {
            if (engine.Election.Role != RaftRole.Leader || engine.ProgressOf(member) is not { } p)
                return (default((bool, ulong, ulong, ulong)), false, NotLeader(engine.Election.Term, engine.Election.Leader, engine.Configuration));
            return (p, engine.Configuration.Nodes.ContainsKey(member), (AdminError?)null);
        });
        if (notLeader is not null) return (null, 421, notLeader);
        if (!known) return (null, 404, new AdminError("not-found", $"'{member}' is not a node of the configuration {NodeId} acts on"));
        var (reachable, durable, last, commit) = progress;
        return (new ConfigProgress(member, reachable, durable, last, commit), 200, null);
    }

    /// <summary>A voter that does not lead names the leader it knows, and where that one's admin endpoint is.</summary>
    private AdminError NotLeader(ulong term, string? leader, TopologyConfig acting) => new("not-leader",
        leader is null
            ? $"{NodeId} does not lead, and no leader is known in term {term}; ask again shortly"
            : $"{NodeId} does not lead; {leader} leads term {term}: ask its admin endpoint",
        leader, AdminOf(acting, leader));

    private static string? AdminOf(TopologyConfig config, string? id) =>
        id is not null && config.Nodes.TryGetValue(id, out var n) && n.Admin is { } admin ? admin.ToString() : null;
}
