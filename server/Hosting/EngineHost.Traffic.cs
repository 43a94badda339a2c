using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Transport;

namespace GeoRelay.Server.Hosting;

/// <summary>Bytes to and from each peer over the host's lifetime, for metrics and status pages.</summary>
public readonly record struct PeerTraffic(string Peer, NodeKind Kind, PortKind Port, int Connections, long BytesSent, long BytesReceived);

public sealed partial class EngineHost
{
    // Totals of connections already closed, by peer key; touched under _gate.
    private readonly Dictionary<string, PeerTraffic> _closedTraffic = new();

    /// <summary>
    /// Learners and publishers come and go by the thousand under changing ids, so they are summed
    /// under one key each; peers (leader, relays, members) are counted by node id.
    /// </summary>
    public static string TrafficKey(in PeerInfo peer) => peer.Port switch
    {
        PortKind.Learner => "learners",
        PortKind.Publish => "publishers",
        _ => peer.NodeId,
    };

    private void RecordClosedTraffic(FramedConnection connection, PeerInfo peer)
    {
        string key = TrafficKey(peer);
        _closedTraffic.TryGetValue(key, out var t);
        _closedTraffic[key] = new PeerTraffic(key, peer.Kind, peer.Port, 0,
            t.BytesSent + Interlocked.Read(ref connection.BytesSent), t.BytesReceived + Interlocked.Read(ref connection.BytesReceived));
    }

    /// <summary>Per peer key: open connections, and bytes sent and received over closed and open connections alike (monotonic).</summary>
    public List<PeerTraffic> Traffic()
    {
        lock (_gate)
        {
            var totals = new Dictionary<string, PeerTraffic>(_closedTraffic);
            foreach (var (_, (c, p)) in _connections)
            {
                string key = TrafficKey(p);
                totals.TryGetValue(key, out var t);
                totals[key] = new PeerTraffic(key, p.Kind, p.Port, t.Connections + 1,
                    t.BytesSent + Interlocked.Read(ref c.BytesSent), t.BytesReceived + Interlocked.Read(ref c.BytesReceived));
            }
            var list = new List<PeerTraffic>(totals.Values);
            list.Sort((a, b) => string.CompareOrdinal(a.Peer, b.Peer));
            return list;
        }
    }
}
