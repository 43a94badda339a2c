using GeoRelay.Topology;

namespace GeoRelay.Engines;

/// <summary>A stable hash of who is where, so nodes with different topology files refuse each other.</summary>
public static class TopologyFingerprint
{
    public static ulong Of(TopologyConfig topology)
    {
        var text = new System.Text.StringBuilder();
        text.Append(topology.Cluster).Append('|').Append(topology.LeaderId);
        foreach (var dc in topology.Datacenters)
        {
            text.Append('|').Append(dc.Name).Append(":p=");
            foreach (var p in dc.Relays) text.Append(p).Append(',');
            text.Append(";m=");
            foreach (var m in dc.Members) text.Append(m).Append(',');
        }
        return GeoRelay.Codec.Frames.ProtocolVersion.Fnv1a64(text.ToString());
    }
}
