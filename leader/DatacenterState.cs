using GeoRelay.Topology;
using GeoRelay.Engines;

namespace GeoRelay.Leader;

public enum RelayHealth : byte
{
    Unknown,
    Healthy,
    Failed,
}

/// <summary>What the leader knows of one member: what it holds durably and what was sent to it.</summary>
internal sealed class MemberState(string id, int slot, bool voting)
{
    public string Id { get; } = id;
    public int Slot { get; } = slot;
    /// <summary>False for a non-voting member (catching up before promotion): it is sent everything and counts for no commit.</summary>
    public bool Voting { get; } = voting;
    public ulong Durable;
    /// <summary>Highest index sent on the current path; reset to Durable whenever the path is new.</summary>
    public ulong SentThrough;
    /// <summary>The current path (relay link, or direct connection) is up and synced.</summary>
    public bool Reachable;
    public int DirectConnection = -1;
    public bool DialPending;
    public Backoff Backoff;
}

internal sealed class DatacenterState
{
    public DatacenterConfig Config { get; }
    public MemberState[] Members { get; }
    public RelayHealth[] Health { get; }
    public Backoff[] RelayBackoff { get; }
    public bool[] RelayDialPending { get; }
    /// <summary>Per relay: since when it has answered every probe without a break (failback), or -1.</summary>
    public long[] HealthySinceMicros { get; }

    /// <summary>Index into Config.Relays of the relay in use, or -1 when sending directly.</summary>
    public int CurrentRelay = -1;
    public int RelayConnection = -1;
    /// <summary>The relay has sent its first DcAck on this connection, so sent positions are known.</summary>
    public bool RelaySynced;
    public ulong RetainedSentThrough;
    public long LastHeardMicros;

    public readonly Queue<(ulong Through, long Bytes)> Inflight = new();
    public long InflightBytes;
    public ulong Delivered;
    public long BytesSent;
    public long EntryBytesSent;
    public long Batches;
    public long Failovers;
    public long DirectFallbacks;
    public long RelayReturns;
    public long Failbacks;
    /// <summary>When the last failback happened, and its damping level (see <see cref="FailbackAfterMicros"/>).</summary>
    public long LastFailbackMicros = long.MinValue / 2;
    public int FailbackLevel;
    /// <summary>Highest retained index the current relay acked, and when it last moved (or work was first outstanding).</summary>
    public ulong RetainedAcked;
    public long LastAckProgressMicros;
    public long DirectSinceMicros = -1;
    public long DirectMicrosTotal;
    /// <summary>When a relay of this datacenter last timed out, and the damping level it left (see <see cref="FailoverLimitMicros"/>).</summary>
    public long LastTimeoutMicros = long.MinValue / 2;
    public int TimeoutLevel;

    public const int MaxTimeoutLevel = 3;

    /// <summary>
    /// How long the current relay may stay silent (or not make ack progress) before it is abandoned:
    /// <paramref name="failoverAfter"/> doubled once per damping level (at most 8x). A timeout that follows the
    /// previous one while its limit is still raised, or within ten limits, adds a level; ten limits without a
    /// timeout take one away. Relays that keep timing out one after another are more likely a slow link or an
    /// overloaded machine than dead relays: damping stops the route from flapping between them. A closed
    /// connection or a refused dial still fails over at once.
    /// </summary>
    public long FailoverLimitMicros(long failoverAfter, long now) => failoverAfter << Damping(failoverAfter, now).Level;

    /// <summary>Records a relay timeout now.</summary>
    public void NoteTimeout(long failoverAfter, long now)
    {
        var (level, recent) = Damping(failoverAfter, now);
        TimeoutLevel = recent ? Math.Min(level + 1, MaxTimeoutLevel) : 0;
        LastTimeoutMicros = now;
    }

    /// <summary>The damping level now, and whether the last timeout is recent (within ten limits of that level).</summary>
    private (int Level, bool Recent) Damping(long failoverAfter, long now)
    {
        int level = TimeoutLevel;
        long quiet = now - LastTimeoutMicros;
        while (true)
        {
            long window = 10 * (failoverAfter << level);
            if (quiet < window) return (level, true);
            if (level == 0) return (0, false);
            quiet -= window;
            level--;
        }
    }

    /// <summary>
    /// How long a relay of higher priority must answer probes before the datacenter moves back to it:
    /// <paramref name="failbackAfter"/>, doubled (at most 8x) per failback whose relay failed again within ten of these
    /// periods. A relay that keeps coming and going then stops pulling the datacenter back and forth.
    /// </summary>
    public long FailbackAfterMicros(long failbackAfter) => failbackAfter << FailbackLevel;

    /// <summary>The current relay failed: if the datacenter failed back to it recently, failing back is damped further.</summary>
    public void NoteRelayFailed(long failbackAfter, long now)
    {
        if (now - LastFailbackMicros < 10 * FailbackAfterMicros(failbackAfter)) FailbackLevel = Math.Min(FailbackLevel + 1, MaxTimeoutLevel);
        else FailbackLevel = 0;
        LastFailbackMicros = long.MinValue / 2;
    }

    public DatacenterState(DatacenterConfig config, Func<string, bool> votes)
    {
        Config = config;
        Members = new MemberState[config.Members.Count];
        for (int i = 0; i < Members.Length; i++)
        {
            Members[i] = new MemberState(config.Members[i], i, votes(config.Members[i]));
            if (Members[i].Voting) VotingMembers++;
        }
        Health = new RelayHealth[config.Relays.Count];
        RelayBackoff = new Backoff[config.Relays.Count];
        RelayDialPending = new bool[config.Relays.Count];
        HealthySinceMicros = new long[config.Relays.Count];
        Array.Fill(HealthySinceMicros, -1);
    }

    public int VotingMembers { get; }

    public bool HasRelays => Config.Relays.Count > 0;
    public bool IsDirect => CurrentRelay < 0;
    public string? CurrentRelayId => CurrentRelay >= 0 ? Config.Relays[CurrentRelay] : null;
}
