using System.Diagnostics.Metrics;
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

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Datacenter {Datacenter}: every proxy is down; sending to its members directly and probing the proxies")]
    public static partial void DirectFallback(ILogger logger, string datacenter);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Peer {Peer} has epoch {Epoch}, above ours ({Ours}): this leader is deposed")]
    public static partial void Deposed(ILogger logger, string peer, ulong epoch, ulong ours);

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning, Message = "The leader did not run for {Millis} ms (a GC pause or an overloaded machine); that time is not held against its proxies")]
    public static partial void Paused(ILogger logger, long millis);
}

/// <summary>Route changes (System.Diagnostics.Metrics), tagged with the datacenter.</summary>
internal static class LeaderMetrics
{
    public static readonly Meter Meter = new("GeoRelay.Leader");
    public static readonly Counter<long> Failovers = Meter.CreateCounter<long>("georelay.leader.failovers", description: "A datacenter's proxy was abandoned for the next one or for direct sends");
    public static readonly Counter<long> DirectFallbacks = Meter.CreateCounter<long>("georelay.leader.direct_fallbacks", description: "Every proxy of a datacenter was down: the leader started sending to its members directly");
    public static readonly Counter<long> ProxyReturns = Meter.CreateCounter<long>("georelay.leader.proxy_returns", description: "A datacenter in direct mode went back to a proxy that answered a probe");
}
