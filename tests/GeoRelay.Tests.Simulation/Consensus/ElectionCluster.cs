using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines.Consensus;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Storage;
using System.Buffers;

namespace GeoRelay.Tests.Simulation.Consensus;

/// <summary>One voter of the simulation: its election (null while crashed), its durable store, and its log.</summary>
internal sealed class SimVoter(string id, IElectionStore store)
{
    public string Id { get; } = id;
    public override string ToString() => Id;
    public IElectionStore Store { get; } = store;
    public Election? Election;
    /// <summary>The term of each entry; index i + 1 holds Log[i]. Durable: it survives crashes (members ack only durable entries).</summary>
    public List<ulong> Log { get; } = [];
    public LogPosition LastLog => Log.Count == 0 ? default : new LogPosition(Log[^1], (ulong)Log.Count);
    public int Incarnation;
    public long PendingTick = long.MaxValue;

    // Leader state of the data path, for LeaderTerm.
    public ulong LeaderTerm;
    public ulong CommitIndex;
    public readonly Dictionary<string, ulong> Next = [];
    public readonly Dictionary<string, ulong> Match = [];
}

internal sealed record ElectionSimOptions
{
    public int Voters { get; init; } = 3;
    public int Seed { get; init; }
    public ElectionOptions Election { get; init; } = ElectionOptions.Default;
    public double Drop { get; init; }
    public double Duplicate { get; init; }
    public long MinLatencyMicros { get; init; } = 1_000;
    public long MaxLatencyMicros { get; init; } = 30_000;
    /// <summary>Chance that a leader appends an entry at each heartbeat.</summary>
    public double AppendRate { get; init; } = 0.5;
    /// <summary>Chance that a term/vote save fails (the node stops, as on a real disk failure).</summary>
    public double SaveFailureRate { get; init; }
    public Func<IElectionStore>? NewStore { get; init; }
    public ElectionChecks Checks { get; init; } = ElectionChecks.All;
}

/// <summary>
/// N voters, a simulated clock and network, and a minimal Raft data path (heartbeat/append with the log
/// consistency check, acks, commit on a majority of the leader's own term), all driven from one seeded Random so a
/// seed replays exactly. Election messages cross the network as encoded frames. Invariants are checked after every
/// step.
/// </summary>
internal sealed class ElectionCluster
{
    private const int MaxBatch = 64;

    private abstract record Packet(string From, string To);
    private sealed record ElectionPacket(string From, string To, FrameType Type, byte[] Payload) : Packet(From, To);
    private sealed record AppendPacket(string From, string To, ulong Term, ulong PrevIndex, ulong PrevTerm, ulong[] Entries) : Packet(From, To);
    private sealed record AppendReply(string From, string To, ulong Term, bool Success, ulong Index) : Packet(From, To);

    private readonly PriorityQueue<Action, (long At, long Seq)> _queue = new();
    private long _seq;
    private readonly HashSet<(string From, string To)> _blocked = [];
    private readonly string[] _ids;

    public ElectionCluster(ElectionSimOptions options)
    {
        Options = options;
        Random = new Random(options.Seed);
        Drop = options.Drop;
        Duplicate = options.Duplicate;
        _ids = Enumerable.Range(1, options.Voters).Select(i => $"n{i}").ToArray();
        foreach (var id in _ids)
            Voters[id] = new SimVoter(id, options.NewStore?.Invoke() ?? new CrashConsistentStore(Random, options.SaveFailureRate));
        Quorum = options.Voters / 2 + 1;
        Invariants = new ElectionInvariants(options.Checks, Quorum, options.Election.Candidates);
        TimeoutMicros = (long)options.Election.ElectionTimeout.TotalMicroseconds;
        HeartbeatMicros = (long)options.Election.Heartbeat.TotalMicroseconds;
    }

