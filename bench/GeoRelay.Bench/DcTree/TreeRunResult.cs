namespace GeoRelay.Bench.DcTree;

/// <summary>Where a learner's relay stood when the active relay was killed; the stall is reported per group.</summary>
internal enum StallGroup
{
    KilledRelay,
    TakeoverRelay,
    OtherStandbys,
    Tier2ParentKilled,
    Tier2ParentLived,
    OtherDatacenters,
}

/// <summary>Bytes one relay sent per published entry over a window, by kind of receiver.</summary>
internal readonly record struct RelayEgress(string Relay, double Learners, double Relays, double Members)
{
    public double Total => Learners + Relays + Members;
}

/// <summary>Hops from the leader to a learner, over learner-entry deliveries.</summary>
internal readonly record struct Depth(int Max, double Mean, long Deliveries);

/// <summary>
/// One group's failover experience: the longest gap between consecutive entries any of its learners saw (and
/// when, relative to the kill), learners that saw an index twice or skipped one, learners that never got the
/// last entry (with the last moment and index any of those got).
/// </summary>
internal readonly record struct GroupStall(StallGroup Group, long Learners, long MaxGap, long MaxGapFrom,
    long LearnersWithViolations, long Incomplete, long IncompleteLastArrival, ulong IncompleteNext);

internal sealed record TreeRunResult
{
    public required TreeShape Shape { get; init; }
    public required KillMode Kill { get; init; }
    public required long Entries { get; init; }
    public required long LeaderBytes { get; init; }
    public required double LeaderSteadyPerEntry { get; init; }
    public required RelayEgress BusiestBefore { get; init; }
    public required RelayEgress BusiestAfter { get; init; }
    public required Depth DepthBefore { get; init; }
    public required Depth DepthAfter { get; init; }
    public required string KilledRelay { get; init; }
    public required string TakeoverRelay { get; init; }

    /// <summary>From the kill: the leader notices, the takeover relay is fed (handshake done), its first batch arrives; -1 if never.</summary>
    public required long LeaderLostAfter { get; init; }
    public required long TakeoverFedAfter { get; init; }
    public required long FirstBatchAfter { get; init; }

    public required GroupStall[] Groups { get; init; }

    /// <summary>The relay with the most learners attached when the run ends (after every reconnect).</summary>
    public required (string Relay, long Learners) MostLearnersAtEnd { get; init; }
    public required long RelayViolations { get; init; }
    public required long Learners { get; init; }
    public required int Cohorts { get; init; }
    public required long LearnerReconnects { get; init; }
    public required long Events { get; init; }
    public required TimeSpan Took { get; init; }

    public long LearnersWithViolations => Groups.Sum(g => g.LearnersWithViolations);
    public long IncompleteLearners => Groups.Sum(g => g.Incomplete);
}
