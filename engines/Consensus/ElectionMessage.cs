namespace GeoRelay.Engines.Consensus;

public enum ElectionMessageKind : byte
{
    VoteRequest,
    VoteResponse,
    /// <summary>The leader tells a caught-up voter to campaign now (leadership transfer).</summary>
    TimeoutNow,
}

/// <summary>
/// One message between voters. <see cref="Term"/>: for a request, the term asked for (current + 1 for a pre-vote);
/// for a response, that term when granted, else the voter's own term; for TimeoutNow, the leader's term.
/// <see cref="LastLog"/> is the sender's last log position (meaningful in requests). <see cref="Reason"/> says why
/// a vote was refused.
/// </summary>
public readonly record struct ElectionMessage(
    ElectionMessageKind Kind,
    string From,
    string To,
    ulong Term,
    LogPosition LastLog,
    bool PreVote,
    bool Granted,
    bool Transfer,
    string? Reason);