    public ElectionSimOptions Options { get; }
    public Random Random { get; }
    public long Now { get; private set; }
    public long Steps { get; private set; }
    public double Drop;
    public double Duplicate;
    public int Quorum { get; }
    public long TimeoutMicros { get; }
    public long HeartbeatMicros { get; }
    public Dictionary<string, SimVoter> Voters { get; } = [];
    public IReadOnlyList<string> Ids => _ids;
    public ElectionTrace Trace { get; } = new();
    public ElectionInvariants Invariants { get; }
    /// <summary>Every event of every voter, in order (for scenario assertions).</summary>
    public List<(long At, ElectionEvent Event)> Events { get; } = [];

    public void StartAll()
    {
        foreach (var id in _ids) Start(Voters[id]);
    }

    public void At(long at, Action action) => _queue.Enqueue(action, (Math.Max(at, Now), _seq++));

    /// <summary>Runs events up to <paramref name="until"/>; the clock ends there.</summary>
    public void RunUntil(long until) => RunUntil(until, static () => false);

    /// <summary>Runs events until <paramref name="done"/> holds after a step (true) or the clock passes <paramref name="until"/> (false).</summary>
    public bool RunUntil(long until, Func<bool> done)
    {
        if (done()) return true;
        while (_queue.TryPeek(out _, out var key) && key.At <= until)
        {
            var action = _queue.Dequeue();
            Now = key.At;
            action();
            Steps++;
            Invariants.AfterStep(Voters.Values);
            if (done()) return true;
        }
        Now = Math.Max(Now, until);
        return false;
    }

    // ---- faults ----

    public void Crash(SimVoter voter, string why = "crash")
    {
        if (voter.Election is null) return;
        voter.Election = null;
        voter.Incarnation++;
        voter.PendingTick = long.MaxValue;
        voter.LeaderTerm = 0;
        Trace.Add(Now, $"FAULT {voter.Id} {why}");
    }

    public void Restart(SimVoter voter)
    {
        if (voter.Election is not null) return;
        Trace.Add(Now, $"FAULT {voter.Id} restarts");
        Start(voter);
    }

    public void Block(string from, string to) => _blocked.Add((from, to));

    public void Isolate(string id, bool inbound = true, bool outbound = true)
    {
        foreach (var other in _ids)
        {
            if (other == id) continue;
            if (inbound) _blocked.Add((other, id));
            if (outbound) _blocked.Add((id, other));
        }
        Trace.Add(Now, $"FAULT isolate {id}{(inbound ? " inbound" : "")}{(outbound ? " outbound" : "")}");
    }

    public void Partition(IReadOnlyCollection<string> side)
    {
        foreach (var a in side)
        foreach (var b in _ids)
        {
            if (side.Contains(b)) continue;
            _blocked.Add((a, b));
            _blocked.Add((b, a));
        }
        Trace.Add(Now, $"FAULT partition {string.Join(",", side)} | rest");
    }

    public void HealLinks()
    {
        _blocked.Clear();
        Trace.Add(Now, "FAULT links healed");
    }

    // ---- queries ----

    public SimVoter? Leader()
    {
        SimVoter? best = null;
        foreach (var v in Voters.Values)
            if (v.Election is { Role: RaftRole.Leader } e && (best is null || e.Term > best.Election!.Term)) best = v;
        return best;
    }

    /// <summary>Every voter is up, and all follow one leader in one term.</summary>
    public bool Converged()
    {
        var leader = Leader();
        if (leader is null) return false;
        foreach (var v in Voters.Values)
            if (v.Election is not { } e || e.Term != leader.Election!.Term || e.Leader != leader.Id) return false;
        return true;
    }

    public ulong HighestTerm() => Voters.Values.Max(v => v.Election?.Term ?? 0);

    /// <summary>Calls the (running) voter's election from outside, as an operator or the integration would, and drives the result.</summary>
    public bool Do(SimVoter voter, Action<Election> call) => voter.Election is { } e && Call(voter, () => call(e));

    // ---- the election driver ----

