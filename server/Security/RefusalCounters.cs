namespace GeoRelay.Server.Security;

/// <summary>Why a connection was refused or cut by the transport's guards.</summary>
public enum RefusalKind
{
    /// <summary>A frame longer than <c>max-frame</c>.</summary>
    FrameTooLarge,
    /// <summary>Any other undecodable or unexpected frame.</summary>
    BadFrame,
    /// <summary>No handshake (TLS and Hello) within <c>handshake-timeout</c>.</summary>
    HandshakeTimeout,
    /// <summary>The Hello was refused: version, cluster, role, epoch.</summary>
    HandshakeRefused,
    /// <summary>Nothing received for <c>idle-timeout</c>.</summary>
    IdleTimeout,
    /// <summary>A frame begun and not finished within <c>frame-timeout</c> (a peer dribbling bytes).</summary>
    FrameTimeout,
    /// <summary>The port already had <c>max-connections-per-port</c> connections.</summary>
    PortFull,
    /// <summary>The remote address already had <c>max-connections-per-address</c> connections.</summary>
    AddressFull,
    /// <summary>More than <c>max-subscribes-per-second</c> Subscribe requests.</summary>
    SubscribeRate,
    /// <summary>Missing, forged or insufficient token; or a request outside its prefixes.</summary>
    Unauthorized,
    /// <summary>A token that expired while its connection was open.</summary>
    TokenExpired,
    /// <summary>A token whose key was removed or revoked, or which was itself revoked, while its connection was open.</summary>
    TokenRevoked,
    /// <summary>The TLS handshake failed: no certificate, wrong CA, or a certificate for another node.</summary>
    Tls,
    /// <summary>A learner or publisher from an address on the admin endpoint's blacklist (refused, or cut when it was added).</summary>
    Blacklisted,
    /// <summary>A learner cut through the admin endpoint (<c>POST /learners/{id}/disconnect</c>).</summary>
    AdminDisconnect,
}

/// <summary>
/// Counts of refused and cut connections by reason, for status pages and metrics (read with
/// <see cref="Get"/> or <see cref="Snapshot"/>; every increment is atomic).
/// </summary>
public sealed class RefusalCounters
{
    private static readonly RefusalKind[] Kinds = Enum.GetValues<RefusalKind>();
    private readonly long[] _counts = new long[Kinds.Length];

    public void Add(RefusalKind kind) => Interlocked.Increment(ref _counts[(int)kind]);

    public long Get(RefusalKind kind) => Interlocked.Read(ref _counts[(int)kind]);

    public long Total
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _counts.Length; i++) total += Interlocked.Read(ref _counts[i]);
            return total;
        }
    }

    public IReadOnlyList<(RefusalKind Kind, long Count)> Snapshot()
    {
        var list = new (RefusalKind, long)[Kinds.Length];
        for (int i = 0; i < Kinds.Length; i++) list[i] = (Kinds[i], Interlocked.Read(ref _counts[i]));
        return list;
    }
}
