namespace GeoRelay.Engines;

/// <summary>
/// An engine's group fsync: one that waits for the disk goes to the driver's sync thread as a
/// <see cref="CommandKind.Sync"/> (at most one in flight); one that only hands records to the OS runs in place,
/// since the thread hop costs more than it does.
/// </summary>
/// <remarks>
/// A flush that fails throws <see cref="GeoRelay.Storage.DiskFailedException"/>: out of <see cref="Start"/> (and so out
/// of the engine call) when in place, out of the Sync command's work on the sync thread otherwise. Either way the
/// driver stops the engine for good; <see cref="Finished"/> is never called for a failed sync, so nothing waits on it.
/// </remarks>
public sealed class GroupSync(Action flush, bool waitsForDisk)
{
    /// <summary>A sync is on the driver's sync thread; appends go on meanwhile, and the next sync covers them.</summary>
    public bool Running { get; private set; }

    /// <summary>Flushes, or asks the driver to; does nothing while a sync is running.</summary>
    public void Start(List<EngineCommand> outbox)
    {
        if (Running) return;
        if (!waitsForDisk)
        {
            flush();
            return;
        }
        Running = true;
        outbox.Add(EngineCommand.Sync(flush));
    }

    /// <summary>The engine's <see cref="IEngine.OnSynced"/>.</summary>
    public void Finished() => Running = false;
}