    private void Start(SimVoter voter)
    {
        voter.Incarnation++;
        voter.PendingTick = long.MaxValue;
        // Each incarnation draws its own timeouts, from the run's seed.
        var random = new Random(Random.Next());
        if (!Call(voter, () => voter.Election = new Election(voter.Id, _ids, voter.Store, Options.Election, () => voter.LastLog, random, Now)))
            return;
        int incarnation = voter.Incarnation;
        At(Now + HeartbeatMicros, () => DataTick(voter, incarnation));
    }

    /// <summary>Runs a call on the voter's election and drives what it left; a disk failure stops the voter.</summary>
    private bool Call(SimVoter voter, Action call)
    {
        try
        {
            call();
        }
        catch (DiskFailedException e)
        {
            voter.Election?.Events.Clear();
            Crash(voter, $"stops: {e.Message}");
            int incarnation = voter.Incarnation;
            At(Now + TimeoutMicros, () => { if (voter.Incarnation == incarnation) Restart(voter); });
            return false;
        }
        Drive(voter);
        return true;
    }

    private void Drive(SimVoter voter)
    {
        var e = voter.Election!;
        foreach (var ev in e.Events)
        {
            Trace.Add(Now, ev.ToString());
            Events.Add((Now, ev));
            Invariants.OnEvent(voter, ev);
        }
        e.Events.Clear();
        foreach (var m in e.Outbox)
        {
            using var w = new PooledBufferWriter();
            ElectionMessageCodec.WritePayload(w, m);
            Send(new ElectionPacket(m.From, m.To, ElectionMessageCodec.FrameTypeOf(m.Kind), w.WrittenSpan.ToArray()));
        }
        e.Outbox.Clear();
        if (e.Role == RaftRole.Leader && voter.LeaderTerm != e.Term) BecomeDataLeader(voter, e.Term);
        long next = e.NextTickMicros;
        if (next < voter.PendingTick)
        {
            voter.PendingTick = next;
            int incarnation = voter.Incarnation;
            At(next, () =>
            {
                if (voter.Incarnation != incarnation || voter.PendingTick != next || voter.Election is null) return;
                voter.PendingTick = long.MaxValue;
                Call(voter, () => voter.Election.OnTick(Now));
            });
        }
    }

    private void Send(Packet packet)
    {
        if (_blocked.Contains((packet.From, packet.To)) || Random.NextDouble() < Drop) return;
        int copies = Random.NextDouble() < Duplicate ? 2 : 1;
        for (int i = 0; i < copies; i++)
        {
            long delay = Options.MinLatencyMicros + Random.NextInt64(Options.MaxLatencyMicros - Options.MinLatencyMicros + 1);
            At(Now + delay, () => Deliver(packet));
        }
    }

    private void Deliver(Packet packet)
    {
        var voter = Voters[packet.To];
        if (voter.Election is null || _blocked.Contains((packet.From, packet.To))) return;
        switch (packet)
        {
            case ElectionPacket p:
                var message = ElectionMessageCodec.Read(p.Type, new ReadOnlySequence<byte>(p.Payload), p.From, p.To);
                Call(voter, () => voter.Election.OnMessage(message, Now));
                break;
            case AppendPacket a:
                OnAppend(voter, a);
                break;
            case AppendReply r:
                OnAppendReply(voter, r);
                break;
        }
    }

    // ---- a minimal Raft data path ----

    private void BecomeDataLeader(SimVoter leader, ulong term)
    {
        leader.LeaderTerm = term;
        leader.Log.Add(term); // the new leader's no-op: earlier terms commit only through an entry of its own
        leader.CommitIndex = 0; // re-checks every committed entry against this leader's log on its first commit
        foreach (var id in _ids)
        {
            if (id == leader.Id) continue;
            leader.Next[id] = (ulong)leader.Log.Count;
            leader.Match[id] = 0;
        }
        AdvanceCommit(leader);
    }

