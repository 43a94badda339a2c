using GeoRelay.Codec.Frames;
using System.Text;
using GeoRelay.Leader;
using GeoRelay.Relay;
using GeoRelay.Storage;
using GeoRelay.Topology;

namespace GeoRelay.TestUtilities.Sim;

public enum FaultKind
{
    CrashRelay,
    CrashMember,
    CrashEveryRelayOfADatacenter,
    CutLink,
    PartitionDatacenter,
    SlowLink,
    DropConnection,
    ReplaceLeader,
    /// <summary>
    /// A node's disk breaks (writes or fsyncs fail); scheduled apart from the others, so a seed's other faults stay
    /// what they were before this kind existed. The node must stop at the failure, sending nothing more, and
    /// restarts later on a repaired disk with what its log made durable.
    /// </summary>
    DiskFails,
    /// <summary>
    /// The link between two relays of one datacenter is cut (a standby or second-tier relay loses its feed); scheduled
    /// apart, like <see cref="DiskFails"/>, and only where a datacenter has two relays or more.
    /// </summary>
    CutRelayFeed,
}

/// <summary>How long and how hard one simulated run is.</summary>
public sealed record SimulationOptions
{
    /// <summary>Steps during which faults strike and entries are published. Default 1,500.</summary>
    public int FaultSteps { get; init; } = 1_500;

    /// <summary>Steps of publishing after everything healed. Default 150.</summary>
    public int SettleSteps { get; init; } = 150;

    /// <summary>Most steps allowed to converge once publishing stopped. Default 20,000.</summary>
    public int MaxConvergeSteps { get; init; } = 20_000;

    /// <summary>Simulated time per step, in microseconds. Default 1,000 (the leader's linger).</summary>
    public long TickMicros { get; init; } = 1_000;

    /// <summary>Most faults per run (at least one strikes). Default 8.</summary>
    public int MaxFaults { get; init; } = 8;

    /// <summary>Learners per datacenter, spread over its relays and members. Default 2.</summary>
    public int LearnersPerDatacenter { get; init; } = 2;

    /// <summary>
    /// After healing, every datacenter must be back on its preferred relay (failback) before the run counts as
    /// converged. Set it where <c>failback-after</c> is short against <see cref="MaxConvergeSteps"/>. Default false.
    /// </summary>
    public bool ExpectFailback { get; init; }

    public static SimulationOptions Default { get; } = new();
}

/// <summary>What one run did; <see cref="DiskStops"/> counts nodes a broken disk stopped (a broken disk can go unnoticed until repaired).</summary>
public sealed record SimulationResult(int Seed, ulong TraceHash, long Steps, ulong Entries, ulong Commit, ulong LeaderEpoch,
    IReadOnlyDictionary<FaultKind, int> Faults, long Failovers, long DirectFallbacks, long LearnerReconnects, IReadOnlyList<string> FaultLog,
    int DiskStops = 0, IReadOnlyDictionary<string, long>? ServedBy = null, long Failbacks = 0);

/// <summary>An invariant broke: the seed, the step, the replay command and the faults so far say how to get there again.</summary>
public sealed class InvariantViolationException(int seed, long step, string what, string replay, IReadOnlyList<string> faultLog)
    : Exception(Describe(seed, step, what, replay, faultLog))
{
    public int Seed { get; } = seed;
    public long Step { get; } = step;
    public string What { get; } = what;

    private static string Describe(int seed, long step, string what, string replay, IReadOnlyList<string> faultLog)
    {
        var text = new StringBuilder();
        text.Append($"seed {seed}, step {step}: {what}\n");
        text.Append($"replay: {replay}\n");
        text.Append("faults so far:\n");
        foreach (var line in faultLog) text.Append("  ").Append(line).Append('\n');
        return text.ToString();
    }
}

