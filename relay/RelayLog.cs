using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay;

internal static partial class RelayLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Refused {Peer}: {Reason}")]
    public static partial void Refused(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Upstream {Peer} (epoch {Epoch}) connected")]
    public static partial void UpstreamConnected(ILogger logger, string peer, ulong epoch);

    [LoggerMessage(EventId = 302, Level = LogLevel.Information, Message = "Member {Member} synced at durable index {Durable}")]
    public static partial void MemberSynced(ILogger logger, string member, ulong durable);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "Retention reset to index {Index}: the stream skipped ahead of what this node held")]
    public static partial void RetentionReset(ILogger logger, ulong index);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Ignored entries {First}..{Last}: this node holds only up to {Held} (a gap; the sender will resend)")]
    public static partial void GapIgnored(ILogger logger, ulong first, ulong last, ulong held);

    [LoggerMessage(EventId = 305, Level = LogLevel.Warning, Message = "Truncated uncommitted entries after {Index}: a newer epoch ({Epoch}) rewrote them")]
    public static partial void Truncated(ILogger logger, ulong index, ulong epoch);

    [LoggerMessage(EventId = 306, Level = LogLevel.Information, Message = "Recovered log: entries {First}..{Last}")]
    public static partial void Recovered(ILogger logger, ulong first, ulong last);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "The leader's log starts at {Index} (epoch {Epoch}), past this log ({First}..{Last}): taking it from there")]
    public static partial void SnapshotInstalled(ILogger logger, ulong index, ulong epoch, ulong first, ulong last);

    [LoggerMessage(EventId = 307, Level = LogLevel.Information, Message = "Retention dropped {Segments} segments: oldest index {Before} -> {Oldest}")]
    public static partial void RetentionApplied(ILogger logger, int segments, ulong before, ulong oldest);

    [LoggerMessage(EventId = 308, Level = LogLevel.Information, Message = "Relay {Child} takes its feed here")]
    public static partial void FeedChildConnected(ILogger logger, string child);

    [LoggerMessage(EventId = 309, Level = LogLevel.Information, Message = "Taking the feed from relay {Parent} from index {From}")]
    public static partial void FeedConnected(ILogger logger, string parent, ulong from);

    [LoggerMessage(EventId = 310, Level = LogLevel.Information, Message = "Feed from relay {Parent} ended: {Reason}")]
    public static partial void FeedLost(ILogger logger, string parent, string reason);

    [LoggerMessage(EventId = 311, Level = LogLevel.Debug, Message = "No feed from a relay: {Reason}")]
    public static partial void FeedRefused(ILogger logger, string reason);

    [LoggerMessage(EventId = 312, Level = LogLevel.Warning, Message = "{Relay} takes the membership of entry {Index} from {Upstream}: member links reconnect under it, learners stay")]
    public static partial void Reconfigured(ILogger logger, string relay, ulong index, string upstream);

    [LoggerMessage(EventId = 313, Level = LogLevel.Warning, Message = "{Relay} is not in the membership of entry {Index}: it was removed; its learners resume elsewhere, and it may be stopped")]
    public static partial void Removed(ILogger logger, string relay, ulong index);
}
