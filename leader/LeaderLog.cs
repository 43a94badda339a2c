using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Leader;

internal static partial class LeaderLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "Datacenter {Datacenter}: relay {Relay} failed ({Reason}); now routing via {Route}")]
    public static partial void Failover(ILogger logger, string datacenter, string relay, string reason, string route);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Datacenter {Datacenter}: relay {Relay} answers again; leaving direct mode")]
    public static partial void BackToRelay(ILogger logger, string datacenter, string relay);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Refused {Peer}: {Reason}")]
    public static partial void RefusedPeer(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Datacenter {Datacenter}: {Node} synced at durable index {Durable}")]
    public static partial void Synced(ILogger logger, string datacenter, string node, ulong durable);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Datacenter {Datacenter}: every relay is down; sending to its members directly and probing the relays")]
    public static partial void DirectFallback(ILogger logger, string datacenter);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Peer {Peer} has epoch {Epoch}, above ours ({Ours}): this leader is deposed")]
    public static partial void Deposed(ILogger logger, string peer, ulong epoch, ulong ours);

    [LoggerMessage(EventId = 209, Level = LogLevel.Warning, Message = "Peer {Peer} refused our epoch {Ours} as stale (it has seen a later one): this leader is deposed")]
    public static partial void RefusedAsStale(ILogger logger, string peer, ulong ours);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Epoch {Epoch} begins with a no-op at index {Index}: entries of earlier epochs commit with it")]
    public static partial void EpochStarted(ILogger logger, ulong epoch, ulong index);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Publish of producer {Producer:x16} sequence {Seq} ({Count} entries) is a retry of what the log holds at {Index}; not appended again")]
    public static partial void DuplicatePublish(ILogger logger, ulong producer, ulong seq, int count, ulong index);

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning, Message = "The leader did not run for {Millis} ms (a GC pause or an overloaded machine); that time is not held against its relays")]
    public static partial void Paused(ILogger logger, long millis);

    [LoggerMessage(EventId = 211, Level = LogLevel.Information, Message = "Retention dropped {Segments} segments: oldest index {Before} -> {Oldest}")]
    public static partial void RetentionApplied(ILogger logger, int segments, ulong before, ulong oldest);

    [LoggerMessage(EventId = 212, Level = LogLevel.Warning, Message = "{Follower} is behind this log's start: sent it the start, {Index}, to take the log from")]
    public static partial void SnapshotSent(ILogger logger, string follower, ulong index);

    [LoggerMessage(EventId = 210, Level = LogLevel.Information, Message = "Datacenter {Datacenter}: failing back from relay {From} to {To}, healthy for {Millis} ms")]
    public static partial void Failback(ILogger logger, string datacenter, string from, string to, long millis);
}
