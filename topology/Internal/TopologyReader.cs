using System.Globalization;
using System.Text.RegularExpressions;

namespace GeoRelay.Topology.Internal;

/// <summary>
/// Turns the YAML tree into a <see cref="TopologyConfig"/>, collecting every problem instead of
/// stopping at the first. All checks use dictionaries keyed by id, so validation stays linear in the
/// size of the file.
/// </summary>
internal sealed partial class TopologyReader(string fileName)
{
    private static readonly string[] TopLevelKeys = ["cluster", "leader", "quorum", "defaults", "datacenters", "nodes", "tls", "auth", "insecure", "leader-candidates"];
    private static readonly string[] DefaultsKeys =
        ["heartbeat", "failover-after", "election-timeout", "elections", "batch", "window", "compression", "retention", "max-frame", "learner-backlog", "delivery", "handshake-timeout", "fsync",
         "idle-timeout", "frame-timeout", "max-connections-per-port", "max-connections-per-address", "max-subscribes-per-second",
         "failback-after", "max-learners", "segment-format", "compaction", "tombstone-retention"];
    private static readonly string[] BatchKeys = ["max-bytes", "linger"];
    private static readonly string[] CompressionKeys = ["level", "local-level"];
    private static readonly string[] RetentionKeys = ["max-bytes", "max-age"];
    private static readonly string[] DatacenterKeys = ["relays", "members"];

    /// <summary>Keys renamed since an older release: their old spelling still reads as the new one.</summary>
    private static readonly Dictionary<string, string> OldKeySpellings = new(StringComparer.Ordinal) { ["proxies"] = "relays" };
    private static readonly string[] NodeKeys = ["dc", "listen", "publish", "learners", "admin", "web", "feed-from", "max-learners", "voter"];

    internal const long MinMaxFrame = 64L << 10;
    /// <summary>A learner's queue must hold two Deliver frames (256 KiB each): catch-up pauses at half of it.</summary>
    internal const long MinLearnerBacklog = 512L << 10;
    internal const long MaxMaxFrame = 1L << 30;
    internal const int MaxCompressionLevel = 22;

    private readonly List<ConfigProblem> _problems = [];
    // Found in a readable file: they stop nodes from starting (check-config fails on them) but not tools from reading it.
    private readonly List<ConfigProblem> _startProblems = [];
    private readonly List<ConfigProblem> _warnings = [];

    private sealed class NodeDraft(string id, YamlScalar key)
    {
        public string Id { get; } = id;
        public YamlScalar Key { get; } = key;
        public string? Datacenter { get; set; }
        public YamlNode? DatacenterAt { get; set; }
        public HashSet<string> EndpointKeysPresent { get; } = new(StringComparer.Ordinal);
        public List<(string Key, NodeEndpoint Endpoint, YamlNode At)> Endpoints { get; } = [];
        public NodeRole? Role { get; set; }
        public List<YamlScalar>? FeedFrom { get; set; }
        public YamlNode? FeedFromAt { get; set; }
        public int? MaxLearners { get; set; }
        public YamlNode? MaxLearnersAt { get; set; }
        public bool Voter { get; set; } = true;
        public YamlNode? VoterAt { get; set; }
        public string? ListedIn { get; set; }
        /// <summary>Its settings were missing or not a mapping (already reported): skip checks that would only repeat that.</summary>
        public bool Incomplete { get; set; }
        public YamlNode? ListedAt { get; set; }

        public NodeEndpoint? Get(string key)
        {
            foreach (var e in Endpoints)
            {
                if (e.Key == key)
                {
                    return e.Endpoint;
                }
            }
            return null;
        }
    }

    private sealed class DatacenterDraft(string name, YamlScalar key)
    {
        public string Name { get; } = name;
        public YamlScalar Key { get; } = key;
        public List<YamlScalar> Relays { get; } = [];
        public List<YamlScalar> Members { get; } = [];
        public YamlNode? RelaysAt { get; set; }
        /// <summary>The members entry was not a list (already reported).</summary>
        public bool MembersBroken { get; set; }
    }

    // Set when a datacenter's list could not be read: nodes meant for it would be reported as
    // listed nowhere, which only repeats the problem already reported.
    private bool _listsIncomplete;

