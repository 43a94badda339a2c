using GeoRelay.Storage;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines.Consensus;
using GeoRelay.Relay;
using GeoRelay.Topology;
using GeoRelay.Voter;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// The three-region sample with every voter (the preferred leader and the members) a <see cref="VoterEngine"/> and
/// the relays as they are, on the simulated network. Checks the replicated log's invariants after every step and
/// throws <see cref="InvariantViolationException"/> (its step is the simulated millisecond) at the first one broken.
/// </summary>
public sealed class VoterCluster
{
    public SimNetwork Network { get; }
    public TopologyConfig Topology { get; }
    public Dictionary<string, MemoryLog> Logs { get; } = new();
    public Dictionary<string, CrashConsistentStore> Stores { get; } = new();
    /// <summary>Each voter's membership file: saved before a configuration entry is appended, so it survives crashes whole.</summary>
    private readonly Dictionary<string, GeoRelay.Engines.MemoryMembershipStore> _membershipStores = new();
    /// <summary>Each voter's log as its engine writes it, so the checks see what a truncation rewrote.</summary>
    private readonly Dictionary<string, WatchedLog> _watched = new();
    public List<string> Voters { get; }
    private readonly int _seed;
    private readonly bool _retention;
    /// <summary>Keyed compaction on every node (<see cref="KeyedLog"/> over each log, folded in step with retention).</summary>
    private readonly bool _keyed;
    /// <summary>Every voter's and relay's keyed log (a restarted relay's is new).</summary>
    private readonly Dictionary<string, KeyedLog> _keyedLogs = new();
    private static readonly KeyedCompactionOptions FoldInStep = KeyedCompactionOptions.Default with { Background = false, Fsync = false };
    // The committed application entries (key, value, tombstone) by index: the reference for keyed state.
    private readonly Dictionary<ulong, (string Key, string Value, bool Tombstone)> _committedWrites = new();
    private readonly Random _random;
    private readonly SimEnvironment _env;

    // Invariant state, kept across the whole run.
    private readonly Dictionary<ulong, string> _leaderOfTerm = new();
    private readonly Dictionary<ulong, (ulong Epoch, string Entry)> _committed = new();
    private ulong _highestCommit;
    public List<string> Trace { get; } = new();

    /// <summary>Two learners per datacenter, one listing the relays first and one the members (the leader's datacenter has members only).</summary>
    public List<SimLearner> Learners { get; } = new();
    /// <summary>Entries learners received this step, checked once the step's commits are recorded.</summary>
    private readonly List<(SimLearner Learner, ulong Index, ulong Epoch, string Entry)> _received = new();

    /// <param name="voterLogs">The voters' log options; small retention there makes leaders drop entries followers still need.</param>
    /// <param name="keyed">Keyed compaction on every node: learners behind retention get snapshots of the keyed state.</param>
    public VoterCluster(int seed, Func<ClusterDefaults, ClusterDefaults>? defaults = null, SegmentLogOptions? voterLogs = null, bool keyed = false)
    {
        _seed = seed;
        _retention = voterLogs is not null;
        _keyed = keyed;
        _random = new Random(seed);
        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        Topology = defaults is null ? topology : topology with { Defaults = defaults(topology.Defaults) };
        var delays = new Dictionary<(string, string), long>();
        long Latency(string a, string b)
        {
            if (!delays.TryGetValue((a, b), out var d))
            {
                bool same = DatacenterOf(a) == DatacenterOf(b);
                delays[(a, b)] = d = same ? 200 : 40_000 + _random.Next(60_000);
            }
            return d;
        }
        Network = new SimNetwork(Latency);
        // Half the seeds run on disks whose fsync takes time (0.3-3.3 ms per node), so a leader sends entries it has
        // not yet made durable and may crash before it does. Its own Random: the other choices stay as they were.
        if (seed % 2 == 1)
        {
            var disk = new Random(seed ^ 0x5EED);
            var syncMicros = new Dictionary<string, long>();
            Network.SyncMicros = id => syncMicros.TryGetValue(id, out long t) ? t : syncMicros[id] = 300 + disk.Next(3_000);
        }
        _env = new SimEnvironment(Network.Clock);
        Voters = Topology.Voters.ToList();
        foreach (var v in Voters)
        {
            Logs[v] = new MemoryLog(voterLogs);
            _watched[v] = new WatchedLog(Logs[v]);
            if (keyed) _keyedLogs[v] = KeyedLog.Open(_watched[v], null, FoldInStep);
            Stores[v] = new CrashConsistentStore();
            _membershipStores[v] = new GeoRelay.Engines.MemoryMembershipStore();
            Network.Add(v, NewVoter(v));
        }
        foreach (var dc in Topology.Datacenters)
            foreach (var p in dc.Relays) Network.Add(p, new RelayEngine(Topology, p, NewRelayLog(p), _env, logger: LoggerFor(p), seed: seed));
        Publisher = new SimPublisher("publisher", 0xC0FFEE00UL + (ulong)seed, Topology.Cluster, Voters, _env);
        Network.Add(Publisher.Id, Publisher);
        foreach (var dc in Topology.Datacenters)
        {
            for (int i = 0; i < 2; i++)
            {
                var targets = i == 0 ? dc.Relays.Concat(dc.Members).ToList() : dc.Members.Concat(dc.Relays).ToList();
                var learner = new SimLearner($"learner-{dc.Name}-{i}", Topology.Cluster, targets, _env)
                {
                    // Internal entries reach no learner: a gap over one is fine, and the whole stream is compared at the end.
                    MaySkip = _ => true,
                    MayBeLeftBehind = voterLogs is not null,
                    Keyed = keyed,
                    Received = (l, index, epoch, payload) =>
                    {
                        _received.Add((l, index, epoch, Encoding.UTF8.GetString(payload.Span)));
                        return null;
                    },
                };
                Learners.Add(learner);
                Network.Add(learner.Id, learner);
            }
        }
    }

