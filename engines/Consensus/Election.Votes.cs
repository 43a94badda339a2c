namespace GeoRelay.Engines.Consensus;

public sealed partial class Election
{
    /// <summary>A message from another voter, as the voter mesh delivered it.</summary>
    public void OnMessage(ElectionMessage message, long nowMicros)
    {
        if (message.To != Self)
            throw new ArgumentException($"{message.Kind} for {message.To} was delivered to {Self}", nameof(message));
        if (!_otherSlots.ContainsKey(message.From))
        {
            Emit(ElectionEventKind.Ignored, message.From, $"{message.Kind} from {message.From}, which is not another voter");
            return;
        }
        switch (message.Kind)
        {
            case ElectionMessageKind.VoteRequest when message.PreVote:
                OnPreVoteRequest(message, nowMicros);
                break;
            case ElectionMessageKind.VoteRequest:
                OnVoteRequest(message, nowMicros);
                break;
            case ElectionMessageKind.VoteResponse:
                OnVoteResponse(message, nowMicros);
                break;
            case ElectionMessageKind.TimeoutNow:
                OnTimeoutNow(message, nowMicros);
                break;
            default:
                throw new ArgumentException($"unknown election message kind {message.Kind} from {message.From}", nameof(message));
        }
    }

    /// <summary>Would we vote for the sender in Term + 1? Changes nothing here, whatever the answer.</summary>
    private void OnPreVoteRequest(ElectionMessage request, long nowMicros)
    {
        var ours = _lastLog();
        string? refusal =
            request.Term <= Term ? $"pre-vote for term {request.Term} is not above our term {Term}"
            : !CanLead(request.From) ? $"{request.From} is not a leader candidate"
            : InLease(nowMicros) ? LeaseReason(nowMicros)
            : request.LastLog < ours ? $"its log {request.LastLog} is behind ours {ours}"
            : null;
        Answer(request, ours, refusal is null ? request.Term : Term, refusal);
    }

    private void OnVoteRequest(ElectionMessage request, long nowMicros)
    {
        var ours = _lastLog();
        string candidate = request.From;
        if (request.Term < Term)
        {
            Answer(request, ours, Term, $"term {request.Term} is older than ours {Term}");
            return;
        }
        if (request.Term > Term)
        {
            // Stickiness: a voter that hears a healthy leader does not even take up the newer term, so a node
            // that was cut off cannot depose the leader by campaigning. Only the leader's own handover passes.
            if (!request.Transfer && InLease(nowMicros))
            {
                Answer(request, ours, Term, LeaseReason(nowMicros));
                return;
            }
            string? refused = VoteRefusal(candidate, request.LastLog, ours);
            // One save covers the newer term and the vote, before the answer leaves.
            AdoptTerm(request.Term, refused is null ? candidate : null, nowMicros, $"vote request from {candidate}");
            if (refused is null) ResetElectionTimer(nowMicros);
            Answer(request, ours, Term, refused);
            return;
        }
        string? refusal =
            VotedFor is not null && VotedFor != candidate ? $"already voted for {VotedFor} in term {Term}"
            : VotedFor is null && Leader is not null ? $"already following {Leader} in term {Term}"
            : VoteRefusal(candidate, request.LastLog, ours);
        if (refusal is null)
        {
            Persist(Term, candidate);
            VotedFor = candidate;
            ResetElectionTimer(nowMicros);
        }
        Answer(request, ours, Term, refusal);
    }

    private string? VoteRefusal(string candidate, LogPosition theirs, LogPosition ours) =>
        !CanLead(candidate) ? $"{candidate} is not a leader candidate"
        : theirs < ours ? $"its log {theirs} is behind ours {ours}"
        : null;

    private void Answer(ElectionMessage request, LogPosition ours, ulong term, string? refusal)
    {
        bool granted = refusal is null;
        var kind = request.PreVote
            ? (granted ? ElectionEventKind.PreVoteGranted : ElectionEventKind.PreVoteRefused)
            : (granted ? ElectionEventKind.VoteGranted : ElectionEventKind.VoteRefused);
        Events.Add(new ElectionEvent(kind, request.Term, Self, request.From, refusal));
        Outbox.Add(new ElectionMessage(ElectionMessageKind.VoteResponse, Self, request.From, term, ours,
            request.PreVote, granted, Transfer: false, refusal));
    }

    private void OnVoteResponse(ElectionMessage response, long nowMicros)
    {
        // A granted pre-vote carries the term asked for, which is ours + 1; anything else newer is a real term.
        if (response.Term > Term && !(response.PreVote && response.Granted))
        {
            AdoptTerm(response.Term, null, nowMicros, $"{response.From} answered with term {response.Term}");
            return;
        }
        bool counts = Role switch
        {
            RaftRole.PreCandidate => response.PreVote && (response.Granted ? response.Term == Term + 1 : response.Term <= Term),
            RaftRole.Candidate => !response.PreVote && response.Term == Term,
            _ => false,
        };
        if (!counts) return; // an answer to an earlier round, or after this node moved on
        var tally = response.Granted ? _granted : _refused;
        if (!tally.Contains(response.From)) tally.Add(response.From);
        if (_granted.Count >= Quorum)
        {
            if (Role == RaftRole.PreCandidate)
                BecomeCandidate(nowMicros, transfer: false);
            else
                BecomeLeader(nowMicros);
        }
        else if (VoterCount - _refused.Count < Quorum)
        {
            // Lost for sure: stop asking, and campaign again at the randomized deadline drawn for this round.
            var was = Role;
            Role = RaftRole.Follower;
            Emit(ElectionEventKind.BecameFollower, null, $"{(was == RaftRole.PreCandidate ? "pre-vote" : "election")} lost: refused by {string.Join(", ", _refused)}");
        }
    }

    private void OnTimeoutNow(ElectionMessage message, long nowMicros)
    {
        if (message.Term < Term)
        {
            Emit(ElectionEventKind.Ignored, message.From, $"TimeoutNow of term {message.Term}, older than ours");
            return;
        }
        if (message.Term > Term) AdoptTerm(message.Term, null, nowMicros, $"TimeoutNow from {message.From}");
        if (!CanLead(Self))
        {
            Emit(ElectionEventKind.TransferAborted, message.From, "asked to take over, but this node is not a leader candidate");
            return;
        }
        if (Role is RaftRole.Leader or RaftRole.Candidate)
        {
            Emit(ElectionEventKind.Ignored, message.From, $"TimeoutNow while {Role} of term {Term}");
            return;
        }
        BecomeCandidate(nowMicros, transfer: true);
    }
}
