using GeoRelay.Engines;

namespace GeoRelay.Bench.DcTree;

/// <summary>
/// A deterministic discrete-event model of one run: the leader, every relay of every datacenter, and the learners
/// as cohorts (learners of one relay with the same endpoint list get the same frames, so one object stands for all
/// of them and its deliveries count once per learner). No sockets and no sleeps: time is the event queue's, and the
/// only randomness (back-off jitter) comes from the seed. Relays and learners check that they receive every index
/// exactly once, in order.
/// </summary>
internal sealed partial class TreeSimulation : IDisposable
{
    private enum Kind : byte
    {
        Publish, LeaderFlush, BatchArrives, FeedArrives, Kill,
        LeaderLost, LeaderDialReaches, LeaderDialFailed, RelayTakesLeader, LeaderDcAck,
        FeedLost, RelayRound, RelayDialReaches, RelayDialFailed, RelayAttach, UnfedCheck,
        LearnerLost, LearnerRound, LearnerDialReaches, LearnerDialFailed, LearnerAttach,
    }

    /// <summary>
    /// Node is a datacenter, relay or cohort id (by kind), Target a relay id, Token the connection or search the event
    /// belongs to (a stale one is dropped), First..Last an entry range, Start when a dial began.
    /// </summary>
    private readonly record struct Event(Kind Kind, int Node, int Target = 0, int Token = 0, ulong First = 0, ulong Last = 0, long Start = 0);

    private const int ToLearners = 0, ToRelays = 1, ToMembers = 2;

    /// <summary>The datacenter whose active relay is killed.</summary>
    private const int KilledDc = 0;

    /// <summary>How long after publishing ends the model may run for stragglers before it gives up on them.</summary>
    private const long DrainLimit = 60_000_000;

    private readonly DcTreeOptions _o;
    private readonly TreeShape _shape;
    private readonly KillMode _kill;
    private readonly TreeWire _wire;
    private readonly Random _random;
    private readonly PriorityQueue<Event, (long, long)> _queue = new();
    private readonly RelayNode[] _relays;
    private readonly List<LearnerCohort> _cohorts = new();
    private readonly LeaderLink[] _links;
    private readonly long _entries;
    private long _now, _seq, _events;
    private ulong _published;

    public TreeSimulation(DcTreeOptions options, TreeShape shape, KillMode kill, TreeWire wire)
    {
        _o = options;
        _shape = shape;
        _kill = kill;
        _wire = wire;
        _random = new Random(options.Seed);
        _entries = options.Entries;
        int relaysPerDc = shape.Relays;
        _relays = new RelayNode[options.Datacenters * relaysPerDc];
        _links = new LeaderLink[options.Datacenters];
        for (int dc = 0; dc < options.Datacenters; dc++)
        {
            for (int p = 0; p < relaysPerDc; p++)
            {
                int id = dc * relaysPerDc + p;
                _relays[id] = new RelayNode
                {
                    Id = id, Dc = dc, Index = p, Tier1 = shape.Tier1[p],
                    Parents = shape.Parents(p).Select(q => dc * relaysPerDc + q).ToArray(),
                    Hops = new byte[_entries],
                };
            }
            Connect(dc);
        }
    }

    /// <summary>The steady tree at time 0: the leader feeds p1; standbys and tier 2 are attached; every learner is on its relay.</summary>
    private void Connect(int dc)
    {
        int relaysPerDc = _shape.Relays;
        var active = _relays[dc * relaysPerDc];
        TakeLeaderFeed(active);
        _links[dc] = new LeaderLink
        {
            Relay = active, Channel = NewLeaderChannel(active), Token = active.FeedToken, Connected = true,
        };
        for (int p = 1; p < relaysPerDc; p++)
        {
            var r = _relays[dc * relaysPerDc + p];
            var parent = r.Tier1 ? active : _relays[r.Parents[0]];
            AttachFeed(r, parent);
        }

        // Learners list every relay of their DC, their own first; the second choices are spread evenly, so a dead
        // relay's learners scatter over the others rather than all landing on one.
        for (int p = 0; p < relaysPerDc; p++)
        {
            int learners = Share(_o.LearnersPerDc, relaysPerDc, p);
            for (int s = 0; s < relaysPerDc - 1; s++)
            {
                int size = Share(learners, relaysPerDc - 1, s);
                if (size == 0) continue;
                int second = (p + 1 + s) % relaysPerDc;
                var endpoints = new int[relaysPerDc];
                endpoints[0] = dc * relaysPerDc + p;
                for (int k = 1, q = second; k < relaysPerDc; q = (q + 1) % relaysPerDc)
                    if (q != p) endpoints[k++] = dc * relaysPerDc + q;
                var cohort = new LearnerCohort { Id = _cohorts.Count, Dc = dc, Size = size, Home = endpoints[0], Endpoints = endpoints };
                _cohorts.Add(cohort);
                AttachLearners(cohort, _relays[endpoints[0]]);
            }
        }
    }