    public TopologyLoadResult Read(string yaml, string sourcePath)
    {
        var root = YamlTreeReader.Read(yaml, (line, column, message) => _problems.Add(new ConfigProblem(fileName, line, column, message)));
        if (root is null)
        {
            return Finish(null);
        }
        if (root is not YamlMapping top)
        {
            Problem(root, $"expected a mapping with the keys {string.Join(", ", TopLevelKeys)}; found {root.KindName}");
            return Finish(null);
        }

        string? cluster = null;
        string? leaderId = null;
        YamlNode? leaderAt = null;
        var quorum = QuorumSpec.Majority;
        YamlNode? quorumAt = null;
        var defaults = ClusterDefaults.Default;
        YamlMapping? datacentersMap = null;
        YamlMapping? nodesMap = null;
        TlsConfig? tls = null;
        AuthConfig? auth = null;
        bool insecure = false;
        YamlNode? insecureAt = null;
        List<YamlScalar>? candidates = null;
        var present = new HashSet<string>(StringComparer.Ordinal);

        ForEachKey(top, "at the top level", TopLevelKeys, (key, keyNode, value) =>
        {
            present.Add(key);
            switch (key)
            {
                case "cluster":
                    if (TryString(value, "cluster", out string? name) && CheckName(value, name, "cluster name"))
                    {
                        cluster = name;
                    }
                    break;
                case "leader":
                    if (TryString(value, "leader", out string? id))
                    {
                        leaderId = id;
                        leaderAt = value;
                    }
                    break;
                case "quorum":
                    if (TryString(value, "quorum", out string? q))
                    {
                        if (QuorumSpec.TryParse(q, out var parsed, out string? error))
                        {
                            quorum = parsed;
                            quorumAt = value;
                        }
                        else
                        {
                            Problem(value, error!);
                        }
                    }
                    break;
                case "defaults":
                    if (value is YamlScalar { IsNull: true })
                    {
                        break;
                    }
                    if (Expect<YamlMapping>(value, "defaults", out var defaultsMap))
                    {
                        defaults = ReadDefaults(defaultsMap);
                    }
                    break;
                case "datacenters":
                    if (Expect<YamlMapping>(value, "datacenters", out var dcs))
                    {
                        datacentersMap = dcs;
                    }
                    break;
                case "nodes":
                    if (Expect<YamlMapping>(value, "nodes", out var nodes))
                    {
                        nodesMap = nodes;
                    }
                    break;
                case "tls":
                    tls = ReadTls(value, sourcePath);
                    break;
                case "auth":
                    auth = ReadAuth(value, sourcePath);
                    break;
                case "insecure":
                    insecure = ReadBool(value, "insecure", false);
                    insecureAt = value;
                    break;
                case "leader-candidates":
                    candidates = ReadIdList(value, "leader-candidates");
                    if (candidates is { Count: 0 })
                    {
                        Problem(value, "leader-candidates is empty; leave it out to let every voter lead");
                    }
                    break;
            }
        });

        foreach (string required in (ReadOnlySpan<string>)["cluster", "leader", "datacenters", "nodes"])
        {
            if (!present.Contains(required))
            {
                Problem(top, $"missing required key '{required}'" + RequiredKeyHint(required));
            }
        }

        var nodes = nodesMap is null ? null : ReadNodes(nodesMap);
        var datacenters = datacentersMap is null ? null : ReadDatacenters(datacentersMap);

        NodeDraft? leader = null;
        if (leaderId is not null && nodes is not null)
        {
            if (nodes.TryGetValue(leaderId, out leader))
            {
                leader.Role = NodeRole.Leader;
                leader.ListedAt = leaderAt;
            }
            else
            {
                Problem(leaderAt!, $"leader '{leaderId}' is not a node; define it under 'nodes'" + Suggest(leaderId, nodes.Keys));
            }
        }

        int memberCount = 0;
        if (datacenters is not null && nodes is not null)
        {
            memberCount = PlaceNodes(datacenters, nodes, leader);
        }
        if (nodes is not null)
        {
            CheckNodes(nodes, datacenters);
            CheckFeeds(nodes);
        }
        if (datacenters is not null)
        {
            foreach (var dc in datacenters.Values)
            {
                if (dc.Members.Count == 0 && !dc.MembersBroken)
                {
                    Problem(dc.Key, $"datacenter '{dc.Name}' has no members; list at least one under 'members'");
                }
            }
        }
        int votingMembers = memberCount;
        if (datacenters is not null && nodes is not null)
        {
            votingMembers = CheckNonVoters(nodes, memberCount);
        }
        if (quorumAt is not null && quorum.Kind == QuorumKind.Count && quorum.Count > votingMembers && datacenters is not null && nodes is not null)
        {
            string members = $"{votingMembers}{(votingMembers == memberCount ? "" : " voting")} member{(votingMembers == 1 ? "" : "s")}";
            string nonVoters = votingMembers == memberCount ? "" : $" ({memberCount - votingMembers} of its {memberCount} members have voter: false)";
            Problem(quorumAt, $"quorum {quorum.Count} is larger than the {members} of the cluster{nonVoters}");
        }

        if (candidates is not null && nodes is not null && leader is not null)
        {
            CheckCandidates(candidates, nodes, leader);
        }

        if (insecure && present.Contains("tls"))
        {
            Problem(insecureAt!, "insecure: true contradicts the 'tls' section; remove one (with tls every link is authenticated and encrypted)");
        }

        if (_problems.Count > 0 || cluster is null || leader is null || nodes is null || datacenters is null)
        {
            return Finish(null);
        }
        CheckSecurityPosture(top, tls, insecure, insecureAt, nodes);
        return Finish(Build(cluster, leader, quorum, defaults, datacenters, nodes, sourcePath) with
        {
            Tls = tls, Auth = auth, Insecure = insecure, LeaderCandidates = candidates?.ConvertAll(c => c.Value),
        });
    }

    private TopologyLoadResult Finish(TopologyConfig? config)
    {
        if (_problems.Count > 0)
        {
            // Stable: problems at the same position keep the order in which they were found.
            var sorted = _problems.OrderBy(p => p.Line).ThenBy(p => p.Column).ToArray();
            return new TopologyLoadResult(null, sorted);
        }
        return new TopologyLoadResult(config, [], Sorted(_startProblems), Sorted(_warnings));

        static ConfigProblem[] Sorted(List<ConfigProblem> list) => list.OrderBy(p => p.Line).ThenBy(p => p.Column).ToArray();
    }