    /// <summary>An exactly-once publisher that follows leadership and resends what was not acknowledged.</summary>
    public SimPublisher Publisher { get; }

    // Where each of the publisher's sequence numbers was committed: at most one index each.
    private readonly Dictionary<ulong, ulong> _seqAt = new();

    // Seeded by position: string hash codes differ from one process to the next.
    /// <summary>How many times a voter's log was replaced by the leader's log start (InstallSnapshot).</summary>
    public int SnapshotInstalls => _watched.Values.Sum(w => w.Resets);

    private VoterEngine NewVoter(string id) =>
        new(Topology, id, _keyed ? _keyedLogs[id] : _watched[id], Stores[id], _env, VoterOptions.Default with { Seed = _seed * 31 + Voters.IndexOf(id) }, LoggerFor(id), _membershipStores[id]);

    /// <summary>A node's datacenter; a learner's is in its id (learner-DC-i); the publisher sits in the preferred leader's.</summary>
    private string DatacenterOf(string id) =>
        Topology.Nodes.TryGetValue(id, out var node) ? node.Datacenter
        : id.StartsWith("learner-", StringComparison.Ordinal) ? id["learner-".Length..id.LastIndexOf('-')]
        : Topology.Leader.Datacenter;

    /// <summary>
    /// The nodes GEORELAY_SIM_LOG names (comma-separated ids, or *) log into the trace, with the simulated time: what
    /// an operator would read, for a seed being replayed.
    /// </summary>
    private Microsoft.Extensions.Logging.ILogger? LoggerFor(string id)
    {
        var names = Environment.GetEnvironmentVariable("GEORELAY_SIM_LOG");
        if (string.IsNullOrEmpty(names) || (names != "*" && !names.Split(',').Contains(id))) return null;
        return new TraceLogger(this, id);
    }

