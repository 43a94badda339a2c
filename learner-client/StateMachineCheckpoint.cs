using GeoRelay.LearnerClient.Internal;

namespace GeoRelay.LearnerClient;

/// <summary>
/// The checkpoint <see cref="LearnerClient.RunAsync"/> keeps in <see cref="StateMachineOptions.CheckpointDirectory"/>,
/// for reading it without a cluster (a tool that inspects a state machine's state, say).
/// </summary>
public static class StateMachineCheckpoint
{
    /// <summary>The checkpoint file in <paramref name="checkpointDirectory"/>: <c>checkpoint</c>, replaced whole by each checkpoint.</summary>
    public static string PathIn(string checkpointDirectory) => CheckpointFile.PathIn(checkpointDirectory);

    /// <summary>
    /// Restores <paramref name="stateMachine"/> (its <see cref="IStateMachine.ReadSnapshot"/>) from the checkpoint in
    /// <paramref name="checkpointDirectory"/> and returns the checkpoint's applied index; null, the state machine
    /// untouched, when there is no checkpoint.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint this build reads: the message names it and why.</exception>
    /// <exception cref="InvalidOperationException">The state machine's <see cref="IStateMachine.AppliedIndex"/> is not the checkpoint's after it read its snapshot.</exception>
    public static ulong? Restore(IStateMachine stateMachine, string checkpointDirectory)
    {
        ArgumentNullException.ThrowIfNull(stateMachine);
        string path = PathIn(checkpointDirectory);
        if (CheckpointFile.Read(path, stateMachine.ReadSnapshot) is not { } index) return null;
        if (stateMachine.AppliedIndex != index)
            throw new InvalidOperationException(
                $"the state machine's AppliedIndex is {stateMachine.AppliedIndex} after ReadSnapshot of checkpoint '{path}', " +
                $"which was written at index {index}: WriteSnapshot and ReadSnapshot must carry the applied index");
        return index;
    }
}
