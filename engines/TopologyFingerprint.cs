using GeoRelay.Topology;

namespace GeoRelay.Engines;

/// <summary>A stable hash of who is where, so nodes with different topology files refuse each other.</summary>
public static class TopologyFingerprint
{
    /// <summary>Hashes the file's view: every node gets the same value whoever leads at the moment.</summary>
    public static ulong Of(TopologyConfig topology)
    {
        topology = topology.AsWritten;
        var text = new System.Text.StringBuilder();
        text.Append(topology.Cluster).Append('|').Append(topology.LeaderId);
        foreach (var dc in topology.Datacenters)
        {
            text.Append('|').Append(dc.Name).Append(":p=");
            foreach (var p in dc.Relays) text.Append(p).Append(',');
            text.Append(";m=");
            foreach (var m in dc.Members) text.Append(m).Append(',');
        }
        // Absent in older files: their hash stays what it was.
        if (topology.LeaderCandidates is { } candidates) text.Append("|c=").AppendJoin(',', candidates);
        // Relays must agree on who feeds whom (a relay refuses a child that does not list it).
        foreach (var dc in topology.Datacenters)
            foreach (var relay in dc.Relays)
                if (topology.GetNode(relay).FeedFrom is { Count: > 0 } parents) text.Append("|f=").Append(relay).Append(':').AppendJoin(',', parents);
        // Only files with non-voters get this part, so every older file hashes as before.
        var nonVoters = new List<string>();
        foreach (var member in topology.AllMembers)
            if (!member.Voter) nonVoters.Add(member.Id);
        if (nonVoters.Count > 0) text.Append("|nv=").AppendJoin(',', nonVoters);
        return GeoRelay.Codec.Frames.ProtocolVersion.Fnv1a64(text.ToString());
    }
}
