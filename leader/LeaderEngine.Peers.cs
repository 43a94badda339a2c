namespace GeoRelay.Leader;

/// <summary>How the leader sees one relay of a datacenter.</summary>
public enum RelayState : byte
{
    /// <summary>The current route, connected and acking.</summary>
    Active,
    /// <summary>The current route, being dialed or not yet synced.</summary>
    Connecting,
    /// <summary>Abandoned after a failure; probed again with back-off.</summary>
    FailedOver,
    /// <summary>Not in use: a lower-priority relay while a better one serves, or while the datacenter is direct.</summary>
    Standby,
}

/// <summary>How the leader reaches one member.</summary>
public enum MemberReach : byte
{
    /// <summary>Acks arrive through the datacenter's relay.</summary>
    ViaRelay,
    /// <summary>The leader holds a direct connection to it.</summary>
    Direct,
    /// <summary>No path is up and synced.</summary>
    Down,
}

public sealed partial class LeaderEngine
{
    public readonly record struct RelayPeerStatus(string Id, RelayState State, int Failures);

    public readonly record struct MemberPeerStatus(string Id, MemberReach Reach, ulong Durable, ulong SentThrough);

    /// <summary>Per datacenter, in topology order: each relay's and member's state, for status pages.</summary>
    public List<(string Datacenter, List<RelayPeerStatus> Relays, List<MemberPeerStatus> Members)> PeerStatus()
    {
        var list = new List<(string, List<RelayPeerStatus>, List<MemberPeerStatus>)>(_datacenters.Length);
        foreach (var dc in _datacenters)
        {
            var relays = new List<RelayPeerStatus>(dc.Config.Relays.Count);
            for (int p = 0; p < dc.Config.Relays.Count; p++)
            {
                var state = p == dc.CurrentRelay
                    ? (dc.RelayConnection >= 0 && dc.RelaySynced ? RelayState.Active : RelayState.Connecting)
                    : dc.Health[p] == RelayHealth.Failed ? RelayState.FailedOver : RelayState.Standby;
                // In direct mode every relay is being probed after a failure.
                if (dc.IsDirect && dc.RelayBackoff[p].Failures > 0) state = RelayState.FailedOver;
                relays.Add(new RelayPeerStatus(dc.Config.Relays[p], state, dc.RelayBackoff[p].Failures));
            }
            var members = new List<MemberPeerStatus>(dc.Members.Length);
            foreach (var m in dc.Members)
            {
                var reach = !m.Reachable ? MemberReach.Down : m.DirectConnection >= 0 ? MemberReach.Direct : MemberReach.ViaRelay;
                members.Add(new MemberPeerStatus(m.Id, reach, m.Durable, m.SentThrough));
            }
            list.Add((dc.Config.Name, relays, members));
        }
        return list;
    }
}
