using System.Text.Json.Serialization;

namespace GeoRelay.Server.Admin;

/// <summary>What `/status` answers: one node's role, epoch, indexes, lag and peers (the JSON `georelay status` reads).</summary>
/// <param name="State">running, draining or deposed.</param>
/// <param name="Lag">Leader: entries appended but not committed. Relay: entries retained but not durable on its slowest up member. Member: commit index it was told minus its durable index.</param>
/// <param name="Batches">Leader: batches sent to every datacenter; relay: batches received from the leader; member: 0.</param>
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
    LearnerReport? Learners);

/// <param name="Retained">A relay's retention head (what it can serve learners); 0 elsewhere.</param>
public sealed record StatusIndexes(ulong Last, ulong Durable, ulong Commit, ulong Retained);

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
public sealed record DatacenterReport(string Name, string Route, bool Connected, ulong Acked, long Lag, long Batches,
    long BytesSent, long EntryBytesSent, double CompressionRatio, long Failovers, long InflightBytes, double DirectSeconds);

public sealed record LearnerReport(int Connected, long SlowConsumerCuts, long FramesSent);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NodeStatusReport))]
[JsonSerializable(typeof(HealthReport))]
public sealed partial class AdminJson : JsonSerializerContext;

public sealed record HealthReport(string Status, string Node, string Role);
