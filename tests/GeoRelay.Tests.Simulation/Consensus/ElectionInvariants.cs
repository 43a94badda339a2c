using GeoRelay.Engines.Consensus;

namespace GeoRelay.Tests.Simulation.Consensus;

[Flags]
internal enum ElectionChecks
{
    None = 0,
    OneLeaderPerTerm = 1,
    TermNeverDecreases = 2,
    OneVotePerTerm = 4,
    LeaderElectedByUpToDateMajority = 8,
    LeaderHasEveryCommittedEntry = 16,
    CommittedEntriesNeverChange = 32,
    OnlyCandidatesLead = 64,
    All = 127,
}

/// <summary>
/// Safety properties, checked after every step of a run against what the run has seen so far (so they hold
/// across crashes and restarts, not only within one node's lifetime).
/// </summary>
internal sealed class ElectionInvariants(ElectionChecks checks, int quorum, IReadOnlySet<string>? candidates)
{
    private readonly Dictionary<ulong, string> _leaders = [];
    private readonly Dictionary<string, ulong> _highestTerm = [];
    private readonly Dictionary<(string Voter, ulong Term), string> _votes = [];
    private readonly Dictionary<(string Voter, ulong Term), LogPosition> _logWhenGranted = [];
    private readonly Dictionary<ulong, ulong> _committed = []; // index -> term

    public int LeadersElected => _leaders.Count;
    public IReadOnlyDictionary<ulong, string> Leaders => _leaders;

    /// <summary>Called for each event as it is drained, while the voter's log is as it was when it voted.</summary>
    public void OnEvent(SimVoter voter, in ElectionEvent e)
    {
        if (e.Kind == ElectionEventKind.VoteGranted) _logWhenGranted[(voter.Id, e.Term)] = voter.LastLog;
    }

    public void OnCommitted(ulong index, ulong term)
    {
        if (_committed.TryGetValue(index, out var earlier))
        {
            if (earlier != term && Has(ElectionChecks.CommittedEntriesNeverChange))
                throw new InvariantBrokenException("committed entries never change", $"index {index} was committed in term {earlier}, now in term {term}");
            return;
        }
        _committed[index] = term;
    }

    public void AfterStep(IEnumerable<SimVoter> voters)
    {
        foreach (var voter in voters)
        {
            var e = voter.Election;
            if (e is null) continue;
            if (Has(ElectionChecks.TermNeverDecreases))
            {
                if (_highestTerm.TryGetValue(voter.Id, out var highest) && e.Term < highest)
                    throw new InvariantBrokenException("a term never decreases", $"{voter.Id} is at term {e.Term} after term {highest}");
            }
            _highestTerm[voter.Id] = Math.Max(e.Term, _highestTerm.GetValueOrDefault(voter.Id));
            if (e.VotedFor is { } votedFor)
            {
                if (_votes.TryGetValue((voter.Id, e.Term), out var earlier))
                {
                    if (earlier != votedFor && Has(ElectionChecks.OneVotePerTerm))
                        throw new InvariantBrokenException("one vote per term", $"{voter.Id} voted for {earlier} and then for {votedFor} in term {e.Term}");
                }
                else
                {
                    _votes[(voter.Id, e.Term)] = votedFor;
                }
            }
        }
        foreach (var voter in voters)
        {
            var e = voter.Election;
            if (e is null || e.Role != RaftRole.Leader) continue;
            if (_leaders.TryGetValue(e.Term, out var leader))
            {
                if (leader != voter.Id && Has(ElectionChecks.OneLeaderPerTerm))
                    throw new InvariantBrokenException("one leader per term", $"{leader} and {voter.Id} both led term {e.Term}");
                continue;
            }
            _leaders[e.Term] = voter.Id;
            CheckNewLeader(voter, e.Term);
        }
    }

    private void CheckNewLeader(SimVoter leader, ulong term)
    {
        if (Has(ElectionChecks.OnlyCandidatesLead) && candidates is not null && !candidates.Contains(leader.Id))
            throw new InvariantBrokenException("only candidates lead", $"{leader.Id} leads term {term} but is not among the candidates");
        if (Has(ElectionChecks.LeaderElectedByUpToDateMajority))
        {
            var voters = new List<string>();
            foreach (var ((voter, t), candidate) in _votes)
                if (t == term && candidate == leader.Id) voters.Add(voter);
            if (voters.Count < quorum)
                throw new InvariantBrokenException("a leader was elected by a majority", $"{leader.Id} leads term {term} with votes from {string.Join(", ", voters)} only ({quorum} needed)");
            foreach (var voter in voters)
            {
                if (voter == leader.Id) continue;
                if (_logWhenGranted.TryGetValue((voter, term), out var theirs) && theirs > leader.LastLog)
                    throw new InvariantBrokenException("a leader was elected by a majority", $"{voter} voted for {leader.Id} in term {term} with log {theirs}, ahead of the leader's {leader.LastLog}");
            }
        }
        if (Has(ElectionChecks.LeaderHasEveryCommittedEntry))
        {
            foreach (var (index, t) in _committed)
            {
                if (index > (ulong)leader.Log.Count || leader.Log[(int)index - 1] != t)
                    throw new InvariantBrokenException("a leader has every committed entry",
                        $"{leader.Id} leads term {term} without committed entry {index} of term {t} (its log ends at {leader.LastLog})");
            }
        }
    }

    private bool Has(ElectionChecks check) => (checks & check) != 0;
}