    private static int Share(int total, int parts, int part) => total / parts + (part < total % parts ? 1 : 0);

    public TreeRunResult Run()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Schedule(_o.PublishedAt(1), new Event(Kind.Publish, 0));
        Schedule(_o.KillAt, new Event(Kind.Kill, KilledDc));
        long stopAt = _o.PublishEnd + DrainLimit;
        while (_queue.TryDequeue(out var e, out var at))
        {
            if (at.Item1 > stopAt) break;
            _now = at.Item1;
            _events++;
            Dispatch(e);
        }
        return Result(clock.Elapsed);
    }

    private void Schedule(long at, Event e) => _queue.Enqueue(e, (at, _seq++));

    private void Dispatch(in Event e)
    {
        switch (e.Kind)
        {
            case Kind.Publish: OnPublish(); break;
            case Kind.LeaderFlush: OnLeaderFlush(e.Node); break;
            case Kind.BatchArrives: OnBatchArrives(e); break;
            case Kind.FeedArrives: OnFeedArrives(e); break;
            case Kind.Kill: OnKill(e.Node); break;
            case Kind.LeaderLost: OnLeaderLost(e); break;
            case Kind.LeaderDialReaches: OnLeaderDialReaches(e); break;
            case Kind.LeaderDialFailed: OnLeaderDialFailed(e); break;
            case Kind.RelayTakesLeader: OnRelayTakesLeader(e); break;
            case Kind.LeaderDcAck: OnLeaderDcAck(e); break;
            case Kind.FeedLost: OnFeedLost(e); break;
            case Kind.RelayRound: OnRelayRound(e); break;
            case Kind.RelayDialReaches: OnRelayDialReaches(e); break;
            case Kind.RelayDialFailed: OnRelayDialFailed(e); break;
            case Kind.RelayAttach: OnRelayAttach(e); break;
            case Kind.UnfedCheck: OnUnfedCheck(e); break;
            case Kind.LearnerLost: OnLearnerLost(e); break;
            case Kind.LearnerRound: OnLearnerRound(e); break;
            case Kind.LearnerDialReaches: OnLearnerDialReaches(e); break;
            case Kind.LearnerDialFailed: OnLearnerDialFailed(e); break;
            case Kind.LearnerAttach: OnLearnerAttach(e); break;
        }
    }

    /// <summary>
    /// The kill: the active relay of the first datacenter dies (its peers see the close one one-way delay later) or
    /// hangs (connections stay open and silent: peers that watch for silence notice failover-after later).
    /// </summary>
    private void OnKill(int dc)
    {
        var link = _links[dc];
        var r = link.Relay!;
        _killed = r;
        foreach (var relay in _relays)
            if (relay.Dc == dc) relay.ParentAtKill = relay.Parent;
        if (_kill == KillMode.Dies)
        {
            r.Dead = true;
            r.Parent?.Receivers.Remove(r);
            Schedule(_now + _o.WanOneWay, new Event(Kind.LeaderLost, dc, Token: link.Token));
            foreach (var d in r.Receivers)
            {
                if (d is RelayNode child) Schedule(_now + _o.DcOneWay, new Event(Kind.FeedLost, child.Id, Token: child.FeedToken));
                else if (d is LearnerCohort c) Schedule(_now + _o.DcOneWay, new Event(Kind.LearnerLost, c.Id, Token: c.Token));
            }
            r.Receivers.Clear();
        }
        else
        {
            r.Hung = true;
            // The leader abandons a relay whose acks stop for failover-after; its last ack left when the last batch arrived.
            Schedule(r.LastLeaderArrival + _o.WanOneWay + _o.FailoverAfter, new Event(Kind.LeaderLost, dc, Token: link.Token));
            foreach (var d in r.Receivers)
            {
                if (d is RelayNode child)
                    Schedule(d.LastSentAt + _o.DcOneWay + _o.FailoverAfter, new Event(Kind.FeedLost, child.Id, Token: child.FeedToken));
                // The node heartbeats idle learners, so the SDK knows it hung once it has heard nothing for its silence timeout.
                else if (d is LearnerCohort c)
                {
                    c.HungTarget = r.Id;
                    Schedule(d.LastSentAt + _o.DcOneWay + _o.LearnerSilenceTimeout, new Event(Kind.LearnerLost, c.Id, Token: c.Token));
                }
            }
        }
        r.DisposeMembers();
    }

    private void Account(RelayNode r, int kind, long bytes)
    {
        if (_now >= _o.SteadyFrom && _now < _o.KillAt) r.Before[kind] += bytes;
        else if (_now >= _o.KillAt && _now < _o.PublishEnd) r.After[kind] += bytes;
    }

    public void Dispose()
    {
        foreach (var link in _links) link.Channel?.Dispose();
        foreach (var r in _relays) r.DisposeMembers();
    }

    /// <summary>Something a relay sends Deliver frames to: a child relay or a learner cohort.</summary>
    private abstract class Downstream
    {
        /// <summary>The sender's cursor on the current connection: the last index sent.</summary>
        public ulong SentThrough;

        public long LastSentAt;
    }

    private enum Feed : byte { None, Leader, Relay }

    private sealed class RelayNode : Downstream
    {
        public required int Id { get; init; }
        public required int Dc { get; init; }
        public required int Index { get; init; }
        public required bool Tier1 { get; init; }

        /// <summary>Relay ids it may feed from, best first.</summary>
        public required int[] Parents { get; init; }

        /// <summary>Hops from the leader at which each entry arrived here (1 = straight from the leader).</summary>
        public required byte[] Hops { get; init; }

        public bool Dead, Hung;
        public Feed Feed;
        public RelayNode? Parent;
        public int FeedToken;
        public ulong Last;
        public long UnfedSince;
        public int UnfedToken;
        public readonly List<Downstream> Receivers = new();
        public PeerChannel[]? Members;
        public int SearchToken;
        public int[] SearchOrder = [];
        public int SearchPos;
        public Backoff Backoff;
        public long LastLeaderArrival;
        public ulong AckedThrough;
        public RelayNode? ParentAtKill;
        public long Violations;
        public readonly long[] Before = new long[3];
        public readonly long[] After = new long[3];

        public string Name => $"dc{Dc + 1:00}/{TreeShape.RelayName(Index)}";

        public void DisposeMembers()
        {
            if (Members is null) return;
            foreach (var m in Members) m.Dispose();
            Members = null;
        }
    }

    private sealed class LearnerCohort : Downstream
    {
        public required int Id { get; init; }
        public required int Dc { get; init; }
        public required int Size { get; init; }
        public required int Home { get; init; }
        public required int[] Endpoints { get; init; }

        public RelayNode? Relay;
        public int Token;
        public ulong Next = 1;
        public long LastArrival = -1;
        public long MaxGap;
        public long MaxGapFrom;
        public long Violations;
        public bool Progressed;
        public int IdleRounds;
        public int Round;
        public int EndpointPos;
        /// <summary>The relay (endpoint target) that went silent on this cohort: skipped in the next first round, as the SDK does.</summary>
        public int HungTarget = -1;
    }

    private sealed class LeaderLink
    {
        public RelayNode? Relay;
        public PeerChannel? Channel;
        public int Token;
        public ulong SentThrough;
        public long LastBatchAt = long.MinValue / 2;
        public bool FlushPending;
        public bool Connected;

        /// <summary>Tier-1 relays (indexes) that failed during the current failover.</summary>
        public readonly HashSet<int> Failed = new();
    }
}
