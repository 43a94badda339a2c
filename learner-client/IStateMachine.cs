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
}
