namespace GeoRelay.Engines.Consensus;

/// <summary>
/// Raft leader election for one voter, sans-IO: calls in (time passed, a message, what the data path heard),
/// messages to send out (<see cref="Outbox"/>) and events to log (<see cref="Events"/>). It owns no socket, thread
/// or clock; the driver calls it from one thread at a time, sends and logs what it left, then clears both lists.
/// </summary>
/// <remarks>
/// <para>Terms are the epochs on the wire. Term and vote go to <see cref="IElectionStore.Save"/>, which returns once
/// they are durable, before this node answers a vote or sends anything of a new term; a call that throws (a disk
/// failure) leaves the outbox without the message it was about to send, and the driver stops the node.</para>
/// <para>Rules beyond the Raft paper (as in etcd): pre-vote, leader stickiness (a voter that heard its leader within
/// the election timeout helps no one depose it, unless the leader itself asked through a transfer),
/// check-quorum, leadership transfer, and a set of voters that may lead. docs/consensus.md explains each and why
/// it is safe.</para>
/// <para>The voter list may include this node or not; this node always counts as a voter. A single-voter cluster
/// elects itself on its first <see cref="OnTick"/> (its first deadline is the construction time).</para>
/// </remarks>
public sealed partial class Election
{
    // The voter set: replaced whole by Reconfigure when the cluster's membership changes.
    private string[] _others = [];
    /// <summary>Every voter, this node included when it votes, in the order given: who campaigns first when a leader's link drops.</summary>
    private string[] _campaignOrder = [];
    /// <summary>This node's place among the leader candidates in <see cref="_campaignOrder"/> (-1: it may not lead), and how many there are.</summary>
    private int _candidateRank;
    private int _candidateCount;
    private Dictionary<string, int> _otherSlots = new(StringComparer.Ordinal);
    private IReadOnlySet<string>? _candidates;
    /// <summary>False for a non-voting member (catching up before promotion, or removed): it never campaigns and its own vote does not count.</summary>
    private bool _selfVotes = true;
    private readonly IElectionStore _store;
    private readonly ElectionOptions _options;
    private readonly Func<LogPosition> _lastLog;
    private readonly Random _random;
    private readonly long _timeoutMicros;

    /// <summary>Follower and candidates: when to campaign if nothing happens first.</summary>
    private long _electionDeadline;
    /// <summary>When <see cref="Leader"/> (of the current term) was last heard from.</summary>
    private long _leaderHeardMicros;

    /// <summary>Who granted and who refused in the current (pre-)vote round, in arrival order.</summary>
    private readonly List<string> _granted = [];
    private readonly List<string> _refused = [];

    /// <summary>Leader: when each other voter (by slot) was last reported active in this term.</summary>
    private long[] _lastActive = [];
    private long[] _activeScratch = [];

    private string? _transferTarget;
    private long _transferDeadline;
    private bool _timeoutNowSent;

    /// <param name="self">This voter's node id.</param>
    /// <param name="voters">Every voter of the cluster (this node's id may be in it or not).</param>
    /// <param name="store">Where term and vote live; loaded here.</param>
    /// <param name="options">Timeouts and features; see <see cref="ElectionOptions"/>.</param>
    /// <param name="lastLog">This node's last log position, read whenever a vote is asked or answered.</param>
    /// <param name="random">Source of the randomized election timeouts (seeded in simulations).</param>
    /// <param name="nowMicros">Current monotonic time in microseconds.</param>
    /// <param name="selfVotes">False for a non-voting member: it follows and never campaigns (see <see cref="Reconfigure"/>).</param>
    public Election(string self, IReadOnlyList<string> voters, IElectionStore store, ElectionOptions options,
        Func<LogPosition> lastLog, Random random, long nowMicros, bool selfVotes = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(self);
        ArgumentNullException.ThrowIfNull(voters);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(lastLog);
        ArgumentNullException.ThrowIfNull(random);
        options.Validate();

        Self = self;
        _store = store;
        _options = options;
        _lastLog = lastLog;
        _random = random;
        _timeoutMicros = (long)options.ElectionTimeout.TotalMicroseconds;
        SetVoters(voters, options.Candidates, selfVotes, nameof(voters));

        var state = store.Load();
        Term = state.Term;
        VotedFor = state.VotedFor;
        Role = RaftRole.Follower;
        _leaderHeardMicros = long.MinValue;
        // Alone, there is no leader to wait for: campaign on the first tick.
        _electionDeadline = _others.Length == 0 ? nowMicros : nowMicros + RandomTimeout();
        Emit(ElectionEventKind.BecameFollower, VotedFor, VotedFor is null ? "started" : $"started (voted for {VotedFor} in term {Term})");
    }

