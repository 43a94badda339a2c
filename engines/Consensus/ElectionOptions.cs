namespace GeoRelay.Engines.Consensus;

/// <summary>How a voter runs elections. Every voter of a cluster should use the same values.</summary>
public sealed record ElectionOptions
{
    public static readonly ElectionOptions Default = new();

    /// <summary>
    /// Base election timeout. Default 1 s. A follower that hears no leader campaigns after a random time in
    /// [T, 2T), drawn anew each time its timer restarts; a leader steps down (check-quorum) when it has not heard
    /// from a majority within T; a voter that heard its leader within T refuses to help depose it; a
    /// leadership transfer that has not completed after T is aborted.
    /// </summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often the data path lets followers hear from their leader and the leader from them. Default 100 ms.
    /// The election core sends no heartbeats itself; check-quorum depends on this liveness arriving several times
    /// per <see cref="ElectionTimeout"/>, so it must be below half of it.
    /// </summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Ask for votes in a pre-vote round (Term + 1, no term change) before a real election. Default true: a node
    /// that was cut off and returns cannot raise the term of a healthy cluster.
    /// </summary>
    public bool PreVote { get; init; } = true;

    /// <summary>A leader steps down when it has not heard from a majority within the election timeout. Default true.</summary>
    public bool CheckQuorum { get; init; } = true;

    /// <summary>
    /// Voters that may lead; null (the default) means every voter. The others vote but never campaign, not even
    /// when told to by a leadership transfer.
    /// </summary>
    public IReadOnlySet<string>? Candidates { get; init; }

    internal void Validate()
    {
        if (ElectionTimeout <= TimeSpan.Zero)
            throw new ArgumentException($"election timeout must be positive, not {ElectionTimeout}", nameof(ElectionTimeout));
        if (Heartbeat <= TimeSpan.Zero || Heartbeat * 2 > ElectionTimeout)
            throw new ArgumentException($"heartbeat {Heartbeat} must be positive and at most half the election timeout {ElectionTimeout}", nameof(Heartbeat));
    }
}