/// <summary>
/// One seeded run of the whole cluster — the real leader, relay and member engines plus learners — on
/// the simulated network: a random fault schedule while entries are published, invariants checked
/// after every step, then everything heals and must converge. Same seed, same run.
/// </summary>
public sealed class FaultSimulation
{
    private readonly int _seed;
    private readonly SimulationOptions _options;
    private readonly TopologyConfig _topology;
    private readonly SimNetwork _network;
    private readonly SimEnvironment _env;
    private readonly Random _schedule;
    private readonly Random _disk;
    private readonly Random _publish;
    /// <summary>Every choice about disk faults: drawn apart, so seeds without one run as before they existed.</summary>
    private readonly Random _diskFaults;
    private readonly Random _feedFaults;
    private readonly MemoryLog _leaderLog = new();
    private readonly Dictionary<string, MemoryLog> _memberLogs = new();
    private readonly Dictionary<string, WatchedLog> _memberWatched = new();
    private readonly Dictionary<string, MemoryLog> _relayLogs = new();
    private readonly List<SimLearner> _learners = new();
    private readonly Dictionary<string, string> _learnerDatacenter = new();
    private readonly List<(long Step, string What, Action Undo)> _pending = new();
    private readonly Dictionary<FaultKind, int> _faults = new();
    private readonly List<string> _faultLog = new();
    private readonly List<ulong> _committed = new(); // entry hash per committed index (slot i = index i + 1)
    /// <summary>Entries learners received this step, checked against what is committed once the step is over.</summary>
    private readonly List<(SimLearner Learner, ulong Index, ulong Hash)> _received = new();
    private readonly bool _durableDelivery;
    private readonly string[] _relays = [];
    private readonly string[] _members = [];
    // Per member, in _members order (Check runs after every step): its log, how far it was checked, its durable index.
    private readonly WatchedLog[] _memberLogArray = [];
    private readonly ulong[] _memberChecked = [];
    private readonly ulong[] _memberDurable = [];
    private LeaderEngine _leader = null!;
    private ulong _epoch = 1;
    private ulong _lastCommit;
    private long _step;
    private long _failoversBefore;
    private long _directBefore;
    private long _failbacksBefore;
    private int _diskStops;

    private FaultSimulation(int seed, TopologyConfig topology, SimulationOptions options)
    {
        _seed = seed;
        _options = options;
        _topology = topology;
        _durableDelivery = topology.Defaults.Delivery == LearnerDelivery.Durable;
        var master = new Random(seed);
        int networkSeed = master.Next();
        _schedule = new Random(master.Next());
        _disk = new Random(master.Next());
        _publish = new Random(master.Next());
        var profiles = new Dictionary<(string, string), LinkProfile>();
        var linkRandom = new Random(master.Next());
        LinkProfile Profile(string a, string b)
        {
            if (profiles.TryGetValue((a, b), out var p)) return p;
            var key = string.CompareOrdinal(a, b) <= 0 ? (a, b) : (b, a);
            if (!profiles.TryGetValue(key, out p))
            {
                bool same = DatacenterOf(a) == DatacenterOf(b);
                p = same
                    ? new LinkProfile(100 + linkRandom.Next(400), linkRandom.Next(200), 0)
                    : new LinkProfile(20_000 + linkRandom.Next(60_000), linkRandom.Next(10_000), 2_000 + linkRandom.Next(20_000));
                profiles[key] = p;
            }
            profiles[(a, b)] = p;
            return p;
        }
        _network = new SimNetwork(Profile, networkSeed);
        _env = new SimEnvironment(_network.Clock);
        _diskFaults = new Random(master.Next());
        _feedFaults = new Random(master.Next());
        _network.HasDiskFailed = id => LogOf(id)?.DiskFailed == true;
        _network.DiskFailed = OnDiskFailed;

        var relays = new List<string>();
        var members = new List<string>();
        foreach (var dc in topology.Datacenters)
        {
            foreach (var m in dc.Members)
            {
                members.Add(m);
                _memberLogs[m] = new MemoryLog();
                _memberWatched[m] = new WatchedLog(_memberLogs[m]);
                _network.Add(m, NewMember(m));
            }
            foreach (var p in dc.Relays)
            {
                relays.Add(p);
                _relayLogs[p] = new MemoryLog();
                _network.Add(p, NewRelay(p));
            }
        }
        _relays = relays.ToArray();
        _members = members.ToArray();
        _memberLogArray = _members.Select(m => _memberWatched[m]).ToArray();
        _memberChecked = new ulong[_members.Length];
        _memberDurable = new ulong[_members.Length];
        _leader = NewLeader();
        _network.Add(topology.LeaderId, _leader);
        foreach (var dc in topology.Datacenters)
        {
            for (int i = 0; i < options.LearnersPerDatacenter; i++)
            {
                // As an application would list them: the relays first (each learner starting at another, as the SDK spreads
                // them), or (every other learner) the members first.
                var relaysFrom = dc.Relays.Count == 0 ? [] : dc.Relays.Skip(i / 2 % dc.Relays.Count).Concat(dc.Relays.Take(i / 2 % dc.Relays.Count)).ToList();
                var targets = i % 2 == 0 ? relaysFrom.Concat(dc.Members).ToList() : dc.Members.Concat(relaysFrom).ToList();
                var learner = new SimLearner($"learner-{dc.Name}-{i}", topology.Cluster, targets, _env)
                {
                    Received = CheckLearnerEntry,
                    // With durable delivery an entry may be one the leader no longer holds: the stream is checked whole at the end.
                    MaySkip = index => _durableDelivery || (_leaderLog.TryGet(index, out var held) && InternalEntries.IsInternal(held.Key.Span)),
                };
                _learners.Add(learner);
                _learnerDatacenter[learner.Id] = dc.Name;
                _network.Add(learner.Id, learner);
            }
        }
    }