    private sealed class TraceLogger(VoterCluster cluster, string id) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) cluster.Trace.Add($"{cluster.Network.Clock.NowMicros / 1000} ms: [{id}] {formatter(state, exception)}");
        }
    }

    public VoterEngine Voter(string id) => (VoterEngine)Network.Engine(id);

    /// <summary>The voter that leads the highest term now, if any is up.</summary>
    public VoterEngine? CurrentLeader()
    {
        VoterEngine? best = null;
        foreach (var v in Voters)
        {
            if (!Network.IsUp(v)) continue;
            var e = Voter(v);
            if (e.Leader is { Deposed: false } && (best is null || e.Election.Term > best.Election.Term)) best = e;
        }
        return best;
    }

    public void Crash(string id, bool tornTail)
    {
        Network.Crash(id);
        Logs[id].Crash(tornTail, _random);
        // The crash cut the log under the watcher: what is left was checked, nothing above it is there any more.
        _matchChecked[id] = Math.Min(_matchChecked.GetValueOrDefault(id), Logs[id].LastIndex);
        Trace.Add($"{Network.Clock.NowMicros / 1000} ms: crash {id}{(tornTail ? " (unsynced tail lost)" : "")}");
    }

    /// <summary>A voter's process is killed (SIGKILL): its log stays whole, and peers see its connections close a link latency later.</summary>
    public void Kill(string id)
    {
        Network.Kill(id);
        Logs[id].Crash(tornTail: false, _random);
        _matchChecked[id] = Math.Min(_matchChecked.GetValueOrDefault(id), Logs[id].LastIndex);
        Trace.Add($"{Network.Clock.NowMicros / 1000} ms: kill {id}");
    }

    public void Restart(string id)
    {
        Network.Restart(id, NewVoter(id));
        Trace.Add($"{Network.Clock.NowMicros / 1000} ms: restart {id}");
    }

    /// <summary>A relay comes back with empty retention (a relay keeps nothing it needs across a restart).</summary>
    public void RestartRelay(string id)
    {
        Network.Restart(id, new RelayEngine(Topology, id, NewRelayLog(id), new SimEnvironment(Network.Clock), logger: LoggerFor(id), seed: _seed));
        Trace.Add($"{Network.Clock.NowMicros / 1000} ms: restart relay {id}");
    }

    /// <summary>A relay's retention: empty, and keyed like the voters' when they are.</summary>
    private IEntryLog NewRelayLog(string id)
    {
        if (!_keyed) return new MemoryLog();
        return _keyedLogs[id] = KeyedLog.Open(new MemoryLog(), null, FoldInStep);
    }

    /// <summary>Terms in which some voter led.</summary>
    public int LeaderTerms => _leaderOfTerm.Count;

    /// <summary>Appends entries at the current leader, if there is one; returns how many.</summary>
    public int Publish(int count)
    {
        var leader = CurrentLeader();
        if (leader is null) return 0;
        for (int i = 0; i < count; i++)
        {
            // Keyed: a handful of keys written over and over, a fifth of the writes tombstones.
            string key = _keyed ? $"k{_random.Next(6)}" : "k";
            bool tombstone = _keyed && _random.Next(5) == 0;
            leader.Leader!.Append(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes($"s{_seed}-t{leader.Election.Term}-{leader.Leader.LastIndex + 1}"),
                Network.Clock.NowMicros, tombstone);
        }
        return count;
    }

    public void Step()
    {
        Network.Step();
        Check();
    }

    public void RunUntil(Func<bool> done, int maxSteps, string what) => RunUntil(done, maxSteps, () => what);

    /// <summary>As above, with the goal described once it is missed (so the description may say what is still missing).</summary>
    public void RunUntil(Func<bool> done, int maxSteps, Func<string> what)
    {
        for (int i = 0; i < maxSteps && !done(); i++) Step();
        if (!done()) Fail($"{what()} not reached within {maxSteps} simulated ms; learners: " +
            string.Join(", ", Learners.Select(l => $"{l.Id} next {l.Next}{(l.Connected ? $" at {l.Peer}" : " (disconnected)")}{(l.StateLost ? " (state lost)" : "")}")) +
            $"; leader {CurrentLeader()?.NodeId} last {CurrentLeader()?.Leader?.LastIndex} commit {CurrentLeader()?.Leader?.CommitIndex}; voters: " +
            string.Join(", ", Voters.Select(v => $"{v} {(Network.IsUp(v) ? "" : "down ")}{Logs[v].FirstIndex}..{Logs[v].LastIndex} durable {Logs[v].DurableIndex}")) +
            "; relays: " + string.Join(", ", Topology.Datacenters.SelectMany(d => d.Relays).Where(Network.IsUp)
                .Select(p => $"{p} retains {((RelayEngine)Network.Engine(p)).FirstRetainedIndex}..{((RelayEngine)Network.Engine(p)).RetainedIndex}")));
    }

    private readonly Dictionary<string, (RaftRole, ulong)> _seenRole = new();
    private readonly Dictionary<ulong, ulong> _commitInTerm = new();

    private void Check()
    {
        if (Network.Violation is { } v) Fail(v);
        foreach (var id in Voters)
        {
            if (!Network.IsUp(id)) continue;
            var e = Voter(id).Election;
            if (_seenRole.TryGetValue(id, out var seen) && seen == (e.Role, e.Term)) continue;
            _seenRole[id] = (e.Role, e.Term);
            Trace.Add($"{Network.Clock.NowMicros / 1000} ms: {id} {e.Role} in term {e.Term} (log {Logs[id].LastIndex}, durable {Logs[id].DurableIndex}, commit seen {_highestCommit})");
        }
        foreach (var id in Voters)
        {
            if (!Network.IsUp(id)) continue;
            var voter = Voter(id);
            if (voter.Election.Role != RaftRole.Leader) continue;
            ulong term = voter.Election.Term;
            if (_leaderOfTerm.TryGetValue(term, out var other) && other != id) Fail($"two leaders in term {term}: {other} and {id}");
            _leaderOfTerm[term] = id;
            // Leader completeness: whoever wins an election holds every entry committed in an earlier term. (A leader of
            // an older term, cut off and not yet stepped down, may lack what later terms committed.)
            ulong before = 0;
            foreach (var (t, c) in _commitInTerm) if (t < term) before = Math.Max(before, c);
            if (Logs[id].LastIndex < before)
                Fail($"{id} leads term {term} but its log ends at {Logs[id].LastIndex}, below {before}, committed in an earlier term");
            if (_leaderChecked.Add((id, term)))
                for (ulong i = Math.Max(1, Logs[id].FirstIndex); i <= before; i++)
                    if (Logs[id].TryGet(i, out var held) && _committed.TryGetValue(i, out var c) && (held.Epoch != c.Epoch || Describe(held) != c.Entry))
                        Fail($"{id} leads term {term} but holds another entry at {i} (epoch {held.Epoch}) than the one committed in epoch {c.Epoch}");
        }
        CheckLogs();
        foreach (var id in Voters)
        {
            // What it committed while it led, even if it stepped down within this step (a transfer can take one step).
            if (!Network.IsUp(id) || Voter(id).LastLed is not { } led) continue;
            var (epoch, commit) = led;
            for (ulong i = _highestCommit + 1; i <= commit; i++)
            {
                if (!Logs[id].TryGet(i, out var e) && !(i < Logs[id].FirstIndex && _watched[id].TryGetAppended(i, out e)))
                {
                    if (i < Logs[id].FirstIndex) continue; // committed and dropped by retention within this step
                    Fail($"{id} committed {i}, which its log lacks");
                }
                _committed[i] = (e.Epoch, Describe(e));
                if (!InternalEntries.IsInternal(e.Key.Span))
                    _committedWrites[i] = (Encoding.UTF8.GetString(e.Key.Span), Encoding.UTF8.GetString(e.Payload.Span), e.IsTombstone);
            }
            _highestCommit = Math.Max(_highestCommit, commit);
            _commitInTerm[epoch] = Math.Max(_commitInTerm.GetValueOrDefault(epoch), commit);
        }
        // State machine safety: what a node knows to be committed (its own commit index, which is what it may hand
        // to learners) is the committed entry everywhere. Above it a log may still hold a deposed leader's suffix.
        foreach (var id in Voters)
        {
            if (!Network.IsUp(id)) continue;
            var voter = Voter(id);
            var log = Logs[id];
            ulong known = voter.Leader?.CommitIndex ?? voter.Member!.CommitIndex;
            CheckCommitMonotonic(id, (object?)voter.Leader ?? voter.Member!, known);
            if (known > _highestCommit) Fail($"{id} takes {known} as committed; no leader committed beyond {_highestCommit}");
            ulong verified = Math.Min(_verified.GetValueOrDefault(id), log.LastIndex);
            ulong top = Math.Min(log.LastIndex, known);
            for (ulong i = Math.Max(verified + 1, log.FirstIndex); i <= top; i++)
            {
                if (!log.TryGet(i, out var e)) continue;
                if (!_committed.TryGetValue(i, out var c)) continue; // see above: dropped before it was recorded
                if (e.Epoch != c.Epoch || Describe(e) != c.Entry)
                    Fail($"{id} takes index {i} as committed but holds another entry there (epoch {e.Epoch}; committed in epoch {c.Epoch})");
                if (SeqOf(e) is { } seq && _seqAt.TryGetValue(seq, out ulong other) && other != i)
                    Fail($"the publisher's sequence {seq} is committed twice, at {other} and {i}");
                else if (SeqOf(e) is { } first) _seqAt[first] = i;
            }
            _verified[id] = Math.Max(verified, top);
        }
        foreach (var dc in Topology.Datacenters)
            foreach (var p in dc.Relays)
                if (Network.IsUp(p)) CheckCommitMonotonic(p, Network.Engine(p), ((RelayEngine)Network.Engine(p)).CommitIndex);
        CheckConfigurations();
        CheckLearners();
    }

    /// <summary>
    /// Voters a commit needs (the leader and its required acks), under the smallest quorum any running voter acts on: a
    /// membership change moves it, and a relay counts with the membership its leader sent it.
    /// </summary>
    private int CommitNeeds() =>
        Voters.Where(Network.IsUp).Select(v => Voter(v).Configuration.RequiredAcks + 1).DefaultIfEmpty(Topology.RequiredAcks + 1).Min();

    /// <summary>The voters' processes the current leader's configuration lists (all of them, without membership changes).</summary>
    public IEnumerable<string> Members() =>
        CurrentLeader() is { } leader ? Voters.Where(v => leader.Configuration.Nodes.ContainsKey(v)) : Voters;

    /// <summary>
    /// As the runbook says once a removal has committed: stop the nodes the configuration no longer lists (their learners
    /// resume elsewhere). Waits for a leader whose configuration is committed first.
    /// </summary>
    public void StopRemoved()
    {
        RunUntil(() => CurrentLeader() is { } l && l.Memberships.Uncommitted == 0 && l.Leader!.CommittedOwnEpoch, 60_000, "a leader with its configuration committed");
        var config = CurrentLeader()!.Configuration;
        foreach (var v in Voters)
        {
            if (config.Nodes.ContainsKey(v) || !Network.IsUp(v)) continue;
            Network.Crash(v);
            Trace.Add($"{Network.Clock.NowMicros / 1000} ms: stop {v}, which the configuration no longer lists");
        }
    }

    /// <summary>Membership changes proposed (and not refused) at a leader, and configuration entries seen committed.</summary>
    public int MembershipChanges { get; private set; }
    public int ConfigurationsCommitted => _configurationsCommitted.Count;
    private readonly HashSet<ulong> _configurationsCommitted = new();

    /// <summary>
    /// Every configuration a node acts on is the newest configuration entry its own log holds (or its committed one when
    /// its log holds none above it), its election counts exactly that configuration's voters, every older configuration
    /// it still holds above its committed one is committed, and a leader holds at most one uncommitted configuration.
    /// </summary>
    private void CheckConfigurations()
    {
        foreach (var id in Voters)
        {
            if (!Network.IsUp(id)) continue;
            var voter = Voter(id);
            var history = voter.Memberships;
            ulong at = history.LatestIndex;
            if (at > 0)
            {
                if (at >= Logs[id].FirstIndex && at <= Logs[id].LastIndex)
                {
                    if (!Logs[id].TryGet(at, out var e) || !e.Key.Span.SequenceEqual(InternalEntries.ConfigurationKey) || e.Epoch != history.LatestEpoch)
                        Fail($"{id} acts on the configuration of entry {at} (epoch {history.LatestEpoch}), which its log does not hold");
                    if (!Membership.Decode(e.Payload.Span).Equals(history.LatestMembership))
                        Fail($"{id} acts on another membership than the one its log holds at {at}");
                }
                else if (at > Logs[id].LastIndex)
                    Fail($"{id} acts on the configuration of entry {at}, beyond its log's end {Logs[id].LastIndex}");
                // A deposed leader's configuration may be acted on until its entry is replaced, never once known committed.
                ulong known = voter.Leader?.CommitIndex ?? voter.Member?.CommitIndex ?? 0;
                if (at <= known && _committed.TryGetValue(at, out var c) && c.Epoch != history.LatestEpoch)
                    Fail($"{id} acts on the configuration of entry {at} epoch {history.LatestEpoch}, below its commit index {known}, but epoch {c.Epoch}'s entry is committed there");
                if (history.CommittedIndex > 0 && history.CommittedIndex <= _highestCommit && !_configurationsCommitted.Contains(history.CommittedIndex)
                    && _committed.TryGetValue(history.CommittedIndex, out var committed) && committed.Entry.StartsWith(ConfigurationPrefix, StringComparison.Ordinal))
                    _configurationsCommitted.Add(history.CommittedIndex);
            }
            if (history.CommittedIndex > _highestCommit)
                Fail($"{id} takes the configuration of entry {history.CommittedIndex} as committed; no leader committed beyond {_highestCommit}");
            var config = voter.Configuration;
            var expected = config.Voters.Where(v => v != id).OrderBy(v => v, StringComparer.Ordinal);
            if (!voter.Election.OtherVoters.OrderBy(v => v, StringComparer.Ordinal).SequenceEqual(expected) || voter.Election.SelfVotes != config.IsVoter(id))
                Fail($"{id}'s election counts voters {string.Join(",", voter.Election.OtherVoters)} (self votes: {voter.Election.SelfVotes}), not its configuration's {string.Join(",", config.Voters)}");
            // The one step in flight: a leader's log never holds two configurations that are not committed.
            if (voter.Leader is { Deposed: false } && voter.Election.Role == RaftRole.Leader && history.LatestIndex > _highestCommit
                && voter.Memberships.Uncommitted > 1 && voter.Memberships.PendingIndexes.Count(i => i > _highestCommit) > 1)
                Fail($"{id} leads with configurations {string.Join(", ", voter.Memberships.PendingIndexes)} above the highest commit {_highestCommit}; one at a time");
        }
    }

    /// <summary>
    /// The current leader changes one member's standing: a non-voter is promoted, or a voter (not the leader, not the
    /// preferred one) is demoted, or a non-voter leaves its datacenter altogether, or one that left comes back as a
    /// non-voter. At least five voters stay. Returns what it asked, for the trace.
    /// </summary>
    public string? ChangeMembership(Random random)
    {
        if (CurrentLeader() is not { Leader: not null } leader) return null;
        var m = leader.Memberships.LatestMembership;
        var members = m.Nodes.Values.Where(n => m.RoleOf(n.Id) == NodeRole.Member && n.Id != leader.NodeId && n.Id != m.PreferredLeader).ToList();
        int voting = m.Voters.Count;
        var nonVoters = members.Where(n => !n.Voter).ToList();
        Membership next;
        string what;
        int choice = random.Next(4);
        if (choice == 0 && _leftCluster.Count > 0)
        {
            var back = _leftCluster[random.Next(_leftCluster.Count)];
            next = new Membership(m.PreferredLeader, m.LeaderCandidates,
                m.Datacenters.Select(d => d.Name == back.Datacenter ? d with { Members = [.. d.Members, back.Id] } : d).ToList(),
                m.Nodes.Values.Append(back with { Voter = false }));
            what = $"add {back.Id} back as a non-voter";
        }
        else if (choice == 1 && nonVoters.Count > 0)
        {
            var gone = nonVoters[random.Next(nonVoters.Count)];
            next = new Membership(m.PreferredLeader, m.LeaderCandidates,
                m.Datacenters.Select(d => d with { Members = d.Members.Where(x => x != gone.Id).ToList() }).ToList(),
                m.Nodes.Values.Where(n => n.Id != gone.Id));
            what = $"remove non-voter {gone.Id}";
        }
        else if (nonVoters.Count > 0 && (choice == 2 || voting <= 5))
        {
            var up = nonVoters[random.Next(nonVoters.Count)];
            next = new Membership(m.PreferredLeader, m.LeaderCandidates, m.Datacenters, m.Nodes.Values.Select(n => n.Id == up.Id ? n with { Voter = true } : n));
            what = $"promote {up.Id}";
        }
        else
        {
            var voters = members.Where(n => n.Voter).ToList();
            if (voters.Count == 0 || voting <= 5) return null;
            var down = voters[random.Next(voters.Count)];
            next = new Membership(m.PreferredLeader, m.LeaderCandidates, m.Datacenters, m.Nodes.Values.Select(n => n.Id == down.Id ? n with { Voter = false } : n));
            what = $"demote {down.Id}";
        }
        ulong index = leader.ProposeMembership(next, out var refusal);
        if (refusal is null)
        {
            MembershipChanges++;
            if (what.StartsWith("remove", StringComparison.Ordinal)) _leftCluster.Add(m.Nodes[what.Split(' ')[^1]]);
            if (what.StartsWith("add", StringComparison.Ordinal)) _leftCluster.RemoveAll(n => n.Id == what.Split(' ')[1]);
        }
        string line = $"{Network.Clock.NowMicros / 1000} ms: {leader.NodeId} asked to {what}: " + (refusal ?? $"configuration entry {index}");
        Trace.Add(line);
        return line;
    }

    /// <summary>Members a change removed from the cluster (their processes keep running, as an operator's would until stopped).</summary>
    private readonly List<MembershipNode> _leftCluster = new();
    private static readonly string ConfigurationPrefix = Encoding.UTF8.GetString(InternalEntries.ConfigurationKey) + "|";

    private readonly Dictionary<string, ulong> _verified = new();
    private readonly HashSet<(string, ulong)> _leaderChecked = new();
    private readonly Dictionary<string, (object Engine, ulong Commit)> _commitOf = new();
    private readonly Dictionary<string, ulong> _matchChecked = new();
    /// <summary>Every (index, epoch) any voter's log held: the entry, and the epoch of the entry before it in that log.</summary>
    private readonly Dictionary<(ulong Index, ulong Epoch), (string Entry, ulong PreviousEpoch)> _written = new();
    /// <summary>The last index each (voter, term) held while it led that term.</summary>
    private readonly Dictionary<(string, ulong), ulong> _leaderLast = new();

    /// <summary>A node's commit index never goes back while the same engine (one role of one run of the node) holds it.</summary>
    private void CheckCommitMonotonic(string id, object engine, ulong commit)
    {
        if (_commitOf.TryGetValue(id, out var seen) && ReferenceEquals(seen.Engine, engine) && commit < seen.Commit)
            Fail($"{id}'s commit index went back from {seen.Commit} to {commit}");
        _commitOf[id] = (engine, commit);
    }

    /// <summary>
    /// Log matching, checked on every entry once when written: an (index, epoch) is the same entry in every log, after the
    /// same epoch at index - 1; by induction two logs that share an (index, epoch) are equal up to there. And a leader's
    /// log only grows while it leads its term: nothing it held is cut or rewritten.
    /// </summary>
    private void CheckLogs()
    {
        foreach (var id in Voters)
        {
            if (!Network.IsUp(id)) continue;
            var log = Logs[id];
            ulong rewritten = _watched[id].TakeRewrittenFrom();
            if (Voter(id) is { Leader: { Deposed: false } } leader)
            {
                var key = (id, leader.Election.Term);
                if (_leaderLast.TryGetValue(key, out ulong last) && (log.LastIndex < last || rewritten <= last))
                    Fail($"{id} cut its log below {last} while leading term {key.Item2} (now ends at {log.LastIndex})");
                _leaderLast[key] = log.LastIndex;
            }
            ulong from = Math.Min(_matchChecked.GetValueOrDefault(id), Math.Min(log.LastIndex, rewritten == ulong.MaxValue ? ulong.MaxValue : rewritten - 1)) + 1;
            for (ulong i = Math.Max(from, log.FirstIndex); i <= log.LastIndex; i++)
            {
                if (!log.TryGet(i, out var e)) continue;
                // Before a log's first index (retention, or an install) the previous epoch is unknown there: not compared.
                ulong previous = i == 1 ? 0 : i > log.FirstIndex && log.TryGet(i - 1, out var p) ? p.Epoch : UnknownEpoch;
                string entry = Describe(e);
                if (!_written.TryGetValue((i, e.Epoch), out var other) || (other.PreviousEpoch == UnknownEpoch && other.Entry == entry))
                    _written[(i, e.Epoch)] = (entry, previous == UnknownEpoch && other.Entry == entry ? other.PreviousEpoch : previous);
                else if (other.Entry != entry || (previous != UnknownEpoch && other.PreviousEpoch != previous))
                    Fail($"log matching: {id}'s entry {i} of epoch {e.Epoch} " +
                        (other.Entry != entry ? "differs from another log's" : $"follows epoch {previous} at {i - 1}, another log's follows epoch {other.PreviousEpoch}"));
            }
            _matchChecked[id] = log.LastIndex;
        }
    }

    private const ulong UnknownEpoch = ulong.MaxValue;

    private ulong? SeqOf(in GeoRelay.Storage.LogEntry e)
    {
        string text = Encoding.UTF8.GetString(e.Payload.Span);
        string prefix = SimPublisher.PayloadOf(Publisher.Producer, 0)[..^1];
        return text.StartsWith(prefix, StringComparison.Ordinal) ? ulong.Parse(text[prefix.Length..], System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Every request the publisher had acknowledged is in <paramref name="log"/> once, where its ack said, and nothing else of it.</summary>
    public void CheckExactlyOnce(MemoryLog log)
    {
        var seen = new Dictionary<ulong, ulong>();
        for (ulong i = Math.Max(1, log.FirstIndex); i <= log.LastIndex; i++)
        {
            if (!log.TryGet(i, out var e) || SeqOf(e) is not { } seq) continue;
            if (!seen.TryAdd(seq, i)) Fail($"sequence {seq} is in the final log twice, at {seen[seq]} and {i}");
        }
        ulong total = 0;
        foreach (var r in Publisher.Requests)
        {
            ulong first = r.FirstIndex ?? throw Violation($"request {r.Id} (sequences {r.FirstSeq}..) was never acknowledged");
            // Retention dropped it (wholly or in part): what remains was checked as it was committed.
            if (first < log.FirstIndex)
            {
                for (ulong k = 0; k < (ulong)r.Count; k++) seen.Remove(r.FirstSeq + k);
                continue;
            }
            total += (ulong)r.Count;
            for (ulong k = 0; k < (ulong)r.Count; k++)
                if (!seen.ContainsKey(r.FirstSeq + k)) Fail($"acknowledged sequence {r.FirstSeq + k} is not in the final log");
            if (seen[r.FirstSeq] != r.FirstIndex) Fail($"request {r.Id} was acknowledged at {r.FirstIndex}, but its first entry is at {seen[r.FirstSeq]}");
        }
        if ((ulong)seen.Count != total) Fail($"the final log holds {seen.Count} of the publisher's entries; it published {total}");
    }

    /// <summary>
    /// Committed delivery (the default): every entry a learner got is the one committed at that index, so no leader
    /// change can take it back; and no learner is ever told Truncated. A relay may hand out an entry before any leader's
    /// commit index reaches it (it counts a quorum itself, see docs/consensus.md): such an entry must be held durably, when
    /// it arrives, by as many voters as a commit needs (members' acks and the leader), and is compared once a leader
    /// commits there; <see cref="CheckEveryDeliveredEntryCommitted"/> ends the run with none left uncompared. Durable
    /// delivery is checked whole by <see cref="CheckLearnerStreams"/> instead.
    /// </summary>
    private void CheckLearners()
    {
        foreach (var l in Learners)
            if (l.Violation is { } v) Fail(v);
        if (Topology.Defaults.Delivery == LearnerDelivery.Durable)
        {
            _received.Clear();
            return;
        }
        foreach (var l in Learners)
            if (l.Truncations > 0) Fail($"{l.Id} was told Truncated, though learners get committed entries only");
        while (_receivedAhead.Count > 0 && _receivedAhead.First() is var (index, got) && index <= _highestCommit)
        {
            foreach (var (learner, epoch, entry) in got) CheckCommitted(learner, index, epoch, entry);
            _receivedAhead.Remove(index);
        }
        foreach (var (learner, index, epoch, entry) in _received)
        {
            if (index <= _highestCommit)
            {
                CheckCommitted(learner.Id, index, epoch, entry);
                continue;
            }
            int holders = Voters.Count(v => Logs[v].FirstIndex > index
                || (Logs[v].DurableIndex >= index && Logs[v].TryGet(index, out var e) && e.Epoch == epoch && Describe(e).EndsWith("|" + entry, StringComparison.Ordinal)));
            int needed = CommitNeeds();
            if (holders < needed)
                Fail($"{learner.Id} got entry {index} of epoch {epoch}, beyond every commit so far ({_highestCommit}), held durably by {holders} voters; a commit needs {needed}");
            if (!_receivedAhead.TryGetValue(index, out var list)) _receivedAhead[index] = list = new();
            list.Add((learner.Id, epoch, entry));
            DeliveredAhead++;
        }
        _received.Clear();
    }

    /// <summary>How many entries learners got beyond every commit a leader had reached when they arrived.</summary>
    public int DeliveredAhead { get; private set; }

    /// <summary>Entries learners got beyond every commit a leader had reached, by index, until a leader commits there.</summary>
    private readonly SortedDictionary<ulong, List<(string Learner, ulong Epoch, string Entry)>> _receivedAhead = new();

    private void CheckCommitted(string learner, ulong index, ulong epoch, string entry)
    {
        if (!_committed.TryGetValue(index, out var c)) return; // committed and dropped by retention within one step
        if (c.Epoch != epoch || !c.Entry.EndsWith("|" + entry, StringComparison.Ordinal))
            Fail($"{learner} got entry {index} of epoch {epoch}, not the committed one (epoch {c.Epoch})");
    }

    /// <summary>
    /// Once a leader has committed everything it holds: every entry any learner got was compared with the entry committed
    /// at its index (none is still beyond every commit).
    /// </summary>
    public void CheckEveryDeliveredEntryCommitted()
    {
        if (_receivedAhead.Count > 0)
        {
            var (index, got) = _receivedAhead.First();
            Fail($"{got[0].Learner} got entry {index} of epoch {got[0].Epoch}, and no leader has committed there ({_highestCommit})");
        }
    }

    /// <summary>
    /// Every relay serves: each one that is up holds <paramref name="through"/>, fed by the leader or by another relay of
    /// its datacenter. Not the relays of the leader's own datacenter, which a leading member serves directly.
    /// </summary>
    public bool RelaysHold(string leaderId, ulong through)
    {
        string home = Topology.GetNode(leaderId).Datacenter;
        foreach (var dc in Topology.Datacenters)
            if (dc.Name != home)
                foreach (var p in dc.Relays)
                    if (Network.IsUp(p) && ((RelayEngine)Network.Engine(p)).RetainedIndex < through) return false;
        return true;
    }

    /// <summary>Once converged: every fed relay's retention holds the entries of <paramref name="log"/> (a deposed leader's suffix was replaced).</summary>
    public void CheckRelayRetention(MemoryLog log, ulong through)
    {
        foreach (var dc in Topology.Datacenters)
            foreach (var p in dc.Relays)
            {
                if (!Network.IsUp(p)) continue;
                var relay = (RelayEngine)Network.Engine(p);
                // A relay with no feed (in the leader's datacenter) is not corrected until it is; it hands learners only what is final.
                if (relay.FeedSource is null) continue;
                ulong top = Math.Min(through, relay.RetainedIndex);
                for (ulong i = Math.Max(Math.Max(1, relay.FirstRetainedIndex), log.FirstIndex); i <= top; i++)
                    if (!relay.TryGetRetained(i, out var mine) || !log.TryGet(i, out var theirs) || mine.Epoch != theirs.Epoch)
                        Fail($"relay {p} retains entry {i} of epoch {(relay.TryGetRetained(i, out var m) ? m.Epoch : 0)}, not the leader's");
            }
    }

    /// <summary>
    /// Once converged: every learner holds exactly the application entries of <paramref name="log"/> up to
    /// <paramref name="through"/>, in order, each once (with durable delivery: what was taken back was announced).
    /// </summary>
    public void CheckLearnerStreams(MemoryLog log, ulong through)
    {
        foreach (var l in Learners)
        {
            // What retention dropped before the learner got it, or a SnapshotRequired moved it past, is not compared.
            ulong from = Math.Max(Math.Max(1, log.FirstIndex), l.SkippedTo);
            int k = l.Stream.FindIndex(s => s.Index >= from);
            if (k < 0) k = l.Stream.Count;
            for (ulong i = from; i <= through; i++)
            {
                if (!log.TryGet(i, out var e) || InternalEntries.IsInternal(e.Key.Span)) continue;
                if (k >= l.Stream.Count || l.Stream[k].Index != i || l.Stream[k].Epoch != e.Epoch || !e.Payload.Span.SequenceEqual(l.Stream[k].Payload))
                    Fail($"{l.Id}'s stream differs from the leader's log at index {i}" +
                        (k < l.Stream.Count ? $" (it holds {l.Stream[k].Index} of epoch {l.Stream[k].Epoch} there)" : " (it ends before)"));
                k++;
            }
            if (k != l.Stream.Count) Fail($"{l.Id} holds {l.Stream.Count - k} entries beyond the leader's log at {through}");
        }
    }

    /// <summary>
    /// The learner's last entry is <paramref name="log"/>'s entry there (or it holds none): a learner at the leader's last
    /// index may still hold a deposed leader's entries there, until a node compares its last entry and tells it Truncated.
    /// </summary>
    public bool HoldsLastOf(SimLearner learner, MemoryLog log) =>
        learner.Stream.Count == 0
        // Moved past its stream (a snapshot, or SnapshotRequired): what it holds last is committed, nothing to compare.
        || learner.Stream[^1].Index < learner.SkippedTo
        || (log.TryGet(learner.Stream[^1].Index, out var e) && e.Epoch == learner.Stream[^1].Epoch);

    private static string Describe(in GeoRelay.Storage.LogEntry e) => Encoding.UTF8.GetString(e.Key.Span) + "|" + Encoding.UTF8.GetString(e.Payload.Span);

    /// <summary>Application entries every live log holds up to <paramref name="index"/>, in order, each once.</summary>
    public static List<string> ApplicationPayloads(MemoryLog log, ulong through)
    {
        var list = new List<string>();
        for (ulong i = Math.Max(1, log.FirstIndex); i <= through; i++)
            if (log.TryGet(i, out var e) && !InternalEntries.IsInternal(e.Key.Span)) list.Add(Encoding.UTF8.GetString(e.Payload.Span));
        return list;
    }

    /// <summary>
    /// Keyed compaction: every snapshot a learner received is the leader's keyed state at the snapshot's index (each live
    /// key's latest committed write there), and every learner's state, its last snapshot plus the stream after it,
    /// is the keyed state at the index it has reached.
    /// </summary>
    public void CheckKeyedStates()
    {
        if (!_keyed) return;
        foreach (var l in Learners)
        {
            foreach (var (through, state) in l.Snapshots)
                CompareState($"{l.Id}'s snapshot at {through}", state, through);
            if (!l.StateLost) CompareState($"{l.Id}'s state at {l.Next - 1}", l.State, l.Next - 1);
        }
        foreach (var (node, log) in _keyedLogs)
        {
            if (log.Snapshot() is not { } state) continue;
            var asText = new SortedDictionary<string, (ulong Index, string Value)>(StringComparer.Ordinal);
            foreach (var e in state.Entries) asText[Encoding.UTF8.GetString(e.Key.Span)] = (e.Index, Encoding.UTF8.GetString(e.Payload.Span));
            CompareState($"{node}'s keyed state at {state.Through}{(log.ImagesInstalled > 0 ? " (with an image installed)" : "")}", asText, state.Through);
        }
    }

    /// <summary>Nodes whose keyed state is not whole (installed past it, and no image merged yet).</summary>
    public List<string> IncompleteKeyedStates() =>
        _keyedLogs.Where(p => Network.IsUp(p.Key) && !p.Value.HasCompleteState).Select(p => $"{p.Key} (missing through {p.Value.MissingThrough}, folded through {p.Value.Through})").ToList();

    /// <summary>The highest index a running relay holds (a deposed leader's suffix may reach past the leader's log).</summary>
    public ulong HighestRelayIndex() =>
        _keyedLogs.Where(p => Network.IsUp(p.Key) && !Voters.Contains(p.Key)).Select(p => p.Value.LastIndex).DefaultIfEmpty(0UL).Max();

    /// <summary>Keyed compaction on every node.</summary>
    public bool Keyed => _keyed;

    /// <summary>Keyed-state images nodes merged (installs that carried the state).</summary>
    public long KeyedImagesInstalled => _keyedLogs.Values.Sum(l => l.ImagesInstalled);

    /// <summary>The snapshots learners received, for the run's summary.</summary>
    public int LearnerSnapshots => Learners.Sum(l => l.Snapshots.Count);

    private void CompareState(string what, SortedDictionary<string, (ulong Index, string Value)> state, ulong through)
    {
        var expected = new SortedDictionary<string, (ulong Index, string Value)>(StringComparer.Ordinal);
        for (ulong i = 1; i <= through; i++)
        {
            if (!_committed.ContainsKey(i)) Fail($"checking {what}: entry {i} was never seen committed");
            if (!_committedWrites.TryGetValue(i, out var w)) continue; // an internal entry
            if (w.Tombstone) expected.Remove(w.Key);
            else expected[w.Key] = (i, w.Value);
        }
        if (!state.SequenceEqual(expected))
            Fail($"{what} is not the leader's keyed state there: it holds [{string.Join(", ", state.Select(kv => $"{kv.Key}@{kv.Value.Index}"))}], " +
                $"the log [{string.Join(", ", expected.Select(kv => $"{kv.Key}@{kv.Value.Index}"))}]");
    }

    [DoesNotReturn]
    private void Fail(string what) => throw Violation(what);

    /// <summary>The exception for a broken invariant now, with the trace so far.</summary>
    public InvariantViolationException Violation(string what) =>
        new(_seed, Network.Clock.NowMicros / 1000, what, VoterChaos.ReplayCommand(_seed, Topology.Defaults.Delivery, _retention, _keyed), Trace);
}