    private void DataTick(SimVoter voter, int incarnation)
    {
        if (voter.Incarnation != incarnation || voter.Election is null) return;
        At(Now + HeartbeatMicros, () => DataTick(voter, incarnation));
        var e = voter.Election;
        if (e.Role != RaftRole.Leader) return;
        if (voter.LeaderTerm != e.Term) BecomeDataLeader(voter, e.Term);
        // No new writes while handing over, so the target can catch up.
        if (e.TransferTarget is null && Random.NextDouble() < Options.AppendRate) voter.Log.Add(e.Term);
        foreach (var id in _ids)
        {
            if (id == voter.Id) continue;
            ulong next = voter.Next[id];
            ulong prev = next - 1;
            ulong prevTerm = prev == 0 ? 0 : voter.Log[(int)prev - 1];
            int count = (int)Math.Min(MaxBatch, (ulong)voter.Log.Count - prev);
            Send(new AppendPacket(voter.Id, id, e.Term, prev, prevTerm, voter.Log.GetRange((int)prev, count).ToArray()));
        }
        AdvanceCommit(voter);
    }

    private void OnAppend(SimVoter follower, AppendPacket a)
    {
        var e = follower.Election!;
        if (a.Term < e.Term)
        {
            Send(new AppendReply(follower.Id, a.From, e.Term, false, 0)); // fenced: the stale leader learns the newer term
            return;
        }
        if (!Call(follower, () => e.OnLeaderHeard(a.From, a.Term, Now))) return;
        if (e.Term != a.Term || e.Leader != a.From) return;
        var log = follower.Log;
        if (a.PrevIndex > (ulong)log.Count || (a.PrevIndex > 0 && log[(int)a.PrevIndex - 1] != a.PrevTerm))
        {
            Send(new AppendReply(follower.Id, a.From, e.Term, false, Math.Min((ulong)log.Count, a.PrevIndex - 1)));
            return;
        }
        for (int i = 0; i < a.Entries.Length; i++)
        {
            int index = (int)a.PrevIndex + 1 + i;
            if (index <= log.Count && log[index - 1] != a.Entries[i]) log.RemoveRange(index - 1, log.Count - index + 1);
            if (index > log.Count) log.Add(a.Entries[i]);
        }
        Send(new AppendReply(follower.Id, a.From, e.Term, true, a.PrevIndex + (ulong)a.Entries.Length));
    }

    private void OnAppendReply(SimVoter leader, AppendReply r)
    {
        var e = leader.Election!;
        if (r.Term > e.Term)
        {
            Call(leader, () => e.ObserveTerm(r.Term, Now));
            return;
        }
        if (r.Term != e.Term || e.Role != RaftRole.Leader || leader.LeaderTerm != e.Term) return;
        Call(leader, () => e.OnVoterActive(r.From, Now));
        if (r.Success)
        {
            if (r.Index > leader.Match[r.From]) leader.Match[r.From] = r.Index;
            leader.Next[r.From] = Math.Max(leader.Next[r.From], r.Index + 1);
            AdvanceCommit(leader);
            if (e.TransferTarget == r.From && leader.Match[r.From] == (ulong)leader.Log.Count)
                Call(leader, () => e.SendTimeoutNow(r.From, Now));
        }
        else
        {
            leader.Next[r.From] = Math.Max(1, Math.Min(leader.Next[r.From] - 1, r.Index + 1));
        }
    }

    private void AdvanceCommit(SimVoter leader)
    {
        ulong term = leader.LeaderTerm;
        for (ulong n = (ulong)leader.Log.Count; n > leader.CommitIndex; n--)
        {
            if (leader.Log[(int)n - 1] != term) break; // only entries of its own term commit by counting copies
            int copies = 1;
            foreach (var match in leader.Match.Values)
                if (match >= n) copies++;
            if (copies < Quorum) continue;
            for (ulong i = leader.CommitIndex + 1; i <= n; i++) Invariants.OnCommitted(i, leader.Log[(int)i - 1]);
            leader.CommitIndex = n;
            break;
        }
    }
}
