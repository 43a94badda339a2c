namespace GeoRelay.LearnerClient;

/// <summary>How <see cref="LearnerClient.RunAsync"/> checkpoints a state machine. Immutable; start from <see cref="Default"/>.</summary>
public sealed record StateMachineOptions
{
    /// <summary>
    /// Directory of the checkpoint file (<c>checkpoint</c>; created, with the directory, when missing). One state machine
    /// per directory. Default null: no checkpoints, the host resumes from the state machine's own
    /// <see cref="IStateMachine.AppliedIndex"/> (for one that keeps its state durable itself).
    /// </summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>A checkpoint is written once this many entries were applied since the last one. Default 10,000 entries.</summary>
    public int CheckpointEveryEntries { get; init; } = 10_000;

    /// <summary>
    /// A checkpoint is written once this long has passed since the last one with entries applied since (also while no
    /// entry arrives). Default 10 s.
    /// </summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The defaults: an instance to start from with <c>with { CheckpointDirectory = ... }</c>.</summary>
    public static StateMachineOptions Default { get; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad property.</summary>
    public void Validate()
    {
        if (CheckpointDirectory is { Length: 0 })
            throw new ArgumentException("must not be empty (null: no checkpoints)", nameof(CheckpointDirectory));
        if (CheckpointEveryEntries < 1)
            throw new ArgumentException($"must be at least 1, not {CheckpointEveryEntries}", nameof(CheckpointEveryEntries));
        if (CheckpointInterval <= TimeSpan.Zero)
            throw new ArgumentException($"must be positive, not {CheckpointInterval}", nameof(CheckpointInterval));
    }
}