    // ---- defaults ----

    private ClusterDefaults ReadDefaults(YamlMapping map)
    {
        var d = ClusterDefaults.Default;
        YamlNode? heartbeatAt = null, failoverAt = null, electionAt = null, batchBytesAt = null, windowAt = null, maxFrameAt = null;

        ForEachKey(map, "in 'defaults'", DefaultsKeys, (key, _, value) =>
        {
            string path = "defaults." + key;
            switch (key)
            {
                case "heartbeat":
                    if (TryDuration(value, path, allowZero: false, out var heartbeat))
                    {
                        d = d with { Heartbeat = heartbeat };
                        heartbeatAt = value;
                    }
                    break;
                case "failover-after":
                    if (TryDuration(value, path, allowZero: false, out var failover))
                    {
                        d = d with { FailoverAfter = failover };
                        failoverAt = value;
                    }
                    break;
                case "elections":
                    d = d with { Elections = ReadBool(value, path, true) };
                    break;
                case "election-timeout":
                    if (TryDuration(value, path, allowZero: false, out var election))
                    {
                        d = d with { ElectionTimeout = election };
                        electionAt = value;
                    }
                    break;
                case "window":
                    if (TrySize(value, path, out long window))
                    {
                        d = d with { Window = window };
                        windowAt = value;
                    }
                    break;
                case "max-frame":
                    if (TrySize(value, path, out long maxFrame))
                    {
                        if (maxFrame is < MinMaxFrame or > MaxMaxFrame)
                        {
                            Problem(value, $"{path} must be between {ConfigUnits.FormatSize(MinMaxFrame)} and {ConfigUnits.FormatSize(MaxMaxFrame)}");
                        }
                        else
                        {
                            d = d with { MaxFrame = maxFrame };
                            maxFrameAt = value;
                        }
                    }
                    break;
                case "learner-backlog":
                    if (TrySize(value, path, out long backlog))
                    {
                        // Checked here: the fan-out refused a smaller one only when a member started, and the member crashed.
                        if (backlog < MinLearnerBacklog)
                            Problem(value, $"{path} must be at least {ConfigUnits.FormatSize(MinLearnerBacklog)} (two Deliver frames of 256KiB), not '{ConfigUnits.FormatSize(backlog)}'");
                        d = d with { LearnerBacklog = backlog };
                    }
                    break;
                case "delivery":
                    if (TryString(value, path, out string? delivery))
                    {
                        if (delivery == "committed") d = d with { Delivery = LearnerDelivery.Committed };
                        else if (delivery == "durable") d = d with { Delivery = LearnerDelivery.Durable };
                        else Problem(value, $"{path} must be committed or durable, not '{delivery}'");
                    }
                    break;
                case "failback-after":
                    if (TryDuration(value, path, allowZero: false, out var failback))
                    {
                        d = d with { FailbackAfter = failback };
                    }
                    break;
                case "segment-format":
                    if (TryString(value, path, out string? format))
                    {
                        if (format is "1" or "2") d = d with { SegmentFormat = format[0] - '0' };
                        else Problem(value, $"{path} must be 1 (headerless, while a rollback to an older build is possible) or 2, not '{format}'");
                    }
                    break;
                case "compaction":
                    if (TryString(value, path, out string? compaction))
                    {
                        if (compaction == "none") d = d with { Compaction = LogCompaction.None };
                        else if (compaction == "keyed") d = d with { Compaction = LogCompaction.Keyed };
                        else Problem(value, $"{path} must be none or keyed, not '{compaction}'");
                    }
                    break;
                case "tombstone-retention":
                    if (TryDuration(value, path, allowZero: false, out var tombstoneRetention))
                    {
                        d = d with { TombstoneRetention = tombstoneRetention };
                    }
                    break;
                case "max-learners":
                    if (TryPositiveInt(value, path, out int maxLearners))
                    {
                        d = d with { MaxLearners = maxLearners };
                    }
                    break;
                case "handshake-timeout":
                    if (TryDuration(value, path, allowZero: false, out var handshake))
                    {
                        d = d with { HandshakeTimeout = handshake };
                    }
                    break;
                case "idle-timeout" or "frame-timeout" or "max-connections-per-port" or "max-connections-per-address" or "max-subscribes-per-second":
                    d = ReadLimit(d, key, value, path);
                    break;
                case "fsync":
                    if (TryString(value, path, out string? flag))
                    {
                        if (flag is "true" or "True" or "TRUE")
                        {
                            d = d with { Fsync = true };
                        }
                        else if (flag is "false" or "False" or "FALSE")
                        {
                            d = d with { Fsync = false };
                        }
                        else
                        {
                            Problem(value, $"{path} must be true or false, not '{flag}'");
                        }
                    }
                    break;
                case "batch":
                    if (Expect<YamlMapping>(value, path, out var batch, "batch: { max-bytes: 1MiB, linger: 1ms }"))
                    {
                        ForEachKey(batch, "in 'defaults.batch'", BatchKeys, (k, _, v) =>
                        {
                            if (k == "max-bytes" && TrySize(v, "defaults.batch.max-bytes", out long bytes))
                            {
                                d = d with { BatchMaxBytes = bytes };
                                batchBytesAt = v;
                            }
                            else if (k == "linger" && TryDuration(v, "defaults.batch.linger", allowZero: true, out var linger))
                            {
                                d = d with { BatchLinger = linger };
                            }
                        });
                    }
                    break;
                case "compression":
                    if (Expect<YamlMapping>(value, path, out var compression, "compression: { level: 1 }"))
                    {
                        ForEachKey(compression, "in 'defaults.compression'", CompressionKeys, (k, _, v) =>
                        {
                            string where = "defaults.compression." + k;
                            if (TryString(v, where, out string? text))
                            {
                                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int level) && level <= MaxCompressionLevel)
                                {
                                    d = k == "level" ? d with { CompressionLevel = level } : d with { LocalCompressionLevel = level };
                                }
                                else
                                {
                                    Problem(v, $"{where} must be a zstd level from 1 to {MaxCompressionLevel}, or 0 for no compression; not '{text}'");
                                }
                            }
                        });
                    }
                    break;
                case "retention":
                    if (Expect<YamlMapping>(value, path, out var retention, "retention: { max-bytes: 256MiB, max-age: 1h }"))
                    {
                        ForEachKey(retention, "in 'defaults.retention'", RetentionKeys, (k, _, v) =>
                        {
                            if (k == "max-bytes" && TrySize(v, "defaults.retention.max-bytes", out long bytes))
                            {
                                d = d with { RetentionMaxBytes = bytes };
                            }
                            else if (k == "max-age" && TryDuration(v, "defaults.retention.max-age", allowZero: false, out var age))
                            {
                                d = d with { RetentionMaxAge = age };
                            }
                        });
                    }
                    break;
            }
        });

        // Cross-checks, reported where the user wrote the value that breaks them.
        if ((failoverAt ?? heartbeatAt) is { } timingAt && d.FailoverAfter <= d.Heartbeat)
        {
            Problem(timingAt, $"defaults.failover-after ({ConfigUnits.FormatDuration(d.FailoverAfter)}) must be longer than defaults.heartbeat ({ConfigUnits.FormatDuration(d.Heartbeat)})");
        }
        if ((electionAt ?? heartbeatAt) is { } electionCheckAt && d.ElectionTimeout < 2 * d.Heartbeat)
        {
            Problem(electionCheckAt, $"defaults.election-timeout ({ConfigUnits.FormatDuration(d.ElectionTimeout)}) must be at least twice defaults.heartbeat ({ConfigUnits.FormatDuration(d.Heartbeat)}): followers that miss one heartbeat would call elections");
        }
        if ((batchBytesAt ?? maxFrameAt) is { } frameAt && d.BatchMaxBytes > d.MaxFrame)
        {
            Problem(frameAt, $"defaults.batch.max-bytes ({ConfigUnits.FormatSize(d.BatchMaxBytes)}) must not exceed defaults.max-frame ({ConfigUnits.FormatSize(d.MaxFrame)})");
        }
        if ((batchBytesAt ?? windowAt) is { } windowCheckAt && d.BatchMaxBytes > d.Window)
        {
            Problem(windowCheckAt, $"defaults.batch.max-bytes ({ConfigUnits.FormatSize(d.BatchMaxBytes)}) must not exceed defaults.window ({ConfigUnits.FormatSize(d.Window)})");
        }
        return d;
    }

    // ---- nodes and datacenters ----

    private Dictionary<string, NodeDraft> ReadNodes(YamlMapping map)
    {
        var nodes = new Dictionary<string, NodeDraft>(map.Entries.Count, StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Entries)
        {
            if (!TryEntryName(keyNode, "node id", out var key))
            {
                continue;
            }
            if (nodes.TryGetValue(key.Value, out var first))
            {
                Problem(key, $"duplicate node id '{key.Value}'; first defined at line {first.Key.Line}");
                continue;
            }
            var node = new NodeDraft(key.Value, key);
            nodes.Add(node.Id, node);

            if (value is YamlScalar { IsNull: true })
            {
                Problem(key, $"node '{node.Id}' has no settings; it needs at least 'dc' and 'listen'");
                node.Incomplete = true;
                continue;
            }
            if (!Expect<YamlMapping>(value, $"node '{node.Id}'", out var settings, $"{node.Id}: {{ dc: ..., listen: host:port }}"))
            {
                node.Incomplete = true;
                continue;
            }
            ForEachKey(settings, $"in node '{node.Id}'", NodeKeys, (k, _, v) =>
            {
                if (k == "dc")
                {
                    if (TryString(v, $"node '{node.Id}' dc", out string? dc))
                    {
                        node.Datacenter = dc;
                        node.DatacenterAt = v;
                    }
                    return;
                }
                if (k == "feed-from")
                {
                    node.FeedFrom = ReadIdList(v, $"node '{node.Id}' feed-from");
                    node.FeedFromAt = v;
                    return;
                }
                if (k == "voter")
                {
                    node.Voter = ReadBool(v, $"node '{node.Id}' voter", true);
                    node.VoterAt = v;
                    return;
                }
                if (k == "max-learners")
                {
                    if (TryPositiveInt(v, $"node '{node.Id}' max-learners", out int max))
                    {
                        node.MaxLearners = max;
                        node.MaxLearnersAt = v;
                    }
                    return;
                }
                node.EndpointKeysPresent.Add(k);
                if (TryString(v, $"node '{node.Id}' {k}", out string? text))
                {
                    // A bare admin port means loopback: the admin endpoint is reachable from elsewhere only where a host says so.
                    bool parsed = k == "admin" ? NodeEndpoint.TryParseAdmin(text, out var endpoint, out string? error) : NodeEndpoint.TryParse(text, out endpoint, out error);
                    if (parsed)
                    {
                        node.Endpoints.Add((k, endpoint, v));
                    }
                    else
                    {
                        Problem(v, $"node '{node.Id}' {k}: {error}");
                    }
                }
            });
            if (node.DatacenterAt is null && !settings.Entries.Exists(e => e.Key is YamlScalar { Value: "dc" }))
            {
                Problem(key, $"node '{node.Id}' needs a 'dc' key naming its datacenter");
            }
        }
        return nodes;
    }

    private Dictionary<string, DatacenterDraft> ReadDatacenters(YamlMapping map)
    {
        var datacenters = new Dictionary<string, DatacenterDraft>(map.Entries.Count, StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Entries)
        {
            if (!TryEntryName(keyNode, "datacenter name", out var key))
            {
                continue;
            }
            if (datacenters.TryGetValue(key.Value, out var first))
            {
                Problem(key, $"duplicate datacenter '{key.Value}'; first defined at line {first.Key.Line}");
                continue;
            }
            var dc = new DatacenterDraft(key.Value, key);
            datacenters.Add(dc.Name, dc);
            if (value is YamlScalar { IsNull: true })
            {
                continue; // reported below as a datacenter without members
            }
            if (!Expect<YamlMapping>(value, $"datacenter '{dc.Name}'", out var settings, $"{dc.Name}: {{ relays: [...], members: [...] }}"))
            {
                dc.MembersBroken = true;
                _listsIncomplete = true;
                continue;
            }
            ForEachKey(settings, $"in datacenter '{dc.Name}'", DatacenterKeys, (k, _, v) =>
            {
                var target = k == "relays" ? dc.Relays : dc.Members;
                if (k == "relays")
                {
                    dc.RelaysAt = v;
                }
                if (v is YamlScalar { IsNull: true })
                {
                    return;
                }
                if (!Expect<YamlSequence>(v, $"datacenter '{dc.Name}' {k}", out var list, $"{k}: [node-a, node-b]"))
                {
                    dc.MembersBroken |= k == "members";
                    _listsIncomplete = true;
                    return;
                }
                foreach (var item in list.Items)
                {
                    if (TryString(item, $"an entry of datacenter '{dc.Name}' {k}", out string? _))
                    {
                        target.Add((YamlScalar)item);
                    }
                }
            });
        }
        return datacenters;
    }

    /// <summary>Gives every listed node its role and datacenter; returns the number of members placed.</summary>
    private int PlaceNodes(Dictionary<string, DatacenterDraft> datacenters, Dictionary<string, NodeDraft> nodes, NodeDraft? leader)
    {
        if (leader?.Datacenter is { } leaderDc && datacenters.TryGetValue(leaderDc, out var home) && home.Relays.Count > 0)
        {
            Problem(home.RelaysAt!, $"datacenter '{home.Name}' holds the leader '{leader.Id}', which serves it directly; it cannot have relays");
        }

        int members = 0;
        foreach (var dc in datacenters.Values)
        {
            Place(dc, dc.Relays, NodeRole.Relay);
            members += Place(dc, dc.Members, NodeRole.Member);
        }
        return members;

        int Place(DatacenterDraft dc, List<YamlScalar> list, NodeRole role)
        {
            int placed = 0;
            string roleName = RoleName(role);
            string listName = role == NodeRole.Relay ? "relays" : "members";
            foreach (var item in list)
            {
                if (!nodes.TryGetValue(item.Value, out var node))
                {
                    Problem(item, $"unknown node '{item.Value}' in {listName} of datacenter '{dc.Name}'; define it under 'nodes'");
                    continue;
                }
                if (node.Role == NodeRole.Leader)
                {
                    Problem(item, $"node '{node.Id}' is the leader and cannot also be a {roleName} of datacenter '{dc.Name}'; the leader is not listed in datacenters (its 'dc' key places it)");
                    continue;
                }
                if (node.Role is { } previous)
                {
                    int line = node.ListedAt!.Line;
                    if (previous == role && node.ListedIn == dc.Name)
                    {
                        Problem(item, $"node '{node.Id}' is listed twice in {listName} of datacenter '{dc.Name}' (first at line {line})");
                    }
                    else if (previous != role)
                    {
                        Problem(item, $"node '{node.Id}' is listed as a {roleName} of datacenter '{dc.Name}' but is already a {RoleName(previous)} of datacenter '{node.ListedIn}' (line {line}); a node has one role");
                    }
                    else
                    {
                        Problem(item, $"node '{node.Id}' is listed in datacenter '{dc.Name}' but is already a {roleName} of datacenter '{node.ListedIn}' (line {line}); a node belongs to one datacenter");
                    }
                    continue;
                }
                node.Role = role;
                node.ListedIn = dc.Name;
                node.ListedAt = item;
                if (role == NodeRole.Member)
                {
                    placed++;
                }
                if (node.Datacenter is { } own && own != dc.Name && datacenters.ContainsKey(own))
                {
                    Problem(node.DatacenterAt!, $"node '{node.Id}' has dc '{own}' but is listed in datacenter '{dc.Name}' (line {item.Line})");
                }
            }
            return placed;
        }
    }

    /// <summary>
    /// <c>voter: false</c> is for members only (the leader and relays have no vote to give up), and some member must vote:
    /// the quorum counts member acks, so without a voting member nothing could commit. Returns the voting members.
    /// </summary>
    private int CheckNonVoters(Dictionary<string, NodeDraft> nodes, int memberCount)
    {
        int nonVoters = 0;
        YamlNode? firstNonVoterAt = null;
        foreach (var node in nodes.Values)
        {
            if (node.Voter || node.Role is not { } role)
            {
                continue;
            }
            if (role != NodeRole.Member)
            {
                Problem(node.VoterAt!, $"node '{node.Id}' is a {RoleName(role)}; only members can be non-voters (voter: false)");
                continue;
            }
            nonVoters++;
            firstNonVoterAt ??= node.VoterAt;
        }
        if (memberCount > 0 && nonVoters == memberCount)
        {
            Problem(firstNonVoterAt!, "every member has voter: false; at least one member must vote (the quorum counts voting members' acks)");
        }
        return memberCount - nonVoters;
    }

    private void CheckNodes(Dictionary<string, NodeDraft> nodes, Dictionary<string, DatacenterDraft>? datacenters)
    {
        var addresses = new Dictionary<NodeEndpoint, (NodeDraft Node, string Key, YamlNode At)>();
        foreach (var node in nodes.Values)
        {
            if (datacenters is not null && node.Datacenter is { } dc && !datacenters.ContainsKey(dc))
            {
                string hint = node.ListedIn is not null ? $"; it is listed in datacenter '{node.ListedIn}'" : Suggest(dc, datacenters.Keys);
                Problem(node.DatacenterAt!, $"node '{node.Id}': unknown datacenter '{dc}'" + hint);
            }

            if (node.Incomplete)
            {
                continue;
            }
            if (datacenters is not null && node.Role is null && !_listsIncomplete)
            {
                Problem(node.Key, $"node '{node.Id}' is listed nowhere: it is not the leader and not in any datacenter's relays or members");
            }
            else if (node.Role is { } role)
            {
                string roleName = RoleName(role);
                if (!node.EndpointKeysPresent.Contains("listen"))
                {
                    Problem(node.Key, $"{roleName} '{node.Id}' needs a 'listen' address (where its peers connect)");
                }
                if (role == NodeRole.Leader && !node.EndpointKeysPresent.Contains("publish"))
                {
                    Problem(node.Key, $"leader '{node.Id}' needs a 'publish' address (where publishers connect)");
                }
                if (!node.EndpointKeysPresent.Contains("learners"))
                {
                    foreach (var e in node.Endpoints)
                    {
                        if (e.Key == "web")
                        {
                            Problem(e.At, $"{roleName} '{node.Id}' has a 'web' address but no 'learners' address: the web endpoint subscribes to the node's own learner port for each of its clients; add 'learners: HOST:PORT'");
                        }
                    }
                }
                if (role == NodeRole.Relay)
                {
                    foreach (var e in node.Endpoints)
                    {
                        if (e.Key == "publish")
                        {
                            Problem(e.At, $"{roleName} '{node.Id}' cannot have a 'publish' address; only voters (the leader and members) accept publishers");
                        }
                    }
                }
            }

            foreach (var e in node.Endpoints)
            {
                if (addresses.TryGetValue(e.Endpoint, out var first))
                {
                    Problem(e.At, $"address {e.Endpoint} ({e.Key} of node '{node.Id}') is already the {first.Key} address of node '{first.Node.Id}' (line {first.At.Line})");
                }
                else
                {
                    addresses.Add(e.Endpoint, (node, e.Key, e.At));
                }
            }
        }
    }

    private static TopologyConfig Build(string cluster, NodeDraft leader, QuorumSpec quorum, ClusterDefaults defaults,
        Dictionary<string, DatacenterDraft> datacenters, Dictionary<string, NodeDraft> nodes, string sourcePath)
    {
        var nodeConfigs = new Dictionary<string, NodeConfig>(nodes.Count, StringComparer.Ordinal);
        foreach (var node in nodes.Values)
        {
            nodeConfigs.Add(node.Id, new NodeConfig
            {
                Id = node.Id,
                Datacenter = node.Datacenter!,
                Role = node.Role!.Value,
                Listen = node.Get("listen"),
                Publish = node.Get("publish"),
                Learners = node.Get("learners"),
                Admin = node.Get("admin"),
                Web = node.Get("web"),
                FeedFrom = node.FeedFrom?.ConvertAll(f => f.Value) ?? [],
                MaxLearners = node.MaxLearners,
                Voter = node.Voter,
            });
        }
        var dcConfigs = new List<DatacenterConfig>(datacenters.Count);
        foreach (var dc in datacenters.Values)
        {
            dcConfigs.Add(new DatacenterConfig
            {
                Name = dc.Name,
                Relays = dc.Relays.ConvertAll(p => p.Value),
                Members = dc.Members.ConvertAll(m => m.Value),
                IsLeaderDatacenter = dc.Name == leader.Datacenter,
            });
        }
        return new TopologyConfig
        {
            Cluster = cluster,
            LeaderId = leader.Id,
            Quorum = quorum,
            Defaults = defaults,
            Datacenters = dcConfigs,
            Nodes = nodeConfigs,
            SourcePath = sourcePath,
        };
    }

    /// <summary>A list of node ids (leader-candidates); null when it is not a list (reported).</summary>
    private List<YamlScalar>? ReadIdList(YamlNode value, string path)
    {
        if (!Expect<YamlSequence>(value, path, out var list, $"{path}: [node-a, node-b]"))
        {
            return null;
        }
        var ids = new List<YamlScalar>(list.Items.Count);
        foreach (var item in list.Items)
        {
            if (TryString(item, $"an entry of {path}", out string? _))
            {
                ids.Add((YamlScalar)item);
            }
        }
        return ids;
    }

    /// <summary>
    /// <c>feed-from</c>: a relay's parents are other relays of its own datacenter, and following parents never comes back
    /// to where it started (a cycle would feed itself and nothing else). <c>max-learners</c> needs a learner port.
    /// </summary>
    private void CheckFeeds(Dictionary<string, NodeDraft> nodes)
    {
        foreach (var node in nodes.Values)
        {
            if (node.MaxLearnersAt is { } maxAt && !node.EndpointKeysPresent.Contains("learners") && node.Role is not null)
            {
                Problem(maxAt, $"node '{node.Id}' has max-learners but no 'learners' address; it serves no learners");
            }
            if (node.FeedFrom is null || node.Role is null)
            {
                continue;
            }
            if (node.Role != NodeRole.Relay)
            {
                Problem(node.FeedFromAt!, $"node '{node.Id}' is a {RoleName(node.Role.Value)}; only relays take feed-from (members are fed by the leader's route)");
                continue;
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var parent in node.FeedFrom)
            {
                if (!seen.Add(parent.Value))
                {
                    Problem(parent, $"node '{node.Id}' feed-from lists '{parent.Value}' twice");
                }
                else if (parent.Value == node.Id)
                {
                    Problem(parent, $"node '{node.Id}' feed-from names itself");
                }
                else if (!nodes.TryGetValue(parent.Value, out var p))
                {
                    Problem(parent, $"node '{node.Id}' feed-from: '{parent.Value}' is not a node" + Suggest(parent.Value, nodes.Keys));
                }
                else if (p.Role != NodeRole.Relay || p.ListedIn != node.ListedIn)
                {
                    Problem(parent, $"node '{node.Id}' feed-from: '{parent.Value}' is not a relay of datacenter '{node.ListedIn}'; a relay feeds from relays of its own datacenter");
                }
            }
        }
        // Cycles: depth-first over feed-from edges; each cycle is reported once, at the relay where it was entered.
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 visiting, 2 done
        var path = new List<string>();
        foreach (var node in nodes.Values)
        {
            Visit(node);
        }

        void Visit(NodeDraft node)
        {
            if (state.TryGetValue(node.Id, out int s))
            {
                if (s == 1)
                {
                    int start = path.IndexOf(node.Id);
                    var cycle = string.Join(" -> ", path.Skip(start).Append(node.Id));
                    Problem(node.FeedFromAt ?? node.Key, $"feed-from forms a cycle: {cycle}; at least one relay of the cycle must take its feed from the leader (no feed-from)");
                }
                return;
            }
            state[node.Id] = 1;
            path.Add(node.Id);
            foreach (var parent in node.FeedFrom ?? [])
            {
                if (nodes.TryGetValue(parent.Value, out var p) && p.Role == NodeRole.Relay && p.Id != node.Id)
                {
                    Visit(p);
                }
            }
            path.RemoveAt(path.Count - 1);
            state[node.Id] = 2;
        }
    }

    /// <summary>Only voters (the leader and the members) may lead, and the preferred leader must be one of them.</summary>
    private void CheckCandidates(List<YamlScalar> candidates, Dictionary<string, NodeDraft> nodes, NodeDraft leader)
    {
        var seen = new Dictionary<string, YamlScalar>(StringComparer.Ordinal);
        foreach (var item in candidates)
        {
            if (!seen.TryAdd(item.Value, item))
            {
                Problem(item, $"leader-candidates lists '{item.Value}' twice (first at line {seen[item.Value].Line})");
            }
            else if (!nodes.TryGetValue(item.Value, out var node))
            {
                Problem(item, $"leader-candidates: '{item.Value}' is not a node" + Suggest(item.Value, nodes.Keys));
            }
            else if (node.Role == NodeRole.Relay)
            {
                Problem(item, $"leader-candidates: '{item.Value}' is a relay; only the leader and members vote and may lead");
            }
            else if (!node.Voter && node.Role == NodeRole.Member)
            {
                Problem(item, $"leader-candidates: '{item.Value}' is a non-voting member (voter: false); only voters may lead");
            }
            else if (node.Get("publish") is null && !node.Incomplete)
            {
                Problem(item, $"leader-candidates: '{item.Value}' has no publish address; a leader takes writes there, so give it one");
            }
        }
        if (candidates.Count > 0 && !seen.ContainsKey(leader.Id))
        {
            Problem(candidates[0], $"leader-candidates must include the preferred leader '{leader.Id}' (named by 'leader')");
        }
    }

    // ---- helpers ----

    private void Problem(YamlNode at, string message) => _problems.Add(new ConfigProblem(fileName, at.Line, at.Column, message));

    private void ForEachKey(YamlMapping map, string where, string[] known, Action<string, YamlScalar, YamlNode> onKnown)
    {
        Dictionary<string, YamlScalar>? seen = null;
        foreach (var (keyNode, value) in map.Entries)
        {
            if (keyNode is not YamlScalar key || key.IsNull)
            {
                Problem(keyNode, $"keys must be strings; found {keyNode.KindName} {where}");
                continue;
            }
            string name = OldKeySpellings.TryGetValue(key.Value, out var renamed) && Array.IndexOf(known, renamed) >= 0 ? renamed : key.Value;
            seen ??= new(StringComparer.Ordinal);
            if (!seen.TryAdd(name, key))
            {
                string spelling = name == key.Value ? "" : $" (the old spelling of '{name}')";
                Problem(key, $"duplicate key '{key.Value}'{spelling} {where}; first at line {seen[name].Line}");
                continue;
            }
            if (Array.IndexOf(known, name) < 0)
            {
                string? closest = EditDistance.Closest(key.Value, known);
                Problem(key, closest is not null
                    ? $"unknown key '{key.Value}' {where}; did you mean '{closest}'?"
                    : $"unknown key '{key.Value}' {where}; known keys: {string.Join(", ", known)}");
                continue;
            }
            onKnown(name, key, value);
        }
    }

    private bool TryEntryName(YamlNode keyNode, string what, out YamlScalar key)
    {
        key = null!;
        if (keyNode is not YamlScalar scalar || scalar.IsNull)
        {
            Problem(keyNode, $"expected a {what}, found {keyNode.KindName}");
            return false;
        }
        key = scalar;
        return CheckName(scalar, scalar.Value, what);
    }

    private bool CheckName(YamlNode at, string name, string what)
    {
        if (NamePattern().IsMatch(name))
        {
            return true;
        }
        Problem(at, $"{what} '{name}' must be 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit");
        return false;
    }

    private bool TryString(YamlNode value, string what, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? text)
    {
        text = null;
        if (value is YamlScalar scalar)
        {
            if (scalar.IsNull)
            {
                Problem(value, $"{what} has no value");
                return false;
            }
            text = scalar.Value;
            return true;
        }
        Problem(value, $"expected a string for {what}, found {value.KindName}");
        return false;
    }

    private bool Expect<T>(YamlNode value, string what, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? node, string? example = null)
        where T : YamlNode
    {
        if (value is T typed)
        {
            node = typed;
            return true;
        }
        node = null;
        string expected = typeof(T) == typeof(YamlMapping) ? "a mapping" : "a list";
        string found = value is YamlScalar s && !s.IsNull ? $"'{s.Value}'" : value.KindName;
        Problem(value, $"expected {expected} for {what}, found {found}" + (example is null ? "" : $" (e.g. {example})"));
        return false;
    }

    private bool TrySize(YamlNode value, string path, out long bytes)
    {
        bytes = 0;
        if (!TryString(value, path, out string? text))
        {
            return false;
        }
        if (!ConfigUnits.TryParseSize(text, out bytes, out string? error))
        {
            Problem(value, $"{path}: {error}");
            return false;
        }
        if (bytes <= 0)
        {
            Problem(value, $"{path} must be larger than 0");
            return false;
        }
        return true;
    }

    private bool TryPositiveInt(YamlNode value, string path, out int count)
    {
        count = 0;
        if (!TryString(value, path, out string? text))
        {
            return false;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1)
        {
            Problem(value, $"{path} must be a whole number from 1 to {int.MaxValue}, not '{text}'");
            return false;
        }
        return true;
    }

    private bool TryDuration(YamlNode value, string path, bool allowZero, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (!TryString(value, path, out string? text))
        {
            return false;
        }
        if (!ConfigUnits.TryParseDuration(text, out duration, out string? error))
        {
            Problem(value, $"{path}: {error}");
            return false;
        }
        if (!allowZero && duration <= TimeSpan.Zero)
        {
            Problem(value, $"{path} must be longer than 0");
            return false;
        }
        return true;
    }

    private static string Suggest(string word, IEnumerable<string> candidates) =>
        EditDistance.Closest(word, candidates) is { } closest ? $"; did you mean '{closest}'?" : "";

    private static string RoleName(NodeRole role) => role switch
    {
        NodeRole.Leader => "leader",
        NodeRole.Relay => "relay",
        _ => "member",
    };

    private static string RequiredKeyHint(string key) => key switch
    {
        "cluster" => " (the cluster's name)",
        "leader" => " (the id of the leader node)",
        "datacenters" => " (each datacenter's relays and members)",
        _ => " (every node's dc and addresses)",
    };

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    internal static partial Regex NamePattern();
}
