namespace GeoRelay.Engines.Consensus;

public enum RaftRole : byte
{
    Follower,
    /// <summary>Asking voters whether they would vote for it, without changing its term (pre-vote).</summary>
    PreCandidate,
    Candidate,
    Leader,
}
