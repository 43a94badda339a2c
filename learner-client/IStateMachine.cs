namespace GeoRelay.LearnerClient;

/// <summary>
/// An application's state built from the log, hosted by <see cref="LearnerClient.RunAsync"/>: it applies entries in
/// index order, says how far it got, and saves and restores itself for checkpoints.
/// </summary>
/// <remarks>
/// The host calls every member from one task at a time, never concurrently. Its state must always equal a checkpoint's
/// state plus the entries after it, applied once each, in order: so <see cref="ReadSnapshot"/> replaces the whole state
/// (including <see cref="AppliedIndex"/>), and <see cref="WriteSnapshot"/> saves all of it.
/// </remarks>
public interface IStateMachine
{
    /// <summary>
    /// The index of the last entry applied; 0 for an empty state. The host subscribes from this + 1, and checks it
    /// equals the entry's index after each <see cref="Apply"/> and the checkpoint's after <see cref="ReadSnapshot"/>.
    /// </summary>
    ulong AppliedIndex { get; }

    /// <summary>
    /// Applies one entry, whose index is above <see cref="AppliedIndex"/> (not always by one: the log skips internal
    /// entries, and a filtered subscription the entries it filters out); afterwards <see cref="AppliedIndex"/> is
    /// <c>entry.Index</c>. The entry's memory is valid until this returns when the learner reuses buffers: copy what you keep.
    /// An exception ends <see cref="LearnerClient.RunAsync"/> with it, and no checkpoint is written after it (the state
    /// may hold half of the entry).
    /// </summary>
    void Apply(LearnerEntry entry);

    /// <summary>Writes the whole state, <see cref="AppliedIndex"/> included, to <paramref name="destination"/> (do not close it).</summary>
    void WriteSnapshot(Stream destination);

    /// <summary>
    /// Replaces the whole state, <see cref="AppliedIndex"/> included, with what <see cref="WriteSnapshot"/> wrote; reads it
    /// from <paramref name="source"/>, which ends where that snapshot ends (do not close it).
    /// </summary>
    void ReadSnapshot(Stream source);

    /// <summary>
    /// The cluster sends a snapshot of its keyed state as of <paramref name="through"/> (<c>compaction: keyed</c>, when it
    /// no longer holds the entries after <see cref="AppliedIndex"/>): drop the whole state. Each live key's latest entry
    /// then comes through <see cref="Apply"/> (<see cref="LearnerEntry.IsSnapshot"/>, indexes rising but possibly below
    /// the old <see cref="AppliedIndex"/>), and <see cref="EndSnapshot"/> closes it. It may begin again before it ends
    /// (the transfer restarted from a newer snapshot). The default refuses: a state machine that is not a function of
    /// each key's latest entry cannot be rebuilt from one.
    /// </summary>
    void BeginSnapshot(ulong through) =>
        throw new NotSupportedException($"{GetType().Name} cannot take the cluster's snapshot of keyed state at {through}: implement BeginSnapshot and EndSnapshot");

    /// <summary>The snapshot begun at <paramref name="through"/> is complete: afterwards <see cref="AppliedIndex"/> is <paramref name="through"/>.</summary>
    void EndSnapshot(ulong through) =>
        throw new NotSupportedException($"{GetType().Name} cannot take the cluster's snapshot of keyed state at {through}: implement BeginSnapshot and EndSnapshot");
}
