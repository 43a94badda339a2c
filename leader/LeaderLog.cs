using Microsoft.Extensions.Logging;

namespace GeoRelay.Leader;

internal static partial class LeaderLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "Datacenter {Datacenter}: proxy {Proxy} failed ({Reason}); now routing via {Route}")]
    public static partial void Failover(ILogger logger, string datacenter, string proxy, string reason, string route);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Datacenter {Datacenter}: proxy {Proxy} answers again; leaving direct mode")]
    public static partial void BackToProxy(ILogger logger, string datacenter, string proxy);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Refused {Peer}: {Reason}")]
    public static partial void RefusedPeer(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Datacenter {Datacenter}: {Node} synced at durable index {Durable}")]
    public static partial void Synced(ILogger logger, string datacenter, string node, ulong durable);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Peer {Peer} has epoch {Epoch}, above ours ({Ours}): this leader is deposed")]
    public static partial void Deposed(ILogger logger, string peer, ulong epoch, ulong ours);
}
