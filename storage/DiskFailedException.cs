namespace GeoRelay.Storage;

/// <summary>
/// A write, fsync, file creation, truncation or deletion of the log failed (ENOSPC, EIO, a read-only remount), or
/// reading it back while recovering at start did.
/// From then on the log refuses every write and its <see cref="IEntryLog.DurableIndex"/> no longer moves: a failed
/// fsync is never retried, since the kernel may have dropped the dirty pages and a retry could report success for
/// writes the disk never got. The node has to stop and recover from its files when restarted.
/// </summary>
public sealed class DiskFailedException : IOException
{
    public DiskFailedException(string operation, string? path, Exception cause)
        : base($"{operation} of '{path ?? "the log"}' failed: {cause.Message}", cause)
    {
        Operation = operation;
        Path = path;
    }

    private DiskFailedException(DiskFailedException first)
        : base($"the log failed earlier and takes no more writes ({first.Message})", first.InnerException)
    {
        Operation = first.Operation;
        Path = first.Path;
    }

    /// <summary>What failed: <c>write</c>, <c>fsync</c>, <c>create</c>, <c>delete</c>, <c>truncate</c>, <c>directory fsync</c>, <c>open</c>, <c>rename</c> (a file replaced whole, <see cref="AtomicFile"/>), and while recovering <c>list</c>, <c>read</c>.</summary>
    public string Operation { get; }

    /// <summary>The file or directory it failed on, when known.</summary>
    public string? Path { get; }

    /// <summary>The operating system's error, as .NET reported it (e.g. "No space left on device").</summary>
    public string Error => InnerException?.Message ?? Message;

    /// <summary>For a call refused because the log failed earlier: same operation and file, says so.</summary>
    public static DiskFailedException Earlier(DiskFailedException first) => new(first);
}
