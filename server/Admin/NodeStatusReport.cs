using System.Text.Json.Serialization;

namespace GeoRelay.Server.Admin;

/// <summary>What `/status` answers: one node's role, epoch, indexes, lag and peers (the JSON `georelay status` reads).</summary>
/// <param name="State">running, draining or deposed.</param>
/// <param name="Lag">Leader: entries appended but not committed. Relay: entries retained but not durable on its slowest up member. Member: commit index it was told minus its durable index.</param>
/// <param name="Batches">Leader: batches sent to every datacenter; relay: batches received from the leader; member: 0.</param>
/// <param name="Feed">Where the node's entries come from now: a relay's <c>leader ID</c> or <c>relay ID</c> (null while unfed);
/// a member's upstreams that are connected (<c>relay ID</c>, <c>leader ID</c>), null when none is; <c>leader</c> on the node that leads.</param>
public sealed record NodeStatusReport(
    string Node,
    string Role,
    string Datacenter,
    ulong Epoch,
    string State,
    StatusIndexes Indexes,
    long Lag,
    long Batches,
    IReadOnlyList<PeerReport> Peers,
    IReadOnlyList<DatacenterReport> Datacenters,
    LearnerReport? Learners,
    IReadOnlyDictionary<string, long>? Refusals = null,
    ElectionReport? Election = null,
    string? Feed = null,
    KeyedStateReport? Keyed = null);

/// <summary>The node's keyed state (<c>compaction: keyed</c>); absent without keyed compaction.</summary>
/// <param name="Complete">False after the node's log was installed past its state, until another node's state is merged.</param>
/// <param name="Through">The state is that of the log through this index (folded through).</param>
/// <param name="PersistedThrough">The <c>keyed-state</c> file holds the state through this index; retention drops nothing above it.</param>
/// <param name="MissingThrough">While incomplete: the writes through this index are missing; 0 when complete.</param>
/// <param name="ImagesInstalled">States taken from another node since start (installs that carried the state).</param>
public sealed record KeyedStateReport(bool Complete, ulong Through, ulong PersistedThrough, ulong MissingThrough, int LiveKeys, int Tombstones,
    long Bytes, long ImagesInstalled)
{
    public static KeyedStateReport? Of(GeoRelay.Storage.IEntryLog log) => log is GeoRelay.Storage.KeyedLog k
        ? new KeyedStateReport(k.HasCompleteState, k.Through, k.PersistedThrough, k.MissingThrough, k.LiveKeys, k.Tombstones, k.StateBytes, k.ImagesInstalled)
        : null;
}

/// <summary>A voter's election state (nodes with <c>elections: true</c>).</summary>
/// <param name="Role">follower, precandidate, candidate or leader.</param>
/// <param name="Leader">The leader this voter knows of in <paramref name="Term"/>, if any.</param>
/// <param name="RoleChanges">Times this node took or gave up the leader's role since it started.</param>
public sealed record ElectionReport(ulong Term, string Role, string? Leader, string? VotedFor, int RoleChanges);

/// <param name="Retained">A relay's retention head (what it can serve learners); 0 elsewhere.</param>
/// <param name="Oldest">The oldest index the node still holds (retention drops whole segments from the oldest); 0 when empty.</param>
public sealed record StatusIndexes(ulong Last, ulong Durable, ulong Commit, ulong Retained, ulong Oldest = 0);

/// <summary>One peer (or all learners, or all publishers) of the node.</summary>
/// <param name="State">Leader's relays: active, connecting, failed-over, standby; its members: via-relay, direct, down.
/// Relay's leader: active or down; its members: up or down. Member's upstreams: connected or idle.</param>
/// <param name="Index">The peer's durable index where the node knows it (members), or the datacenter's acked index (a leader's relays).</param>
/// <param name="Lag">Entries the node holds that the peer has not acked, where known.</param>
public sealed record PeerReport(string Id, string Role, string Datacenter, string State, int Connections,
    long BytesSent, long BytesReceived, ulong? Index, long? Lag);

