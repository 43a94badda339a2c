using GeoRelay.LearnerClient.Internal;

namespace GeoRelay.LearnerClient;

public sealed partial class LearnerClient
{
    /// <summary>
    /// Feeds <paramref name="stateMachine"/> the log until <paramref name="cancellationToken"/> is cancelled: restores it
    /// from the checkpoint in <see cref="StateMachineOptions.CheckpointDirectory"/> when there is one, subscribes from its
    /// <see cref="IStateMachine.AppliedIndex"/> + 1, applies every entry the cluster delivers once, in order, and writes a
    /// checkpoint every <see cref="StateMachineOptions.CheckpointEveryEntries"/> entries or
    /// <see cref="StateMachineOptions.CheckpointInterval"/>, and a last one when cancelled; then returns.
    /// </summary>
    /// <remarks>
    /// After a crash the next run restores the last checkpoint and applies again the entries after it: the state always
    /// equals the checkpoint's plus the entries after it, applied once each. When the cluster no longer holds the index
    /// after the state machine's and keeps keyed state (<c>compaction: keyed</c>), the state machine is rebuilt from the
    /// cluster's snapshot (<see cref="IStateMachine.BeginSnapshot"/>, <see cref="IStateMachine.Apply"/> per live key,
    /// <see cref="IStateMachine.EndSnapshot"/>) and checkpointed. It ends with the subscription's failures:
    /// <see cref="SnapshotRequiredException"/> when no endpoint holds the index after the state machine's any more and
    /// none has a snapshot, <see cref="ClientRefusedException"/>,
    /// and <see cref="LogTruncatedException"/> (only with <c>delivery: durable</c>: applied entries were taken back, and
    /// the state holds them); and with what <see cref="IStateMachine.Apply"/> throws. No checkpoint is written after a
    /// truncation or a failed apply. One subscription at a time per client, as for <see cref="SubscribeAsync"/>.
    /// </remarks>
    /// <exception cref="InvalidDataException">The checkpoint file is not one this build reads (the message names it and why).</exception>
    public async Task RunAsync(IStateMachine stateMachine, StateMachineOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stateMachine);
        options ??= StateMachineOptions.Default;
        options.Validate();
        var checkpoints = new StateMachineRun(stateMachine, options, _logger);
        ulong from = checkpoints.Restore() + 1;
        using var stopTimer = new CancellationTokenSource();
        var entries = SubscribeAsync(from, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (await NextAsync(entries, checkpoints, stopTimer.Token).ConfigureAwait(false))
            {
                checkpoints.Apply(entries.Current);
                if (!entries.Current.IsSnapshot || entries.Current.IsSnapshotEnd) Confirm(entries.Current.Index);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // A clean stop: the state is whole, so it is checkpointed below.
        }
        finally
        {
            stopTimer.Cancel();
            await entries.DisposeAsync().ConfigureAwait(false);
        }
        checkpoints.WriteIfPending();
    }

    /// <summary>
    /// The next entry; while none arrives and applied entries are not checkpointed, writes the checkpoint once
    /// <see cref="StateMachineOptions.CheckpointInterval"/> has passed, so a quiet log does not leave them out of it.
    /// </summary>
    private static async ValueTask<bool> NextAsync(IAsyncEnumerator<LearnerEntry> entries, StateMachineRun checkpoints, CancellationToken stopTimer)
    {
        var next = entries.MoveNextAsync();
        if (next.IsCompleted || !checkpoints.Pending) return await next.ConfigureAwait(false);
        // Nothing applies meanwhile (this task is the only one that applies), so the snapshot is of a whole state.
        var moved = next.AsTask();
        while (checkpoints.Pending)
        {
            if (await Task.WhenAny(moved, checkpoints.DueAsync(stopTimer)).ConfigureAwait(false) == moved) break;
            if (checkpoints.UntilDue == TimeSpan.Zero) checkpoints.WriteIfPending();
        }
        return await moved.ConfigureAwait(false);
    }
}
