using System.Text.Json.Serialization;

namespace GeoRelay.Server.Admin.Console;

/// <summary>What the console page shows, sent once a second on <c>GET /console/events</c>.</summary>
/// <param name="Node">The node serving the console.</param>
/// <param name="Note">Why the view is partial (this node cannot ask its peers), else null.</param>
/// <param name="Leader">The node that leads (a running node reporting the leader's role, the highest epoch if several); null when none answers as leader.</param>
public sealed record ConsoleSnapshot(string Cluster, DateTimeOffset At, string Node, string? Note, string? Leader, ulong Term,
    ulong Commit, ulong Last, IReadOnlyList<ConsoleDatacenter> Datacenters, IReadOnlyList<ConsoleNode> Nodes, IReadOnlyList<ConsoleEvent> Events);

/// <summary>One datacenter as the leader reports it; the leader's figures are null when no leader answered.</summary>
/// <param name="Route"><c>relay ID</c> or <c>direct</c> (the leader's word); null when unknown.</param>
/// <param name="CommitLag">Entries the leader holds that the datacenter has not acked.</param>
/// <param name="DirectFanoutBytes">What sending each entry uncompressed to every member and learner of the datacenter would have cost:
/// <c>entryBytesSent</c> times members plus learners connected now.</param>
public sealed record ConsoleDatacenter(string Name, string? Route, IReadOnlyList<string> Relays, int Members, int Learners,
    ulong? Acked, long? CommitLag, double? AckP50Seconds, double? AckP99Seconds, long? BytesSent, long? EntryBytesSent,
    double? CompressionRatio, long? DirectFanoutBytes, long? Failovers);

/// <param name="State">running, draining, deposed; <c>down</c> when it did not answer; <c>not asked</c> without an admin address.</param>
/// <param name="Detail">Why it is down, or its feed.</param>
/// <param name="Learners">Learners connected, for nodes with a learner port that answered.</param>
public sealed record ConsoleNode(string Id, string Datacenter, string Role, string State, string? Detail, int? Learners);

/// <summary>Something that changed between two views: a leader or term change, a route change, a node down or back.</summary>
/// <param name="Kind">leader, route, down or up.</param>
public sealed record ConsoleEvent(DateTimeOffset At, string Kind, string Message);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ConsoleSnapshot))]
internal sealed partial class ConsoleJson : JsonSerializerContext;