    public string Self { get; }
    public ulong Term { get; private set; }
    public RaftRole Role { get; private set; }
    /// <summary>The leader of <see cref="Term"/> as far as this node knows (itself when leading), or null.</summary>
    public string? Leader { get; private set; }
    /// <summary>Whom this node voted for in <see cref="Term"/>, or null.</summary>
    public string? VotedFor { get; private set; }
    /// <summary>Votes needed to win: a majority of all voters, this node included when it votes.</summary>
    public int Quorum { get; private set; }

    /// <summary>Whether this node is a voter of the configuration in use.</summary>
    public bool SelfVotes => _selfVotes;

    /// <summary>The other voters of the configuration in use.</summary>
    public IReadOnlyList<string> OtherVoters => _others;

    private int VoterCount => _others.Length + (_selfVotes ? 1 : 0);

    /// <summary>
    /// The cluster's membership changed (Raft §4.1: a node uses the newest configuration in its log, committed or not):
    /// from now on votes, check-quorum and candidacy count <paramref name="voters"/>. This node votes only when listed.
    /// A leader keeps what it knew of the voters that stay; a round in progress keeps the answers of voters that stay,
    /// and a candidate that is no longer a voter gives up. Term and vote are untouched.
    /// </summary>
    public void Reconfigure(IReadOnlyList<string> voters, IReadOnlySet<string>? candidates, long nowMicros)
    {
        var lastActive = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < _others.Length; i++) lastActive[_others[i]] = _lastActive[i];
        bool selfVotes = voters.Contains(Self);
        SetVoters(voters, candidates, selfVotes, nameof(voters));
        for (int i = 0; i < _others.Length; i++)
            _lastActive[i] = lastActive.TryGetValue(_others[i], out long at) ? at : nowMicros; // a new voter gets a full timeout
        _granted.RemoveAll(v => v != Self ? !_otherSlots.ContainsKey(v) : !selfVotes);
        _refused.RemoveAll(v => !_otherSlots.ContainsKey(v));
        Emit(ElectionEventKind.Reconfigured, null, $"voters now {string.Join(", ", _campaignOrder)}{(selfVotes ? "" : $" ({Self} does not vote)")}; {Quorum} make a quorum");
        if (Role is RaftRole.PreCandidate or RaftRole.Candidate && !CanLead(Self))
        {
            Role = RaftRole.Follower;
            Emit(ElectionEventKind.BecameFollower, null, "no longer a voter that may lead");
        }
        if (_transferTarget is not null && (!_otherSlots.ContainsKey(_transferTarget) || !CanLead(_transferTarget)))
            AbortTransfer($"{_transferTarget} is no longer a voter that may lead");
    }

    private void SetVoters(IReadOnlyList<string> voters, IReadOnlySet<string>? candidates, bool selfVotes, string parameter)
    {
        ArgumentNullException.ThrowIfNull(voters);
        var others = new List<string>();
        var slots = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var voter in voters)
        {
            if (string.IsNullOrEmpty(voter)) throw new ArgumentException("a voter id is empty", parameter);
            if (voter == Self) continue;
            if (!slots.TryAdd(voter, others.Count)) throw new ArgumentException($"voter '{voter}' is listed twice", parameter);
            others.Add(voter);
        }
        string[] order = !selfVotes ? [.. others] : voters.Contains(Self) ? voters.ToArray() : [.. voters, Self];
        var ranked = candidates is null ? order : Array.FindAll(order, candidates.Contains);
        if (ranked.Length == 0)
            throw new ArgumentException(candidates is null ? "no voter at all, so none could ever lead" : $"no voter is among the leader candidates ({string.Join(", ", candidates)}), so none could ever lead", parameter);
        _others = others.ToArray();
        _otherSlots = slots;
        _campaignOrder = order;
        _candidates = candidates;
        _selfVotes = selfVotes;
        _candidateCount = ranked.Length;
        _candidateRank = Array.IndexOf(ranked, Self);
        _lastActive = new long[_others.Length];
        _activeScratch = new long[_others.Length];
        Quorum = VoterCount / 2 + 1;
    }
    /// <summary>The voter a transfer started by this node is handing leadership to, until it completes or aborts.</summary>
    public string? TransferTarget => _transferTarget;

    /// <summary>Messages for other voters, in order. The driver sends them, then clears the list.</summary>
    public List<ElectionMessage> Outbox { get; } = [];

    /// <summary>What happened, in order. The driver logs them, then clears the list.</summary>
    public List<ElectionEvent> Events { get; } = [];

    /// <summary>When <see cref="OnTick"/> is next needed (long.MaxValue: only when something else happens first). Ticking earlier is harmless.</summary>
    public long NextTickMicros
    {
        get
        {
            long next = Role == RaftRole.Leader
                ? (_options.CheckQuorum ? QuorumDeadline() : long.MaxValue)
                : _electionDeadline;
            return _transferTarget is null ? next : Math.Min(next, _transferDeadline);
        }
    }

    /// <summary>May <paramref name="node"/> lead: a voter in <see cref="ElectionOptions.Candidates"/>, or that is unset?</summary>
    public bool CanLead(string node) => (node == Self ? _selfVotes : _otherSlots.ContainsKey(node)) && (_candidates is null || _candidates.Contains(node));

    public bool IsVoter(string node) => node == Self ? _selfVotes : _otherSlots.ContainsKey(node);

    public void OnTick(long nowMicros)
    {
        if (_transferTarget is not null && nowMicros >= _transferDeadline)
            AbortTransfer($"{_transferTarget} did not take over within the election timeout");
        if (Role == RaftRole.Leader)
        {
            if (_options.CheckQuorum && nowMicros >= QuorumDeadline())
                StepDownCore($"check-quorum: heard from {ActiveVoters(nowMicros)} of {VoterCount} voters within the election timeout, {Quorum} needed", nowMicros);
        }
        else if (nowMicros >= _electionDeadline)
        {
            if (CanLead(Self))
                Campaign(nowMicros, transfer: false);
            else
                ResetElectionTimer(nowMicros); // not a leader candidate: keeps following and voting
        }
    }

    /// <summary>
    /// Follower side of the data path: an Append or Heartbeat of <paramref name="term"/> from <paramref name="leader"/>
    /// arrived (directly or through a relay). A newer term is adopted durably; an older one is ignored (the data
    /// path fences it).
    /// </summary>
    public void OnLeaderHeard(string leader, ulong term, long nowMicros)
    {
        if (term < Term) return;
        if (leader == Self || !_otherSlots.ContainsKey(leader))
        {
            Emit(ElectionEventKind.Ignored, leader, $"{leader} reported as leader of term {term}, but it is {(leader == Self ? "this node" : "not a voter")}");
            return;
        }
        if (term > Term)
        {
            AdoptTerm(term, null, nowMicros, $"heard leader {leader}");
        }
        else if (Role == RaftRole.Leader)
        {
            Emit(ElectionEventKind.Ignored, leader, $"{leader} reported as leader of term {term}, which this node leads");
            return;
        }
        else if (Leader is not null && Leader != leader)
        {
            Emit(ElectionEventKind.Ignored, leader, $"{leader} reported as leader of term {term}, which {Leader} leads");
            return;
        }
        _leaderHeardMicros = nowMicros;
        ResetElectionTimer(nowMicros);
        if (Leader != leader || Role != RaftRole.Follower)
        {
            Leader = leader;
            Role = RaftRole.Follower;
            Emit(ElectionEventKind.BecameFollower, leader, $"following {leader}");
        }
        if (_transferTarget is not null)
        {
            if (leader == _transferTarget)
                EndTransfer(ElectionEventKind.TransferCompleted, $"{leader} leads term {term}");
            else
                AbortTransfer($"{leader} leads term {term} instead of {_transferTarget}");
        }
    }

    /// <summary>
    /// The voter link to <paramref name="leader"/> closed: its process died (the kernel closes its sockets) or the
    /// network reset the link. A closed link is news a silent one is not, so this node does not wait out the election
    /// timeout: it stops backing that leader (it grants pre-votes and votes again) and campaigns after a short delay
    /// set by its rank among the leader candidates, so that one asks first and the others vote for it instead of
    /// splitting the vote. Only timing changes, never what a vote needs; a leader that is in fact alive keeps the
    /// voters that still hear it, and they refuse the pre-vote.
    /// </summary>
    public void OnLeaderLinkLost(string leader, long nowMicros)
    {
        if (Role != RaftRole.Follower || Leader != leader) return;
        Leader = null;
        _leaderHeardMicros = long.MinValue;
        long soon = nowMicros + QuickCampaignDelay(leader);
        if (CanLead(Self) && soon < _electionDeadline) _electionDeadline = soon;
        Emit(ElectionEventKind.LeaderLost, leader, CanLead(Self) ? $"its link closed; campaigning in {(_electionDeadline - nowMicros) / 1000} ms unless another leads first" : "its link closed");
    }

    /// <summary>Rank r among the candidates other than the lost leader waits r quarter timeouts, plus a little jitter.</summary>
    private long QuickCampaignDelay(string lostLeader)
    {
        int rank = 0;
        foreach (var voter in _campaignOrder)
        {
            if (voter == Self) break;
            if (voter != lostLeader && CanLead(voter)) rank++;
        }
        long step = _timeoutMicros / 4;
        return rank * step + _random.NextInt64(step / 4 + 1);
    }

    /// <summary>Leader side of the data path: <paramref name="voter"/> is alive and following this term (an ack, directly or aggregated by a relay).</summary>
    public void OnVoterActive(string voter, long nowMicros)
    {
        if (Role != RaftRole.Leader || !_otherSlots.TryGetValue(voter, out int slot)) return;
        if (nowMicros > _lastActive[slot]) _lastActive[slot] = nowMicros;
    }

    /// <summary>A higher term was seen anywhere (a fenced answer, a Hello): become a follower in it, durably.</summary>
    public void ObserveTerm(ulong term, long nowMicros)
    {
        if (term > Term) AdoptTerm(term, null, nowMicros, $"saw term {term}");
    }

    /// <summary>Stops leading (for maintenance or shutdown); false when not leading.</summary>
    public bool StepDown(string reason, long nowMicros)
    {
        if (Role != RaftRole.Leader) return false;
        StepDownCore(reason, nowMicros);
        return true;
    }

    private void Campaign(long nowMicros, bool transfer)
    {
        if (_options.PreVote && !transfer)
            BecomePreCandidate(nowMicros);
        else
            BecomeCandidate(nowMicros, transfer);
    }

    private void BecomePreCandidate(long nowMicros)
    {
        var last = LastLogWithinTerm(nowMicros);
        Role = RaftRole.PreCandidate;
        Leader = null;
        StartRound(nowMicros);
        Emit(ElectionEventKind.BecamePreCandidate, null, $"asking for pre-votes for term {Term + 1} with log {last}");
        if (_granted.Count >= Quorum)
        {
            BecomeCandidate(nowMicros, transfer: false);
            return;
        }
        foreach (var voter in _others)
            Outbox.Add(new ElectionMessage(ElectionMessageKind.VoteRequest, Self, voter, Term + 1, last, PreVote: true, Granted: false, Transfer: false, null));
    }

    private void BecomeCandidate(long nowMicros, bool transfer)
    {
        var last = LastLogWithinTerm(nowMicros);
        ulong term = Term + 1;
        Persist(term, Self); // before any request of the new term leaves
        Term = term;
        VotedFor = Self;
        Role = RaftRole.Candidate;
        Leader = null;
        StartRound(nowMicros);
        Emit(ElectionEventKind.TermChanged, Self, transfer ? "campaigning: the leader handed over" : "campaigning");
        Emit(ElectionEventKind.BecameCandidate, null, $"asking for votes with log {last}");
        if (_granted.Count >= Quorum)
        {
            BecomeLeader(nowMicros);
            return;
        }
        foreach (var voter in _others)
            Outbox.Add(new ElectionMessage(ElectionMessageKind.VoteRequest, Self, voter, term, last, PreVote: false, Granted: false, Transfer: transfer, null));
    }

    private void BecomeLeader(long nowMicros)
    {
        Role = RaftRole.Leader;
        Leader = Self;
        _leaderHeardMicros = nowMicros;
        // Every voter gets a full election timeout to be heard from before check-quorum judges.
        Array.Fill(_lastActive, nowMicros);
        Emit(ElectionEventKind.BecameLeader, null, $"votes from {string.Join(", ", _granted)} ({Quorum} of {VoterCount} needed)");
    }

    private void StepDownCore(string reason, long nowMicros)
    {
        Role = RaftRole.Follower;
        Leader = null;
        ResetElectionTimer(nowMicros);
        Emit(ElectionEventKind.SteppedDown, null, reason);
        Emit(ElectionEventKind.BecameFollower, null, "stepped down");
        if (_transferTarget is not null) AbortTransfer($"stepped down before {_transferTarget} took over: {reason}");
    }

    /// <summary>Moves to a newer term as a follower, durably, with <paramref name="votedFor"/> as this term's vote.</summary>
    private void AdoptTerm(ulong term, string? votedFor, long nowMicros, string reason)
    {
        Persist(term, votedFor);
        var was = Role;
        Term = term;
        VotedFor = votedFor;
        Leader = null;
        Role = RaftRole.Follower;
        // Only a leader needs a fresh deadline. Anyone else keeps the one running: were a newer term to restart
        // it, a voter whose log is behind (and who can never win) could keep an up-to-date one from campaigning.
        if (was == RaftRole.Leader) ResetElectionTimer(nowMicros);
        Emit(ElectionEventKind.TermChanged, null, reason);
        if (was == RaftRole.Leader) Emit(ElectionEventKind.SteppedDown, null, $"newer term {term}: {reason}");
        if (was != RaftRole.Follower) Emit(ElectionEventKind.BecameFollower, null, reason);
        // A transfer in flight stays open: the newer term is most likely its target's election.
    }

    private void Persist(ulong term, string? votedFor)
    {
        if (term < Term) throw new InvalidOperationException($"{Self}: term would go back from {Term} to {term}");
        if (term == Term && votedFor == VotedFor) return;
        _store.Save(new TermVote(term, votedFor));
    }

    /// <summary>The last log position; a log entry of a term above ours (a data path that skipped <see cref="OnLeaderHeard"/>) moves us to that term first.</summary>
    private LogPosition LastLogWithinTerm(long nowMicros)
    {
        var last = _lastLog();
        if (last.Term > Term) AdoptTerm(last.Term, null, nowMicros, $"the log holds an entry of term {last.Term}");
        return last;
    }

    private void StartRound(long nowMicros)
    {
        _granted.Clear();
        _refused.Clear();
        if (_selfVotes) _granted.Add(Self);
        ResetElectionTimer(nowMicros);
    }

    private void ResetElectionTimer(long nowMicros) => _electionDeadline = nowMicros + RandomTimeout();

    /// <summary>
    /// In [T, 2T), as in Raft, but each leader candidate draws within its own slice of it, by rank (the candidates in the
    /// order given; the first gets [T, T + T/n)): when a leader falls silent, the candidates wake one after the other
    /// instead of at random, so two rarely ask at once and split the vote, and the first in the order (the preferred
    /// leader, when it is up) usually wins. A voter that may not lead draws in the whole range (it never campaigns).
    /// </summary>
    private long RandomTimeout()
    {
        if (_candidateRank < 0) return _timeoutMicros + _random.NextInt64(_timeoutMicros);
        long slice = _timeoutMicros / _candidateCount;
        return _timeoutMicros + _candidateRank * slice + _random.NextInt64(slice);
    }

    /// <summary>Has this node heard its leader (or been it) within the election timeout?</summary>
    private bool InLease(long nowMicros) =>
        Role == RaftRole.Leader || (Leader is not null && nowMicros - _leaderHeardMicros < _timeoutMicros);

    private string LeaseReason(long nowMicros) => Role == RaftRole.Leader
        ? $"this node leads term {Term}"
        : $"leader {Leader} was heard {(nowMicros - _leaderHeardMicros) / 1000} ms ago, within the election timeout";

    /// <summary>Leader: when, absent new reports, fewer than a quorum (self included) will have been active within the timeout.</summary>
    private long QuorumDeadline()
    {
        int needed = Quorum - (_selfVotes ? 1 : 0);
        if (needed == 0) return long.MaxValue;
        if (needed > _others.Length) return long.MinValue; // too few voters left to ever make a quorum
        _lastActive.CopyTo(_activeScratch, 0);
        Array.Sort(_activeScratch);
        // The needed-th most recent report keeps the quorum until it is a timeout old.
        return _activeScratch[^needed] + _timeoutMicros;
    }

    private int ActiveVoters(long nowMicros)
    {
        int active = _selfVotes ? 1 : 0;
        foreach (long at in _lastActive)
            if (nowMicros - at < _timeoutMicros) active++;
        return active;
    }

    private void Emit(ElectionEventKind kind, string? peer, string? reason) =>
        Events.Add(new ElectionEvent(kind, Term, Self, peer, reason));
}
