namespace GeoRelay.Topology;

/// <summary>How a quorum is counted.</summary>
public enum QuorumKind
{
    /// <summary>More than half of the members (the default).</summary>
    Majority,
    /// <summary>Every member.</summary>
    All,
    /// <summary>A fixed number of members.</summary>
    Count,
}

/// <summary>
/// The number of member acks that commit an entry: <c>majority</c>, <c>all</c> or a number. Only
/// members count; the leader's own log is durable before an entry is even accepted.
/// </summary>
public readonly record struct QuorumSpec(QuorumKind Kind, int Count = 0)
{
    public static QuorumSpec Majority => new(QuorumKind.Majority);
    public static QuorumSpec All => new(QuorumKind.All);
    public static QuorumSpec Fixed(int count) =>
        count >= 1 ? new(QuorumKind.Count, count) : throw new ArgumentOutOfRangeException(nameof(count), count, "a quorum needs at least one ack");

    /// <summary>Member acks needed to commit, given <paramref name="memberCount"/> members.</summary>
    public int RequiredAcks(int memberCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(memberCount);
        return Kind switch
        {
            QuorumKind.Majority => memberCount / 2 + 1,
            QuorumKind.All => memberCount,
            _ when Count > memberCount => throw new ArgumentOutOfRangeException(nameof(memberCount), memberCount, $"quorum {Count} is larger than the {memberCount} members"),
            _ => Count,
        };
    }

    /// <summary>Parses <c>majority</c>, <c>all</c> or a positive integer.</summary>
    public static bool TryParse(string? text, out QuorumSpec quorum, out string? error)
    {
        quorum = Majority;
        error = null;
        switch (text?.Trim())
        {
            case "majority":
                return true;
            case "all":
                quorum = All;
                return true;
        }
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
        {
            if (n < 1)
            {
                error = "quorum must be at least 1";
                return false;
            }
            quorum = Fixed(n);
            return true;
        }
        error = $"quorum must be 'majority', 'all' or a number of members, not '{text}'";
        return false;
    }

    public override string ToString() => Kind switch
    {
        QuorumKind.Majority => "majority",
        QuorumKind.All => "all",
        _ => Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
