using System.Net;
using GeoRelay.Codec;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// The host's open connections, the guards of those accepted on a checked port, and the byte totals of those
/// already closed. It shares the engine's lock: <see cref="Add"/>, <see cref="Remove"/>, <see cref="Find"/> and
/// <see cref="QueuedBytes"/> run with it held (the engine is told in the same step), the rest take it.
/// </summary>
internal sealed class ConnectionTable(object gate, ConnectionOptions options, TokenVerifier? tokens, RefusalCounters refusals, ILogger logger)
{
    private readonly Dictionary<int, (FramedConnection Connection, PeerInfo Peer)> _connections = new();
    private readonly Dictionary<int, ConnectionGuard> _guards = new();
    // Totals of connections already closed, by peer key.
    private readonly Dictionary<string, PeerTraffic> _closedTraffic = new();

    public void Add(FramedConnection connection, PeerInfo peer, ConnectionGuard? guard)
    {
        _connections[connection.Id] = (connection, peer);
        if (guard is not null) _guards[connection.Id] = guard;
    }

    public void Remove(FramedConnection connection, PeerInfo peer)
    {
        _connections.Remove(connection.Id);
        RecordClosedTraffic(connection, peer);
        _guards.Remove(connection.Id);
    }

    public FramedConnection? Find(int connection) =>
        _connections.TryGetValue(connection, out var c) ? c.Connection : null;

    public long QueuedBytes(int connection) =>
        _connections.TryGetValue(connection, out var c) ? c.Connection.QueuedBytes : 0;

    public int Count
    {
        get { lock (gate) return _connections.Count; }
    }

    public List<FramedConnection> All()
    {
        lock (gate)
        {
            var open = new List<FramedConnection>();
            foreach (var (_, (c, _)) in _connections) open.Add(c);
            return open;
        }
    }

    public List<(PeerInfo Peer, EndPoint? Remote, long BytesSent, long BytesReceived, long Queued)> Snapshot()
    {
        lock (gate)
        {
            var list = new List<(PeerInfo, EndPoint?, long, long, long)>(_connections.Count);
            foreach (var (_, (c, p)) in _connections)
                list.Add((p, c.RemoteEndPoint, Interlocked.Read(ref c.BytesSent), Interlocked.Read(ref c.BytesReceived), c.QueuedBytes));
            return list;
        }
    }

    private void RecordClosedTraffic(FramedConnection connection, PeerInfo peer)
    {
        string key = EngineHost.TrafficKey(peer);
        _closedTraffic.TryGetValue(key, out var t);
        _closedTraffic[key] = new PeerTraffic(key, peer.Kind, peer.Port, 0,
            t.BytesSent + Interlocked.Read(ref connection.BytesSent), t.BytesReceived + Interlocked.Read(ref connection.BytesReceived));
    }

    public List<PeerTraffic> Traffic()
    {
        lock (gate)
        {
            var totals = new Dictionary<string, PeerTraffic>(_closedTraffic);
            foreach (var (_, (c, p)) in _connections)
            {
                string key = EngineHost.TrafficKey(p);
                totals.TryGetValue(key, out var t);
                totals[key] = new PeerTraffic(key, p.Kind, p.Port, t.Connections + 1,
                    t.BytesSent + Interlocked.Read(ref c.BytesSent), t.BytesReceived + Interlocked.Read(ref c.BytesReceived));
            }
            var list = new List<PeerTraffic>(totals.Values);
            list.Sort((a, b) => string.CompareOrdinal(a.Peer, b.Peer));
            return list;
        }
    }

    /// <summary>
    /// Cuts connections that sent nothing for the idle timeout or left a frame unfinished for the frame timeout, and
    /// token holders whose token expired, or was revoked by a reload since it was last checked.
    /// </summary>
    public void SweepIdleAndExpired(long nowMillis)
    {
        long idleMillis = (long)options.IdleTimeout.TotalMilliseconds;
        long frameMillis = (long)options.FrameTimeout.TotalMilliseconds;
        var utcNow = DateTimeOffset.UtcNow;
        var current = tokens?.Current;
        lock (gate)
        {
            foreach (var (id, (connection, peer)) in _connections)
            {
                if (connection.CloseReason is not null) continue;
                // Peers we dialed are watched by the engines' own failure detection.
                bool accepted = peer.Port != PortKind.Outbound;
                long partialSince = connection.PartialFrameSinceMillis;
                if (accepted && nowMillis - connection.LastReceivedMillis > idleMillis)
                    Cut(connection, peer, RefusalKind.IdleTimeout, CodecError.Timeout, $"nothing received for {idleMillis} ms");
                else if (accepted && partialSince != 0 && nowMillis - partialSince > frameMillis)
                    Cut(connection, peer, RefusalKind.FrameTimeout, CodecError.Timeout,
                        $"a frame begun {nowMillis - partialSince} ms ago is still incomplete ({connection.PartialFrameBytes} bytes received); frame-timeout is {frameMillis} ms");
                else if (_guards.TryGetValue(id, out var guard) && guard.Claims is { } claims)
                {
                    if (claims.Expires <= utcNow)
                        Cut(connection, peer, RefusalKind.TokenExpired, CodecError.Unauthorized, $"token for '{claims.Subject}' expired at {claims.Expires:u}");
                    else if (current is not null && guard.TokenVersion != current.Version)
                    {
                        guard.TokenVersion = current.Version;
                        if (current.Authority.IsRevoked(claims, out string why)) Cut(connection, peer, RefusalKind.TokenRevoked, CodecError.Unauthorized, why);
                    }
                }
            }
        }
    }

    /// <summary>The remote address of an open connection (lock held, as for <see cref="Find"/>).</summary>
    public EndPoint? RemoteOf(int connection) =>
        _connections.TryGetValue(connection, out var c) ? c.Connection.RemoteEndPoint : null;

    /// <summary>Cuts one learner-port connection; false when <paramref name="connection"/> is not an open learner connection.</summary>
    public bool CutLearner(int connection, string message)
    {
        lock (gate)
        {
            if (!_connections.TryGetValue(connection, out var c) || c.Peer.Port != PortKind.Learner || c.Connection.CloseReason is not null) return false;
            Cut(c.Connection, c.Peer, RefusalKind.AdminDisconnect, CodecError.None, message);
            return true;
        }
    }

    /// <summary>Cuts learner and publish connections from an address <paramref name="blacklist"/> covers; returns how many.</summary>
    public int CutBlacklisted(AddressBlacklist blacklist)
    {
        int cut = 0;
        lock (gate)
        {
            foreach (var (_, (connection, peer)) in _connections)
            {
                if (peer.Port is not (PortKind.Learner or PortKind.Publish) || connection.CloseReason is not null) continue;
                if (connection.RemoteEndPoint is not IPEndPoint { Address: var address } || blacklist.Match(address) is not { } entry) continue;
                Cut(connection, peer, RefusalKind.Blacklisted, CodecError.Unauthorized, AddressBlacklist.Refusal(address, entry));
                cut++;
            }
        }
        return cut;
    }

    private void Cut(FramedConnection connection, PeerInfo peer, RefusalKind kind, CodecError reason, string message)
    {
        refusals.Add(kind);
        EngineHostLog.LimitBroken(logger, peer.NodeId, connection.RemoteEndPoint, kind, message);
        connection.Close(reason, message);
    }
}
