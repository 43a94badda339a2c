using GeoRelay.Server.Admin;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>The admin routes <see cref="ConfigApplyDriver"/> drives a cluster with, each addressed to one node's admin endpoint (HOST:PORT).</summary>
public interface IConfigAdmin
{
    /// <summary><c>GET /config</c>.</summary>
    Task<AdminCall<ConfigReport>> ConfigAsync(string admin, CancellationToken ct);

    /// <summary><c>POST /config/propose</c>; 421 from a voter that does not lead, 409 when the leader refuses.</summary>
    Task<AdminCall<ConfigProposed>> ProposeAsync(string admin, Membership next, CancellationToken ct);

    /// <summary><c>GET /config/progress/{node}</c>.</summary>
    Task<AdminCall<ConfigProgress>> ProgressAsync(string admin, string node, CancellationToken ct);

    /// <summary><c>POST /transfer-leader/{to}</c>.</summary>
    Task<AdminCall<TransferStarted>> TransferLeadershipAsync(string admin, string to, CancellationToken ct);
}
