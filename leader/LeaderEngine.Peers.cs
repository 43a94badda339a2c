namespace GeoRelay.Leader;

/// <summary>How the leader sees one proxy of a datacenter.</summary>
public enum ProxyState : byte
{
    /// <summary>The current route, connected and acking.</summary>
    Active,
    /// <summary>The current route, being dialed or not yet synced.</summary>
    Connecting,
    /// <summary>Abandoned after a failure; probed again with back-off.</summary>
    FailedOver,
    /// <summary>Not in use: a lower-priority proxy while a better one serves, or while the datacenter is direct.</summary>
    Standby,
}

/// <summary>How the leader reaches one member.</summary>
public enum MemberReach : byte
{
    /// <summary>Acks arrive through the datacenter's proxy.</summary>
    ViaProxy,
    /// <summary>The leader holds a direct connection to it.</summary>
    Direct,
    /// <summary>No path is up and synced.</summary>
    Down,
}

public sealed partial class LeaderEngine
{
    public readonly record struct ProxyPeerStatus(string Id, ProxyState State, int Failures);

    public readonly record struct MemberPeerStatus(string Id, MemberReach Reach, ulong Durable, ulong SentThrough);

    /// <summary>Per datacenter, in topology order: each proxy's and member's state, for status pages.</summary>
    public List<(string Datacenter, List<ProxyPeerStatus> Proxies, List<MemberPeerStatus> Members)> PeerStatus()
    {
        var list = new List<(string, List<ProxyPeerStatus>, List<MemberPeerStatus>)>(_datacenters.Length);
        foreach (var dc in _datacenters)
        {
            var proxies = new List<ProxyPeerStatus>(dc.Config.Proxies.Count);
            for (int p = 0; p < dc.Config.Proxies.Count; p++)
            {
                var state = p == dc.CurrentProxy
                    ? (dc.ProxyConnection >= 0 && dc.ProxySynced ? ProxyState.Active : ProxyState.Connecting)
                    : dc.Health[p] == ProxyHealth.Failed ? ProxyState.FailedOver : ProxyState.Standby;
                // In direct mode every proxy is being probed after a failure.
                if (dc.IsDirect && dc.ProxyBackoff[p].Failures > 0) state = ProxyState.FailedOver;
                proxies.Add(new ProxyPeerStatus(dc.Config.Proxies[p], state, dc.ProxyBackoff[p].Failures));
            }
            var members = new List<MemberPeerStatus>(dc.Members.Length);
            foreach (var m in dc.Members)
            {
                var reach = !m.Reachable ? MemberReach.Down : m.DirectConnection >= 0 ? MemberReach.Direct : MemberReach.ViaProxy;
                members.Add(new MemberPeerStatus(m.Id, reach, m.Durable, m.SentThrough));
            }
            list.Add((dc.Config.Name, proxies, members));
        }
        return list;
    }
}
