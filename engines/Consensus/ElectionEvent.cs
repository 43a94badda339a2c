namespace GeoRelay.Engines.Consensus;

public enum ElectionEventKind : byte
{
    BecameFollower,
    BecamePreCandidate,
    BecameCandidate,
    BecameLeader,
    /// <summary>This node voted for <see cref="ElectionEvent.Peer"/> in <see cref="ElectionEvent.Term"/>.</summary>
    VoteGranted,
    /// <summary>This node refused <see cref="ElectionEvent.Peer"/> a vote; <see cref="ElectionEvent.Reason"/> says why.</summary>
    VoteRefused,
    /// <summary>This node would vote for <see cref="ElectionEvent.Peer"/> in <see cref="ElectionEvent.Term"/> (pre-vote; nothing recorded).</summary>
    PreVoteGranted,
    PreVoteRefused,
    /// <summary>A leader stopped leading; <see cref="ElectionEvent.Reason"/> says why.</summary>
    SteppedDown,
    /// <summary>The term moved to <see cref="ElectionEvent.Term"/> (durably); <see cref="ElectionEvent.Reason"/> says what moved it.</summary>
    TermChanged,
    TransferStarted,
    /// <summary>The transfer target leads now.</summary>
    TransferCompleted,
    TransferAborted,
    /// <summary>A message or report that was set aside (a stale or impossible one); <see cref="ElectionEvent.Reason"/> says which and why.</summary>
    Ignored,
    /// <summary>The link to the leader closed (its process died, or the network reset it): this node stops waiting on it.</summary>
    LeaderLost,
    /// <summary>The voter set changed (a membership change); <see cref="ElectionEvent.Reason"/> names the voters.</summary>
    Reconfigured,
}

/// <summary>
/// Something an election did, for logs and metrics. <see cref="Node"/> is this node; <see cref="Peer"/> the other
/// node involved (the candidate voted for or refused, the leader followed, the transfer target).
/// </summary>
public readonly record struct ElectionEvent(ElectionEventKind Kind, ulong Term, string Node, string? Peer, string? Reason)
{
    public override string ToString() =>
        $"{Node} term {Term} {Kind}" + (Peer is null ? "" : $" {Peer}") + (Reason is null ? "" : $": {Reason}");
}
