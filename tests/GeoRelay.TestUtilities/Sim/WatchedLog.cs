using GeoRelay.Storage;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// A member's log as its engine sees it, remembering the lowest index a truncation removed since the checks last
/// looked: entries rewritten there are new writes and are checked again, even when the log grew back past where
/// the checks had got to within one step.
/// </summary>
public sealed class WatchedLog(MemoryLog inner) : IEntryLog
{
    private ulong _rewrittenFrom = ulong.MaxValue;

    public MemoryLog Inner { get; } = inner;

    /// <summary>The lowest index removed (and so maybe written again) since the last call; ulong.MaxValue if none.</summary>
    public ulong TakeRewrittenFrom()
    {
        ulong from = _rewrittenFrom;
        _rewrittenFrom = ulong.MaxValue;
        return from;
    }

    public ulong FirstIndex => Inner.FirstIndex;
    public ulong LastIndex => Inner.LastIndex;
    public ulong DurableIndex => Inner.DurableIndex;
    public ulong LastEpoch => Inner.LastEpoch;

    // Every entry appended, by index (a rewrite replaces it), copied: what a leader committed and retention dropped within one step.
    private readonly Dictionary<ulong, LogEntry> _appended = new();

    public bool Append(in LogEntry entry)
    {
        bool appended = Inner.Append(entry);
        if (appended) _appended[entry.Index] = entry with { Key = entry.Key.ToArray(), Payload = entry.Payload.ToArray() };
        return appended;
    }

    /// <summary>The entry last appended at <paramref name="index"/>, kept after retention dropped it.</summary>
    public bool TryGetAppended(ulong index, out LogEntry entry) => _appended.TryGetValue(index, out entry);
    public void Flush() => Inner.Flush();
    public bool FlushWaitsForDisk => Inner.FlushWaitsForDisk;
    public bool TryGet(ulong index, out LogEntry entry) => Inner.TryGet(index, out entry);
    public int Read(ulong fromIndex, int maxEntries, long maxBytes, List<LogEntry> into) => Inner.Read(fromIndex, maxEntries, maxBytes, into);
    public int ApplyRetention(DateTimeOffset now, ulong keepFrom = ulong.MaxValue) => Inner.ApplyRetention(now, keepFrom);
    public ulong NextIndex => Inner.NextIndex;

    public void TruncateAfter(ulong index)
    {
        if (index < Inner.LastIndex) _rewrittenFrom = Math.Min(_rewrittenFrom, index + 1);
        Inner.TruncateAfter(index);
    }

    /// <summary>How many times the whole log was dropped (<see cref="ResetTo"/>: a snapshot install, for a voter).</summary>
    public int Resets { get; private set; }

    public void ResetTo(ulong nextIndex)
    {
        Resets++;
        _rewrittenFrom = Math.Min(_rewrittenFrom, nextIndex);
        Inner.ResetTo(nextIndex);
    }

    public void Dispose() => Inner.Dispose();
}
