namespace GeoRelay.Relay.Learners;

/// <summary>How a relay or member streams the log to its learners.</summary>
public sealed record LearnerFanoutOptions
{
    /// <summary>
    /// Bytes a learner may have queued and unsent before it is disconnected with <c>SlowConsumer</c>.
    /// Catch-up reads pause at half of it. Default 8 MiB.
    /// </summary>
    public long MaxBacklogBytes { get; init; } = 8L << 20;

    /// <summary>
    /// The same bound for a relay taking its feed here (<c>SubscribeFlags.RelayFeed</c>), which is no learner: like a member's
    /// link it may have to queue a window of the leader's batches, and cutting it makes it start over from what it knows
    /// final. The larger of this and <see cref="MaxBacklogBytes"/> applies. Default 64 MiB (the default window).
    /// </summary>
    public long RelayFeedBacklogBytes { get; init; } = 64L << 20;

    /// <summary>Target size of one Deliver frame, in bytes (a single larger entry still goes in one frame). Default 256 KiB.</summary>
    public int MaxDeliverBytes { get; init; } = 256 << 10;

    /// <summary>Most entries in one Deliver frame. Default 4096.</summary>
    public int MaxDeliverEntries { get; init; } = 4096;

    /// <summary>Most Deliver frames one catching-up learner gets per tick. Default 4.</summary>
    public int CatchUpFramesPerTick { get; init; } = 4;

    /// <summary>Retention bytes all catching-up learners together may read per tick. Default 8 MiB.</summary>
    public long CatchUpBytesPerTick { get; init; } = 8L << 20;

    public static LearnerFanoutOptions Default { get; } = new();

    /// <summary>
    /// The topology's bounds: <c>learner-backlog</c> for learners; for relay feeds the larger of that and a window of the
    /// leader's batches (a standby once fell a megabyte behind its parent on a loaded machine and was cut).
    /// </summary>
    public static LearnerFanoutOptions ForTopology(GeoRelay.Topology.ClusterDefaults defaults) => Default with
    {
        MaxBacklogBytes = defaults.LearnerBacklog,
        RelayFeedBacklogBytes = Math.Max(defaults.LearnerBacklog, defaults.Window + defaults.BatchMaxBytes),
    };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad property.</summary>
    public void Validate()
    {
        if (RelayFeedBacklogBytes <= 0)
            throw new ArgumentOutOfRangeException(nameof(RelayFeedBacklogBytes), RelayFeedBacklogBytes, "must be positive");
        if (MaxBacklogBytes < 2 * (long)MaxDeliverBytes)
            throw new ArgumentOutOfRangeException(nameof(MaxBacklogBytes), MaxBacklogBytes, "must be at least twice MaxDeliverBytes");
        if (MaxDeliverBytes < 64)
            throw new ArgumentOutOfRangeException(nameof(MaxDeliverBytes), MaxDeliverBytes, "must be at least 64 bytes");
        if (MaxDeliverEntries < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxDeliverEntries), MaxDeliverEntries, "must be at least 1");
        if (CatchUpFramesPerTick < 1)
            throw new ArgumentOutOfRangeException(nameof(CatchUpFramesPerTick), CatchUpFramesPerTick, "must be at least 1");
        if (CatchUpBytesPerTick < 1)
            throw new ArgumentOutOfRangeException(nameof(CatchUpBytesPerTick), CatchUpBytesPerTick, "must be at least 1");
    }
}

/// <summary>Asks another node for a learner's entries from <paramref name="fromIndex"/>; false when nobody can be asked.</summary>
public delegate bool LearnerRefillRequest(int learnerConnection, ulong fromIndex, byte[]? keyPrefix);

/// <summary>Where a learner's stream stands.</summary>
public enum LearnerState : byte
{
    /// <summary>Connected; no Subscribe yet.</summary>
    AwaitingSubscribe,
    /// <summary>Behind the head of retention: read from retention a step per tick.</summary>
    CatchingUp,
    /// <summary>At the head: gets the shared frame of every append.</summary>
    Live,
    /// <summary>Below this node's retention: waiting for a member to send the next entries.</summary>
    Refilling,
    /// <summary>Told to go (SlowConsumer, SnapshotRequired, protocol error); waiting for the disconnect.</summary>
    Closing,
}

/// <summary>
/// One learner as the relay sees it. <see cref="ReceivedIndex"/> is what was handed to its connection
/// (sent); <see cref="DeliveredIndex"/> is what its application confirmed (0 until the first Confirm).
/// </summary>
public sealed record LearnerStatus(
    int Connection,
    string NodeId,
    string? Remote,
    ulong From,
    ulong ReceivedIndex,
    ulong DeliveredIndex,
    long QueuedBytes,
    string? KeyPrefix,
    LearnerState State);