    /// <summary>Runs one seed to the end; throws <see cref="InvariantViolationException"/> at the first broken invariant.</summary>
    public static SimulationResult Run(int seed, TopologyConfig topology, SimulationOptions? options = null)
    {
        var simulation = new FaultSimulation(seed, topology, options ?? SimulationOptions.Default);
        try
        {
            var result = simulation.Run();
            simulation._network.Shutdown();
            return result;
        }
        catch (Exception e) when (e is not InvariantViolationException)
        {
            throw simulation.Violation($"an engine threw {e}");
        }
    }

    private string DatacenterOf(string node) =>
        _topology.Nodes.TryGetValue(node, out var n) ? n.Datacenter : _learnerDatacenter[node];

    private LeaderEngine NewLeader() =>
        new(_topology, _epoch, _leaderLog, _env, LeaderOptions.Default with { Seed = _seed ^ (int)_epoch });

    private MemberEngine NewMember(string id) => new(_topology, id, _memberWatched[id], _env);

    private RelayEngine NewRelay(string id) => new(_topology, id, _relayLogs[id], _env, seed: _seed ^ (Array.IndexOf(_relays, id) << 20) ^ (int)_step);

    private SimulationResult Run()
    {
        var schedule = Schedule();
        var diskSchedule = DiskSchedule();
        var feedSchedule = FeedSchedule();
        int next = 0, nextDisk = 0, nextFeed = 0;
        for (; _step < _options.FaultSteps; _step++)
        {
            while (next < schedule.Count && schedule[next].Step == _step) Inject(schedule[next++].Kind);
            while (nextDisk < diskSchedule.Count && diskSchedule[nextDisk] == _step) { nextDisk++; BreakDisk(); }
            while (nextFeed < feedSchedule.Count && feedSchedule[nextFeed] == _step) { nextFeed++; CutRelayFeed(); }
            UndoDue();
            Publish();
            _network.Step(_options.TickMicros);
            Check();
        }
        // Heal everything, publish a little more, then stop and wait for every live node to converge.
        RepairUnnoticedDisks();
        // A restart may add to the list (a leader restarted by its disk failure); run until none is left.
        while (_pending.Count > 0)
        {
            var (_, what, undo) = _pending[0];
            _pending.RemoveAt(0);
            undo();
            Log("end of faults: " + what);
        }
        _network.HealAll();
        _network.RestoreAllSpeeds();
        long end = _step + _options.SettleSteps;
        for (; _step < end; _step++)
        {
            Publish();
            _network.Step(_options.TickMicros);
            Check();
        }
        long deadline = _step + _options.MaxConvergeSteps;
        while (!Converged())
        {
            if (_step >= deadline) throw Violation("not converged after healing: " + Lagging());
            _network.Step(_options.TickMicros);
            _step++;
            Check();
        }
        CheckConvergedLogs();
        if (_receivedAhead.Count > 0)
            throw Violation($"learner {_receivedAhead.First().Value[0].Learner} got entry {_receivedAhead.First().Key}, never committed");
        long failovers = 0, direct = 0;
        foreach (var s in _leader.Status()) { failovers += s.Failovers; direct += s.DirectFallbacks; }
        long reconnects = 0;
        var servedBy = new Dictionary<string, long>();
        foreach (var l in _learners)
        {
            reconnects += l.Reconnects;
            foreach (var (node, n) in l.ServedBy) servedBy[node] = servedBy.GetValueOrDefault(node) + n;
        }
        return new SimulationResult(_seed, _network.TraceHash, _step, _leaderLog.LastIndex, _leader.CommitIndex, _epoch,
            _faults, _failoversBefore + failovers, _directBefore + direct, reconnects, _faultLog, _diskStops, servedBy,
            _failbacksBefore + _leader.Status().Sum(s => s.Failbacks));
    }

