using Microsoft.Extensions.Logging;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// One <see cref="LearnerClient.RunAsync"/>'s applied index and checkpoints: restores the state machine from its checkpoint at start,
/// and writes one every <see cref="StateMachineOptions.CheckpointEveryEntries"/> entries or
/// <see cref="StateMachineOptions.CheckpointInterval"/>, and at a clean stop. Without a checkpoint directory it only
/// tracks the applied index.
/// </summary>
internal sealed class StateMachineRun
{
    private readonly IStateMachine _stateMachine;
    private readonly StateMachineOptions _options;
    private readonly ILogger _logger;
    private readonly string? _path;
    private ulong _checkpointed;
    // Counted apart from the indexes, which skip internal and filtered-out entries.
    private int _appliedSinceCheckpoint;
    private long _lastWrittenMillis = Environment.TickCount64;
    private Task? _timer;

    public StateMachineRun(IStateMachine stateMachine, StateMachineOptions options, ILogger logger)
    {
        _stateMachine = stateMachine;
        _options = options;
        _logger = logger;
        if (options.CheckpointDirectory is { } directory)
        {
            Directory.CreateDirectory(directory);
            _path = CheckpointFile.PathIn(directory);
        }
    }

    /// <summary>The index of the last entry applied: what the state machine holds.</summary>
    public ulong Applied { get; private set; }

    /// <summary>A snapshot from the cluster is being applied: the state is partial, so no checkpoint is written.</summary>
    private bool _inSnapshot;

    /// <summary>Entries were applied since the last checkpoint (always false without a checkpoint directory, and during a snapshot).</summary>
    public bool Pending => _path is not null && Applied != _checkpointed && !_inSnapshot;

    /// <summary>How long until <see cref="StateMachineOptions.CheckpointInterval"/> has passed since the last checkpoint.</summary>
    public TimeSpan UntilDue => TimeSpan.FromMilliseconds(Math.Max(0, _lastWrittenMillis + (long)_options.CheckpointInterval.TotalMilliseconds - Environment.TickCount64));

    /// <summary>
    /// Completes when <see cref="StateMachineOptions.CheckpointInterval"/> may have passed since the last checkpoint. One
    /// timer is kept until it fires, not one per wait: a checkpoint written meanwhile moves the deadline later, so the
    /// caller checks <see cref="UntilDue"/> when it fires.
    /// </summary>
    public Task DueAsync(CancellationToken stop)
    {
        if (_timer is null || _timer.IsCompleted) _timer = Task.Delay(UntilDue, stop);
        return _timer;
    }

    /// <summary>
    /// Restores the state machine from the checkpoint, when there is one; returns the applied index to resume after: the
    /// checkpoint's, or else the state machine's own.
    /// </summary>
    public ulong Restore()
    {
        if (_options.CheckpointDirectory is { } directory && StateMachineCheckpoint.Restore(_stateMachine, directory) is { } index)
            LearnerClientLog.CheckpointRestored(_logger, _path!, index);
        Applied = _checkpointed = _stateMachine.AppliedIndex;
        return Applied;
    }

    /// <summary>Applies <paramref name="entry"/>, and checkpoints when enough entries or time have passed.</summary>
    public void Apply(in LearnerEntry entry)
    {
        if (entry.IsSnapshot)
        {
            ApplySnapshot(entry);
            return;
        }
        // SubscribeAsync never hands an index twice or backwards; this guards the one promise the host is for.
        if (entry.Index <= Applied)
            throw new InvalidOperationException($"entry {entry.Index} arrived after entry {Applied} was applied: it would be applied twice");
        _stateMachine.Apply(entry);
        if (_stateMachine.AppliedIndex != entry.Index)
            throw new InvalidOperationException($"the state machine's AppliedIndex is {_stateMachine.AppliedIndex} after Apply of entry {entry.Index}; it must be the entry's index");
        Applied = entry.Index;
        _appliedSinceCheckpoint++;
        if (Pending && (_appliedSinceCheckpoint >= _options.CheckpointEveryEntries || UntilDue == TimeSpan.Zero))
            Write();
    }

    /// <summary>A snapshot of keyed state replaces the state: begin marker, entries in rising index order, end marker.</summary>
    private void ApplySnapshot(in LearnerEntry entry)
    {
        if (entry.IsSnapshotBegin)
        {
            _inSnapshot = true;
            _stateMachine.BeginSnapshot(entry.Index);
            Applied = 0;
            return;
        }
        if (!_inSnapshot) throw new InvalidOperationException($"snapshot entry {entry.Index} arrived without the snapshot's beginning");
        if (entry.IsSnapshotEnd)
        {
            _stateMachine.EndSnapshot(entry.Index);
            if (_stateMachine.AppliedIndex != entry.Index)
                throw new InvalidOperationException($"the state machine's AppliedIndex is {_stateMachine.AppliedIndex} after EndSnapshot({entry.Index}); it must be the snapshot's index");
            _inSnapshot = false;
            Applied = entry.Index;
            // A whole new state: worth a checkpoint at once.
            if (_path is not null) Write();
            return;
        }
        if (entry.Index <= Applied)
            throw new InvalidOperationException($"snapshot entry {entry.Index} arrived after entry {Applied}: it would be applied twice");
        _stateMachine.Apply(entry);
        if (_stateMachine.AppliedIndex != entry.Index)
            throw new InvalidOperationException($"the state machine's AppliedIndex is {_stateMachine.AppliedIndex} after Apply of snapshot entry {entry.Index}; it must be the entry's index");
        Applied = entry.Index;
    }

    /// <summary>Writes a checkpoint at <see cref="Applied"/> when entries were applied since the last one.</summary>
    public void WriteIfPending()
    {
        if (Pending) Write();
    }

    private void Write()
    {
        CheckpointFile.Write(_path!, Applied, _stateMachine.WriteSnapshot);
        _checkpointed = Applied;
        _appliedSinceCheckpoint = 0;
        _lastWrittenMillis = Environment.TickCount64;
        LearnerClientLog.CheckpointWritten(_logger, _path!, Applied);
    }
}