/// <summary>The leader's view of one datacenter.</summary>
/// <param name="Acked">Highest index durable on every reachable member of the datacenter.</param>
/// <param name="CompressionRatio">Entry bytes sent per wire byte sent (mux sharing and zstd together); 0 before anything was sent.</param>
/// <param name="AckP50Seconds">Median time from durable on the leader to acked by the datacenter, over its last 1024 samples; null where not measured.</param>
/// <param name="AckP99Seconds">The 99th percentile of the same samples.</param>
public sealed record DatacenterReport(string Name, string Route, bool Connected, ulong Acked, long Lag, long Batches,
    long BytesSent, long EntryBytesSent, double CompressionRatio, long Failovers, long InflightBytes, double DirectSeconds,
    double? AckP50Seconds = null, double? AckP99Seconds = null);

/// <param name="Connected">Connections on the learner port (relays taking their feed from this one are not learners).</param>
/// <param name="Connections">Each learner connection, oldest first.</param>
/// <param name="Max">The node's <c>max-learners</c> (its own, else the defaults'); null for no limit.</param>
public sealed record LearnerReport(int Connected, long SlowConsumerCuts, long FramesSent, IReadOnlyList<LearnerConnectionReport>? Connections = null,
    int? Max = null);

/// <summary>One learner connection of a relay or member.</summary>
/// <param name="Connection">The id to disconnect it by (<c>POST /learners/{connection}/disconnect</c>).</param>
/// <param name="Id">The node id the learner gave in its handshake.</param>
/// <param name="Prefix">The key prefix it subscribed with; null for every key.</param>
/// <param name="State">awaiting-subscribe, catching-up, live, refilling (from a member) or closing.</param>
/// <param name="ReceivedIndex">The highest index sent to it (handed to its connection).</param>
/// <param name="DeliveredIndex">The highest index its application confirmed (Confirm frames), capped at what was sent; 0 before the first.</param>
public sealed record LearnerConnectionReport(int Connection, string Id, string? Remote, string? Prefix, string State,
    ulong From, ulong ReceivedIndex, ulong DeliveredIndex, long QueuedBytes);

/// <summary>One blacklist entry, as <c>GET /blacklist</c> lists it.</summary>
/// <param name="Until">When it lapses; null until removed.</param>
public sealed record BlacklistReport(string Range, DateTimeOffset Added, DateTimeOffset? Until);

/// <summary>What <c>POST /blacklist</c> takes: an address or CIDR range, and for how long (<c>30m</c>, <c>12h</c>; none for good).</summary>
public sealed record BlacklistRequest(string? Address, string? Duration);

/// <summary>What <c>POST /blacklist</c> answers: the entry, and how many connections from it were cut.</summary>
public sealed record BlacklistAdded(BlacklistReport Entry, int Cut);

/// <summary>What <c>POST /learners/{connection}/disconnect</c> answers.</summary>
public sealed record LearnerDisconnected(string Node, int Connection);

/// <summary>The answer to POST /transfer-leader/{to}: the transfer began in <paramref name="Term"/>.</summary>
public sealed record TransferStarted(string From, string To, ulong Term);

/// <summary>The body of every admin error (400, 401, 403, 404): a short code and a sentence saying what is wrong.</summary>
/// <param name="Leader">On a 421 from a voter that does not lead (<c>/config</c> routes): the leader it knows, if any.</param>
/// <param name="LeaderAdmin">The leader's admin endpoint, so a client can follow it.</param>
public sealed record AdminError(string Error, string Message, string? Leader = null, string? LeaderAdmin = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NodeStatusReport))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(IReadOnlyList<LearnerConnectionReport>))]
[JsonSerializable(typeof(IReadOnlyList<BlacklistReport>))]
[JsonSerializable(typeof(BlacklistRequest))]
[JsonSerializable(typeof(BlacklistAdded))]
[JsonSerializable(typeof(LearnerDisconnected))]
[JsonSerializable(typeof(TransferStarted))]
[JsonSerializable(typeof(AdminError))]
[JsonSerializable(typeof(ConfigReport))]
[JsonSerializable(typeof(ConfigProposal))]
[JsonSerializable(typeof(ConfigProposed))]
[JsonSerializable(typeof(ConfigProgress))]
public sealed partial class AdminJson : JsonSerializerContext;

public sealed record HealthReport(string Status, string Node, string Role);