    private List<(long Step, FaultKind Kind)> Schedule()
    {
        int count = 1 + _schedule.Next(_options.MaxFaults);
        var list = new List<(long, FaultKind)>(count);
        // Disk faults have a schedule of their own (DiskSchedule).
        var kinds = Enum.GetValues<FaultKind>().Where(k => k is not (FaultKind.DiskFails or FaultKind.CutRelayFeed)).ToArray();
        for (int i = 0; i < count; i++)
            list.Add((_schedule.NextInt64(50, _options.FaultSteps * 3 / 4), kinds[_schedule.Next(kinds.Length)]));
        list.Sort((a, b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : a.Item2.CompareTo(b.Item2));
        return list;
    }

    private long Duration() => _schedule.NextInt64(20, 1_000);

    /// <summary>Steps at which some node's disk breaks: none, one or two per run.</summary>
    private List<long> DiskSchedule()
    {
        var steps = new List<long>();
        for (int i = _diskFaults.Next(3); i > 0; i--) steps.Add(_diskFaults.NextInt64(50, _options.FaultSteps * 3 / 4));
        steps.Sort();
        return steps;
    }

    /// <summary>Steps at which a link between two relays of a datacenter is cut: none, one or two per run.</summary>
    private List<long> FeedSchedule()
    {
        var steps = new List<long>();
        if (!_topology.Datacenters.Any(d => d.Relays.Count > 1)) return steps;
        for (int i = _feedFaults.Next(3); i > 0; i--) steps.Add(_feedFaults.NextInt64(50, _options.FaultSteps * 3 / 4));
        steps.Sort();
        return steps;
    }

    private void CutRelayFeed()
    {
        var withTwo = _topology.Datacenters.Where(d => d.Relays.Count > 1).ToArray();
        var dc = withTwo[_feedFaults.Next(withTwo.Length)];
        int a = _feedFaults.Next(dc.Relays.Count), b = (a + 1 + _feedFaults.Next(dc.Relays.Count - 1)) % dc.Relays.Count;
        string x = dc.Relays[a], y = dc.Relays[b];
        _faults[FaultKind.CutRelayFeed] = _faults.GetValueOrDefault(FaultKind.CutRelayFeed) + 1;
        _network.Cut(x, y);
        long heal = _step + _feedFaults.NextInt64(20, 1_000);
        _pending.Add((heal, $"heal {x} <-> {y}", () => _network.Heal(x, y)));
        Log($"cut relays {x} <-> {y}");
    }

    private MemoryLog? LogOf(string id) =>
        id == _topology.LeaderId ? _leaderLog
        : _memberLogs.TryGetValue(id, out var member) ? member
        : _relayLogs.TryGetValue(id, out var relay) ? relay
        : null;

    /// <summary>A running node's disk breaks; the node notices at its next write of the kind that fails.</summary>
    private void BreakDisk()
    {
        int pick = _diskFaults.Next(1 + _relays.Length + _members.Length);
        string id = pick == 0 ? _topology.LeaderId : pick <= _relays.Length ? _relays[pick - 1] : _members[pick - 1 - _relays.Length];
        var fault = _diskFaults.Next(2) == 0 ? DiskFault.WriteFails : DiskFault.SyncFails;
        if (!_network.IsUp(id) || LogOf(id)!.DiskFailed) return;
        _faults[FaultKind.DiskFails] = _faults.GetValueOrDefault(FaultKind.DiskFails) + 1;
        LogOf(id)!.BreakDisk(fault);
        Log($"disk of {id} breaks ({(fault == DiskFault.WriteFails ? "writes fail" : "fsyncs fail")})");
    }

    /// <summary>The network stopped a node whose disk failed; it restarts later on a repaired disk.</summary>
    private void OnDiskFailed(string id, DiskFailedException e)
    {
        _diskStops++;
        Log($"{id} stopped: its disk failed ({e.Operation})");
        if (id == _topology.LeaderId)
        {
            Later($"leader restarts after its disk failed", () => { if (!_network.IsUp(id)) RestartLeader(_diskFaults); });
            return;
        }
        ((IDisposable)_network.Engine(id)).Dispose();
        bool torn = _diskFaults.Next(2) == 0;
        if (_memberLogs.ContainsKey(id))
        {
            Later($"member {id} restarts on a repaired disk ({(torn ? "torn tail" : "durable state kept")})", () =>
            {
                if (_network.IsUp(id)) return;
                _memberLogs[id].Crash(torn, _disk);
                _network.Restart(id, NewMember(id));
            });
            return;
        }
        Later($"relay {id} restarts on a repaired disk ({(torn ? "torn tail" : "retention kept")})", () =>
        {
            if (_network.IsUp(id)) return;
            _relayLogs[id].Crash(torn, _disk);
            _network.Restart(id, NewRelay(id));
        });
    }

    /// <summary>At the end of the faults: a disk that broke but was never written to since is repaired unnoticed.</summary>
    private void RepairUnnoticedDisks()
    {
        foreach (var log in _memberLogs.Values.Concat(_relayLogs.Values).Append(_leaderLog))
            if (!log.DiskFailed) log.BreakDisk(DiskFault.None);
    }

    private void Inject(FaultKind kind)
    {
        _faults[kind] = _faults.GetValueOrDefault(kind) + 1;
        switch (kind)
        {
            case FaultKind.CrashRelay:
                CrashRelay(_relays[_schedule.Next(_relays.Length)]);
                break;
            case FaultKind.CrashEveryRelayOfADatacenter:
            {
                var withRelays = _topology.Datacenters.Where(d => d.Relays.Count > 0).ToArray();
                foreach (var p in withRelays[_schedule.Next(withRelays.Length)].Relays) CrashRelay(p);
                break;
            }
            case FaultKind.CrashMember:
            {
                var id = _members[_schedule.Next(_members.Length)];
                if (!_network.IsUp(id)) break;
                bool torn = _schedule.Next(2) == 0;
                _network.Crash(id);
                ((IDisposable)_network.Engine(id)).Dispose();
                _memberLogs[id].Crash(torn, _disk);
                Later($"member {id} restarts", () => _network.Restart(id, NewMember(id)));
                Log($"crash member {id} ({(torn ? "torn tail" : "durable state kept")})");
                break;
            }
            case FaultKind.CutLink:
            {
                var (a, b) = RandomLink();
                _network.Cut(a, b);
                Later($"heal {a} <-> {b}", () => _network.Heal(a, b));
                Log($"cut {a} <-> {b}");
                break;
            }
            case FaultKind.PartitionDatacenter:
            {
                var dc = _topology.Datacenters[_schedule.Next(_topology.Datacenters.Count)];
                if (dc.IsLeaderDatacenter) break;
                var nodes = dc.Relays.Concat(dc.Members).ToArray();
                foreach (var n in nodes) _network.Cut(_topology.LeaderId, n);
                Later($"heal datacenter {dc.Name}", () => { foreach (var n in nodes) _network.Heal(_topology.LeaderId, n); });
                Log($"partition datacenter {dc.Name} from the leader");
                break;
            }
            case FaultKind.SlowLink:
            {
                var (a, b) = RandomLink();
                int factor = 2 + _schedule.Next(30);
                _network.Slow(a, b, factor);
                Later($"restore speed {a} <-> {b}", () => _network.Slow(a, b, 1));
                Log($"slow {a} <-> {b} x{factor}");
                break;
            }
            case FaultKind.DropConnection:
            {
                var (a, b) = RandomLink();
                _network.DropBetween(a, b);
                Log($"drop connections {a} <-> {b}");
                break;
            }
            case FaultKind.ReplaceLeader:
                ReplaceLeader();
                break;
        }
    }

    private void CrashRelay(string id)
    {
        if (!_network.IsUp(id)) return;
        _network.Crash(id);
        ((IDisposable)_network.Engine(id)).Dispose();
        int disk = _schedule.Next(3);
        if (disk == 0) _relayLogs[id] = new MemoryLog();
        else _relayLogs[id].Crash(tornTail: disk == 1, _disk);
        Later($"relay {id} restarts", () => _network.Restart(id, NewRelay(id)));
        Log($"crash relay {id} ({(disk == 0 ? "retention lost" : disk == 1 ? "torn tail" : "retention kept")})");
    }

    /// <summary>The leader process dies (losing what it had not fsynced) and comes back with the next epoch.</summary>
    private void ReplaceLeader()
    {
        _network.Crash(_topology.LeaderId);
        RestartLeader(_schedule);
    }

    /// <summary>The stopped leader comes back on its log (what it had not fsynced lost) with the next epoch.</summary>
    private void RestartLeader(Random random)
    {
        foreach (var s in _leader.Status()) { _failoversBefore += s.Failovers; _directBefore += s.DirectFallbacks; _failbacksBefore += s.Failbacks; }
        bool torn = random.Next(2) == 0;
        _leaderLog.Crash(torn, _disk);
        _epoch++;
        _leader = NewLeader();
        _network.Restart(_topology.LeaderId, _leader);
        _lastCommit = 0;
        // Every committed entry must have survived, unchanged.
        for (int i = 0; i < _committed.Count; i++)
        {
            ulong index = (ulong)i + 1;
            if (!_leaderLog.TryGet(index, out var e) || Hash(e.Epoch, e.Payload.Span) != _committed[i])
                throw Violation($"committed entry {index} lost or changed by a leader restart");
        }
        Log($"replace leader: epoch {_epoch} ({(torn ? "torn tail" : "durable state kept")}), log ends at {_leaderLog.LastIndex}");
    }

    private (string, string) RandomLink()
    {
        switch (_schedule.Next(4))
        {
            case 0:
                return (_topology.LeaderId, _relays[_schedule.Next(_relays.Length)]);
            case 1:
                return (_topology.LeaderId, _members[_schedule.Next(_members.Length)]);
            case 2:
            {
                var p = _relays[_schedule.Next(_relays.Length)];
                var dc = _topology.GetDatacenter(_topology.GetNode(p).Datacenter);
                return (p, dc.Members[_schedule.Next(dc.Members.Count)]);
            }
            default:
            {
                var l = _learners[_schedule.Next(_learners.Count)];
                var dc = _topology.Datacenters[_learners.IndexOf(l) / _options.LearnersPerDatacenter];
                var targets = dc.Relays.Concat(dc.Members).ToArray();
                return (l.Id, targets[_schedule.Next(targets.Length)]);
            }
        }
    }

    private void Later(string what, Action undo) => _pending.Add((_step + Duration(), what, undo));

    private void UndoDue()
    {
        for (int i = 0; i < _pending.Count; i++)
        {
            if (_pending[i].Step > _step) continue;
            var (_, what, undo) = _pending[i];
            _pending.RemoveAt(i--);
            undo();
            Log(what);
        }
    }

    private void Log(string what)
    {
        _faultLog.Add($"step {_step}: {what}");
        _network.Note(what);
    }

    private void Publish()
    {
        if (_publish.Next(4) != 0) return;
        int n = 1 + _publish.Next(4);
        for (int i = 0; i < n; i++)
        {
            // A leader stopped by its disk takes no publishes until it is back.
            if (!_network.IsUp(_topology.LeaderId)) return;
            ulong index = _leaderLog.LastIndex + 1;
            var payload = Encoding.ASCII.GetBytes($"s{_seed}-e{_epoch}-i{index}-" + new string('x', _publish.Next(100)));
            try
            {
                _leader.Append(default, payload, _network.Clock.NowMicros);
            }
            catch (DiskFailedException e)
            {
                _network.StopOnDiskFailure(_topology.LeaderId, e);
            }
        }
    }

    private static ulong Hash(ulong epoch, ReadOnlySpan<byte> payload)
    {
        ulong h = 14695981039346656037UL ^ epoch;
        foreach (var b in payload) { h ^= b; h *= 1099511628211UL; }
        return h;
    }

    private string? CheckLearnerEntry(SimLearner learner, ulong index, ulong epoch, ReadOnlyMemory<byte> payload)
    {
        // Durable delivery may hand out entries a new leader rewrites (then says so): checked against the final log.
        if (_durableDelivery) return null;
        _received.Add((learner, index, Hash(epoch, payload.Span)));
        if (!_leaderLog.TryGet(index, out var e)) return $"got entry {index}, which the leader never wrote";
        if (e.Epoch != epoch || !e.Payload.Span.SequenceEqual(payload.Span)) return $"entry {index} differs from the leader's";
        if (InternalEntries.IsInternal(e.Key.Span)) return $"entry {index} is the cluster's own (internal) and reached a learner";
        return null;
    }

    /// <summary>The invariants, after every step.</summary>
    private void Check()
    {
        if (_network.Violation is { } sentAfterFailure) throw Violation(sentAfterFailure);
        ulong commit = _leader.CommitIndex;
        if (commit < _lastCommit) throw Violation($"commit index went back from {_lastCommit} to {commit}");
        _lastCommit = commit;
        while ((ulong)_committed.Count < commit)
        {
            ulong index = (ulong)_committed.Count + 1;
            if (!_leaderLog.TryGet(index, out var e)) throw Violation($"committed entry {index} missing from the leader's log");
            _committed.Add(Hash(e.Epoch, e.Payload.Span));
        }
        // A committed entry is durable on a quorum of members: no crash the quorum allows loses it.
        int holding = 0;
        for (int k = 0; k < _members.Length; k++)
        {
            var m = _members[k];
            var log = _memberLogArray[k];
            ulong durable = log.DurableIndex;
            if (durable >= (ulong)_committed.Count) holding++;
            if (durable < _memberDurable[k]) throw Violation($"member {m}'s durable index went back from {_memberDurable[k]} to {durable}");
            _memberDurable[k] = durable;
            // Entries it truncated (on an epoch change) and may have written again are checked again.
            ulong rewritten = log.TakeRewrittenFrom();
            ulong last = log.LastIndex, from = Math.Min(Math.Min(_memberChecked[k], rewritten == ulong.MaxValue ? ulong.MaxValue : rewritten - 1), last);
            for (ulong i = from + 1; i <= last; i++)
            {
                if (!log.TryGet(i, out var mine)) throw Violation($"member {m} lacks entry {i} inside its log (a gap)");
                if (!_leaderLog.TryGet(i, out var theirs)) throw Violation($"member {m} holds entry {i}, which the leader never wrote");
                if (mine.Epoch != theirs.Epoch || !mine.Payload.Span.SequenceEqual(theirs.Payload.Span))
                    throw Violation($"member {m}'s entry {i} differs from the leader's");
            }
            _memberChecked[k] = last;
        }
        if (_committed.Count > 0 && holding < _topology.RequiredAcks)
            throw Violation($"committed index {_committed.Count} is durable on {holding} members, fewer than the quorum of {_topology.RequiredAcks}");
        foreach (var l in _learners)
        {
            if (l.Violation is { } v) throw Violation(v);
            if (!_durableDelivery && l.Truncations > 0) throw Violation($"learner {l.Id} was told Truncated, though learners get committed entries only");
        }
        // Committed delivery: whatever a learner got is the entry committed at that index (so no leader change can take
        // it back). A relay may count the quorum itself and hand out an entry before the leader's commit index reaches
        // it: then the leader and a quorum of members hold it durably, and it is compared once the leader commits there.
        while (_receivedAhead.Count > 0 && _receivedAhead.First() is var (ahead, got) && ahead <= (ulong)_committed.Count)
        {
            foreach (var (learner, hash) in got)
                if (_committed[(int)ahead - 1] != hash) throw Violation($"learner {learner} got an entry {ahead} other than the one committed later");
            _receivedAhead.Remove(ahead);
        }
        foreach (var (learner, index, hash) in _received)
        {
            if (index <= (ulong)_committed.Count)
            {
                if (_committed[(int)index - 1] != hash) throw Violation($"learner {learner.Id} got an entry {index} other than the committed one");
                continue;
            }
            int holders = 0;
            foreach (var log in _memberLogArray)
                if (log.DurableIndex >= index && log.TryGet(index, out var e) && Hash(e.Epoch, e.Payload.Span) == hash) holders++;
            if (_leaderLog.DurableIndex < index || holders < _topology.RequiredAcks)
                throw Violation($"learner {learner.Id} got entry {index}, beyond the commit index ({_committed.Count}), durable on {holders} members" +
                    $" and {(_leaderLog.DurableIndex < index ? "not" : "")} on the leader; a commit needs the leader and {_topology.RequiredAcks}");
            if (!_receivedAhead.TryGetValue(index, out var list)) _receivedAhead[index] = list = new();
            list.Add((learner.Id, hash));
        }
        _received.Clear();
    }

    /// <summary>Entries learners got beyond the commit index, by index, until the leader commits there.</summary>
    private readonly SortedDictionary<ulong, List<(string Learner, ulong Hash)>> _receivedAhead = new();

    private bool Converged()
    {
        ulong last = _leaderLog.LastIndex;
        if (_leaderLog.DurableIndex != last || _leader.CommitIndex != last) return false;
        foreach (var m in _members) if (_memberLogs[m].DurableIndex != last || _memberLogs[m].LastIndex != last) return false;
        foreach (var l in _learners) if (l.Next != last + 1) return false;
        foreach (var s in _leader.Status())
        {
            if (s.Route == "direct" && _topology.GetDatacenter(s.Name).Relays.Count > 0) return false;
            // Failback: the datacenter is back on its preferred relay.
            if (_options.ExpectFailback && !s.Route.EndsWith(" " + _topology.GetDatacenter(s.Name).Relays.FirstOrDefault(), StringComparison.Ordinal)
                && _topology.GetDatacenter(s.Name).Relays.Count > 0) return false;
        }
        // Every relay serves: each one that is up holds the whole log, fed by the leader or by another relay.
        foreach (var p in _relays)
            if (_network.IsUp(p) && ((RelayEngine)_network.Engine(p)).RetainedIndex != last) return false;
        return true;
    }

    /// <summary>Converged means the same entries, not only the same length: every member's whole log against the leader's.</summary>
    private void CheckConvergedLogs()
    {
        ulong last = _leaderLog.LastIndex;
        // Every learner holds the leader's application entries, each once, in order: with durable delivery, what a leader
        // change took back was announced (Truncated) and replaced.
        foreach (var l in _learners)
        {
            int k = 0;
            for (ulong i = 1; i <= last; i++)
            {
                if (!_leaderLog.TryGet(i, out var e) || InternalEntries.IsInternal(e.Key.Span)) continue;
                if (k >= l.Stream.Count || l.Stream[k].Index != i || l.Stream[k].Epoch != e.Epoch || !e.Payload.Span.SequenceEqual(l.Stream[k].Payload))
                    throw Violation($"after converging, learner {l.Id}'s stream differs from the leader's log at index {i}" +
                        (k < l.Stream.Count ? $" (it holds {l.Stream[k].Index} of epoch {l.Stream[k].Epoch} there)" : " (it ends before)"));
                k++;
            }
            if (k != l.Stream.Count) throw Violation($"after converging, learner {l.Id} holds {l.Stream.Count - k} entries beyond the leader's log");
        }
        // Every relay's retention is the leader's log, whichever relay it came through.
        foreach (var p in _relays)
        {
            var relay = (RelayEngine)_network.Engine(p);
            for (ulong i = Math.Max(1, relay.FirstRetainedIndex); i <= relay.RetainedIndex; i++)
            {
                if (!relay.TryGetRetained(i, out var mine) || !_leaderLog.TryGet(i, out var theirs))
                    throw Violation($"after converging, relay {p} lacks entry {i} inside its retention, or the leader does");
                if (mine.Epoch != theirs.Epoch || !mine.Payload.Span.SequenceEqual(theirs.Payload.Span))
                    throw Violation($"after converging, relay {p}'s entry {i} differs from the leader's");
            }
        }
        foreach (var m in _members)
        {
            var log = _memberLogs[m];
            for (ulong i = 1; i <= last; i++)
            {
                if (!log.TryGet(i, out var mine) || !_leaderLog.TryGet(i, out var theirs))
                    throw Violation($"after converging, member {m} or the leader lacks entry {i}");
                if (mine.Epoch != theirs.Epoch || !mine.Payload.Span.SequenceEqual(theirs.Payload.Span))
                    throw Violation($"after converging, member {m}'s entry {i} differs from the leader's");
            }
        }
    }

    private string Lagging()
    {
        var text = new StringBuilder($"leader last {_leaderLog.LastIndex} durable {_leaderLog.DurableIndex} commit {_leader.CommitIndex}");
        foreach (var m in _members) text.Append($"; {m} {_memberLogs[m].DurableIndex}/{_memberLogs[m].LastIndex}{(_network.IsUp(m) ? "" : " down")}");
        foreach (var l in _learners) text.Append($"; {l.Id} next {l.Next}{(l.Connected ? "" : " disconnected")}");
        foreach (var p in _relays)
            if (_network.IsUp(p)) text.Append($"; {p} retains {((RelayEngine)_network.Engine(p)).RetainedIndex} via {((RelayEngine)_network.Engine(p)).FeedSource ?? "nothing"}");
        foreach (var s in _leader.Status()) text.Append($"; {s.Name} via {s.Route}{(s.Connected ? "" : " (not connected)")}");
        return text.ToString();
    }

    private InvariantViolationException Violation(string what) => new(_seed, _step, what, ReplayCommand(_seed), _faultLog);

    /// <summary>The command that runs <paramref name="seed"/> again, with its trace.</summary>
    public static string ReplayCommand(int seed) =>
        $"GEORELAY_SEED={seed} dotnet test tests/GeoRelay.Tests.Simulation -c Release --filter FullyQualifiedName~FaultSimulationTests";
}
