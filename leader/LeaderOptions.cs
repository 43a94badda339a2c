using GeoRelay.Topology;

namespace GeoRelay.Leader;

/// <summary>How the leader sends; mapped from the topology file's defaults and command-line flags.</summary>
public sealed record LeaderOptions
{
    /// <summary>Send through each DC's relays; false sends to every member directly (the "direct" baseline). Default true.</summary>
    public bool UseRelays { get; init; } = true;

    /// <summary>Share entry ranges between recipients in a batch; false repeats them per recipient. Default true.</summary>
    public bool UseMux { get; init; } = true;

    /// <summary>zstd level for inter-node links; 0 turns compression off. Default: the topology's compression level.</summary>
    public int? CompressionLevel { get; init; }

    /// <summary>First reconnect delay after a failed dial. Default 50 ms.</summary>
    public TimeSpan ReconnectInitial { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Longest reconnect or relay-probe delay. Default 2 s.</summary>
    public TimeSpan ReconnectMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Send entries as soon as they are appended, while the leader's own fsync runs (Raft §10.2.1, as etcd does), so the
    /// followers' fsyncs overlap the leader's instead of following it. The commit index still waits for the leader's
    /// own durability. Only for an elected leader: a leader that crashes loses its unsynced tail, and only a new term
    /// (an election) tells its next entries at those indexes from the ones the followers hold. Default false.
    /// </summary>
    public bool SendBeforeDurable { get; init; }

    /// <summary>Hears of every entry before it is appended (a voter's configuration history). Default none.</summary>
    public GeoRelay.Engines.ILogObserver? LogObserver { get; init; }

    /// <summary>
    /// The commit index an earlier engine of the same epoch reached (the leader's engine is rebuilt when the membership
    /// changes): known committed, so the new engine starts from it. Default 0.
    /// </summary>
    public ulong KnownCommit { get; init; }

    /// <summary>
    /// The membership this leader acts on, sent first on every relay and member link of protocol 3 so followers number
    /// members as it does. Default: the topology's own, as configuration 0.
    /// </summary>
    public GeoRelay.Codec.Frames.ConfigurationFrame? Configuration { get; init; }

    /// <summary>Seed for back-off jitter (the simulator fixes it). Default 1.</summary>
    public int Seed { get; init; } = 1;

    public static LeaderOptions Default { get; } = new();
}
