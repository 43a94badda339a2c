using System.Diagnostics.Metrics;

namespace GeoRelay.Leader;

/// <summary>Route changes (System.Diagnostics.Metrics), tagged with the datacenter.</summary>
internal static class LeaderMetrics
{
    public static readonly Meter Meter = new("GeoRelay.Leader");
    public static readonly Counter<long> Failovers = Meter.CreateCounter<long>("georelay.leader.failovers", description: "A datacenter's relay was abandoned for the next one or for direct sends");
    public static readonly Counter<long> DirectFallbacks = Meter.CreateCounter<long>("georelay.leader.direct_fallbacks", description: "Every relay of a datacenter was down: the leader started sending to its members directly");
    public static readonly Counter<long> Failbacks = Meter.CreateCounter<long>("georelay.leader.failbacks", description: "A datacenter moved back to a relay of higher priority that had answered probes for failback-after");
    public static readonly Counter<long> RelayReturns = Meter.CreateCounter<long>("georelay.leader.relay_returns", description: "A datacenter in direct mode went back to a relay that answered a probe");
}
