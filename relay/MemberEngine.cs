using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Relay;

/// <summary>
/// A durable replica as a sans-IO state machine: appends entries in order (ignoring what it holds),
/// makes them durable with one fsync per tick, acks its durable index upstream, and serves learners.
/// </summary>
public sealed class MemberEngine : IEngine, IDisposable
{
    private TopologyConfig _topology;
    private readonly GeoRelay.Engines.ILogObserver? _logObserver;
    private NodeConfig _self;
    private readonly IEntryLog _log;
    private readonly IEngineEnvironment _env;
    private readonly ILogger _logger;
    private readonly LearnerFanout _learners;
    private readonly Dictionary<int, PeerChannel> _upstreams = new();
    private readonly HashSet<string> _allowedUpstreams = new();
    private ulong _topologyHash;
    private readonly int _maxFrame;
    private readonly PooledBufferWriter _scratch = new(1024);
    private ulong _highestEpoch;
    private ulong _commit;
    private ulong _ackedDurable;
    /// <summary>Highest index handed to the learner fan-out.</summary>
    private ulong _delivered;
    private readonly LearnerDelivery _delivery;
    private RetentionPacer _retentionPacer;
    private long _lastFedMicros;
    private long _lastTickMicros;
    private readonly long _housekeepingMicros;
    /// <summary>Highest index an Append of the current epoch has shown to match the leader's log: commit may not pass it.</summary>
    private ulong _matched;
    private readonly GroupSync _sync;
    private bool _draining;
    private bool _finalAckSent;
    private int _learnerRefusals;
    private readonly KeyedStateFetch? _keyedFetch;
    /// <summary>Serves the keyed state to a leader whose own log was installed past it.</summary>
    private readonly KeyedStateServer? _keyedServer;
    /// <summary>The upstream whose Append or install came last: the one asked for the keyed state.</summary>
    private int _feeder = -1;

    /// <param name="logObserver">Hears of every append, truncation and reset (a voter's configuration history).</param>
    public MemberEngine(TopologyConfig topology, string nodeId, IEntryLog log, IEngineEnvironment env,
        LearnerFanoutOptions? learnerOptions = null, ILogger? logger = null, GeoRelay.Engines.ILogObserver? logObserver = null)
    {
        _logObserver = logObserver;
        _topology = topology;
        _self = topology.GetNode(nodeId);
        // The preferred leader follows as a member too while another voter leads; a non-voting member follows as any.
        if (_self.Role == NodeRole.Relay) throw new ArgumentException($"{nodeId} is a {_self.Role}, not a member", nameof(nodeId));
        _log = log;
        _sync = new GroupSync(log.Flush, log.FlushWaitsForDisk);
        _env = env;
        _logger = logger ?? NullLogger.Instance;
        _topologyHash = TopologyFingerprint.Of(topology);
        _maxFrame = (int)Math.Min(int.MaxValue - 1024, topology.Defaults.MaxFrame);
        foreach (var p in topology.GetDatacenter(_self.Datacenter).Relays) _allowedUpstreams.Add(p);
        _highestEpoch = log.LastEpoch;
        _delivery = topology.Defaults.Delivery;
        // Committed delivery waits for a leader to say what is committed: nothing held is known committed after a restart.
        _delivered = _delivery == LearnerDelivery.Durable ? log.DurableIndex : 0;
        _keyedFetch = KeyedStateFetch.For(log, _logger);
        _keyedServer = KeyedStateServer.For(log);
        _learners = new LearnerFanout(log, env, Outbox,
            learnerOptions ?? LearnerFanoutOptions.ForTopology(topology.Defaults), _logger,
            visibleThrough: _delivered);
        LocalHello = Hello.ForThisBuild(nodeId, NodeKind.Member, _highestEpoch, topology.Cluster, _topologyHash);
        if (log.LastIndex > 0) RelayLog.Recovered(_logger, log.FirstIndex, log.LastIndex);
        _lastFedMicros = env.NowMicros;
        _housekeepingMicros = TickCadence.HousekeepingMicros(topology.Defaults.Heartbeat, topology.Defaults.FailoverAfter);
    }

    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; private set; }

    /// <summary>
    /// The cluster's membership changed: who may feed this member and how many learners it takes follow it. Links stay
    /// (what is matched with the leader, and the commit index, would otherwise be known again only with the next entry).
    /// </summary>
    public void Reconfigure(TopologyConfig topology)
    {
        var self = topology.GetNode(_self.Id);
        if (self.Role == NodeRole.Relay) throw new ArgumentException($"{_self.Id} is a relay in the new membership", nameof(topology));
        _topology = topology;
        _self = self;
        _topologyHash = TopologyFingerprint.Of(topology);
        _allowedUpstreams.Clear();
        foreach (var p in topology.GetDatacenter(_self.Datacenter).Relays) _allowedUpstreams.Add(p);
        LocalHello = LocalHello with { TopologyHash = _topologyHash };
    }
    public LearnerFanout Learners => _learners;
    public ulong DurableIndex => _log.DurableIndex;
    public ulong LastIndex => _log.LastIndex;
    public ulong OldestIndex => _log.FirstIndex;
    public ulong CommitIndex => _commit;
    public ulong HighestEpoch => _highestEpoch;
    public int UpstreamCount => _upstreams.Count;

    /// <summary>
    /// This voter's election term moved to <paramref name="epoch"/>: leaders of earlier epochs are fenced from now on,
    /// as Raft's followers refuse Appends of a term below their own.
    /// </summary>
    public void ObserveEpoch(ulong epoch)
    {
        if (!TakeNewerEpoch(epoch)) return;
        foreach (var (connection, channel) in _upstreams)
            if (channel.Peer.Kind == NodeKind.Leader && channel.Peer.Epoch < epoch) Fence(connection, channel.Peer.Epoch);
    }

    /// <summary>
    /// Starts a clean stop: frames from upstream are no longer taken (Appends that arrive from now on are left for
    /// the leader to resend once this member is back), what was appended is made durable, then one last Ack with
    /// that durable index goes to every upstream. The log then ends at an index this member acked.
    /// </summary>
    public void BeginDrain() => _draining = true;

    /// <summary>The drain is done: everything appended is durable and was acked to every upstream.</summary>
    public bool Drained => _finalAckSent;

    public CodecException? CheckPeer(in Hello hello, PortKind port) =>
        (port == PortKind.Learner ? LearnerCapacity.Check(_topology, _self.Id, _learners.LearnerPortConnections, _draining, ref _learnerRefusals) : null) ??
        PeerAdmission.Check(hello, port, _topology, _topologyHash, _self.Id,
            // On protocol 3 a leader or relay our membership does not know yet may be one a later configuration added.
            mayFeed: hello.Kind == NodeKind.Leader ? (_topology.CanLead(hello.NodeId) || ProtocolVersion.CarriesConfiguration(hello)) && hello.NodeId != _self.Id
                : hello.Kind == NodeKind.Relay && (_allowedUpstreams.Contains(hello.NodeId) || ProtocolVersion.CarriesConfiguration(hello)), _highestEpoch);

    public void OnConnected(int connection, PeerInfo peer)
    {
        if (peer.Port == PortKind.Learner)
        {
            _learners.OnConnected(connection, peer);
            return;
        }
        var channel = new PeerChannel(connection, peer, _topology.CompressionLevelBetween(_self.Id, peer.NodeId), _env.NowMicros);
        _upstreams[connection] = channel;
        if (peer.Kind == NodeKind.Leader) TakeNewerEpoch(peer.Epoch);
        SendAck(channel);
    }

    public void OnDisconnected(int connection)
    {
        if (_learners.Owns(connection)) _learners.OnDisconnected(connection);
        else if (_upstreams.Remove(connection, out var channel))
        {
            _keyedFetch?.OnDisconnected(connection);
            channel.Dispose();
        }
    }

    public void OnDialFailed(string nodeId, string reason) { }

    public void OnFrame(int connection, in Frame frame)
    {
        if (_learners.Owns(connection))
        {
            _learners.OnFrame(connection, frame.Type, frame.Payload);
            return;
        }
        if (!_upstreams.TryGetValue(connection, out var channel)) return;
        channel.LastHeardMicros = _lastFedMicros = _env.NowMicros;
        if (_draining && frame.Type != FrameType.Error) return;
        var payload = channel.Payload(frame, _maxFrame);
        switch (frame.Type)
        {
            case FrameType.Append: OnAppend(channel, payload); break;
            // Its upstream's membership (protocol 3). A voter takes its own from its log; this engine needs none of it.
            case FrameType.Configuration: break;
            case FrameType.InstallSnapshot: OnInstallSnapshot(channel, InstallSnapshot.Read(payload)); break;
            case FrameType.Subscribe: OnSubscribe(channel, Subscribe.Read(payload)); break;
            case FrameType.SnapshotChunk when _keyedFetch is not null: _keyedFetch.OnChunk(channel, payload, _env.NowMicros, Outbox, _scratch); break;
            case FrameType.SnapshotRequired when _keyedFetch is not null: _keyedFetch.OnRefused(channel, _env.NowMicros); break;
            case FrameType.Heartbeat:
                var hb = Heartbeat.Read(payload, ref channel.RxDelta);
                if (hb.Epoch < _highestEpoch) { Fence(connection, hb.Epoch); return; }
                // A newer leader's commit index says nothing of the suffix an older one left here (voter soak seed 16980).
                TakeNewerEpoch(hb.Epoch);
                AdvanceCommit(hb.Commit);
                break;
            case FrameType.Error: Outbox.Add(EngineCommand.Close(connection, CodecError.None, "peer reported an error")); break;
            default: throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} from {channel.Peer.NodeId}");
        }
    }

    /// <summary>
    /// A later epoch was seen (a Hello, an Append, a heartbeat, the election): nothing matched so far is known to be that
    /// leader's log (it may be a suffix the new leader lacks), so the commit index waits for an Append of the new epoch.
    /// </summary>
    private bool TakeNewerEpoch(ulong epoch)
    {
        if (epoch <= _highestEpoch) return false;
        _highestEpoch = epoch;
        LocalHello = LocalHello with { Epoch = epoch };
        _matched = 0;
        return true;
    }

    private void Fence(int connection, ulong epoch) =>
        Outbox.Add(EngineCommand.Close(connection, CodecError.StaleEpoch, $"epoch {epoch} is below {_highestEpoch}"));

    private void OnAppend(PeerChannel channel, ReadOnlySequence<byte> payload)
    {
        var entries = AppendFrame.Read(payload, ref channel.RxDelta, out var epoch, out var commit, out var first, out var count);
        if (epoch < _highestEpoch) { Fence(channel.Connection, epoch); return; }
        TakeNewerEpoch(epoch);
        _feeder = channel.Connection;
        if (count == 0) { AdvanceCommit(commit); return; }
        // An empty member starts at 1 too (or where a snapshot install pinned it): a batch that raced its (re)connect must
        // not start its log mid-stream.
        if (first > Math.Max(_log.NextIndex, 1))
        {
            RelayLog.GapIgnored(_logger, first, first + count - 1, _log.LastIndex);
            return;
        }
        while (entries.TryNext(out var e))
        {
            if (e.Index < _log.NextIndex && _log.LastIndex == 0) continue; // below where an install started this log
            if (e.Index <= _log.LastIndex)
            {
                if (e.Index < _log.FirstIndex || !_log.TryGet(e.Index, out var held) || held.Epoch == e.Epoch) continue;
                // Same index, other epoch: a new leader rewrote an uncommitted suffix (never a committed one).
                if (e.Index <= _commit)
                    throw new CodecException(CodecError.Corrupt, $"entry {e.Index} of epoch {e.Epoch} conflicts with committed entry of epoch {held.Epoch}");
                RelayLog.Truncated(_logger, e.Index - 1, e.Epoch);
                _log.TruncateAfter(e.Index - 1);
                _logObserver?.AfterTruncate(e.Index - 1);
                _delivered = Math.Min(_delivered, e.Index - 1);
                _learners.OnTruncated(e.Index - 1); // learners sent what was dropped (durable delivery) are told
                _ackedDurable = Math.Min(_ackedDurable, e.Index - 1);
            }
            var entry = e.ToLogEntry();
            _logObserver?.BeforeAppend(entry);
            _log.Append(entry);
        }
        // As in Raft: entries this Append carried (or confirmed) match the leader's log, and so does all before them.
        if (epoch == _highestEpoch) _matched = Math.Max(_matched, Math.Min(first + count - 1, _log.LastIndex));
        AdvanceCommit(commit);
    }

    /// <summary>
    /// The leader's log starts at <see cref="InstallSnapshot.Index"/>, and this member was sent from below it. Holding that
    /// very entry means our log matches the leader's up to there (log matching), and Appends go on as usual. So does a
    /// log that starts past it (its start is committed, so it is the leader's entry there; the Appends that follow check
    /// the rest entry by entry), which a restarted member whose commit index the leader could not trust still has.
    /// Otherwise the whole log goes, and the leader's is taken from that index: all we drop is either committed (so a
    /// majority that excludes us holds it up to the install's index) or a deposed leader's suffix.
    /// </summary>
    private void OnInstallSnapshot(PeerChannel channel, InstallSnapshot install)
    {
        if (install.Epoch < _highestEpoch) { Fence(channel.Connection, install.Epoch); return; }
        TakeNewerEpoch(install.Epoch);
        _feeder = channel.Connection;
        bool startsPast = _log.LastIndex > 0 && _log.FirstIndex > install.Index;
        if (LogStart.MustReset(_log, install, out bool holds))
        {
            RelayLog.SnapshotInstalled(_logger, install.Index, install.IndexEpoch, _log.FirstIndex, _log.LastIndex);
            _log.ResetTo(install.Index);
            _logObserver?.AfterReset(install.Index);
            if (_delivered >= install.Index) _learners.OnTruncated(install.Index - 1); // durable delivery had sent a suffix now gone
            _delivered = install.Index - 1;
            _ackedDurable = Math.Min(_ackedDurable, install.Index - 1);
            _learners.OnReset(install.Index);
            SnapshotsInstalled++;
        }
        if (install.Epoch == _highestEpoch && !startsPast) _matched = Math.Max(_matched, holds ? install.Index : install.Index - 1);
        AdvanceCommit(install.Commit);
    }

    /// <summary>How many times the leader's log start replaced this member's log (<see cref="FrameType.InstallSnapshot"/>).</summary>
    public long SnapshotsInstalled { get; private set; }

    /// <summary>
    /// A relay asks for entries below its own retention, for a learner; or a relay or the leader, installed past its
    /// keyed state, asks for this member's. A relay hears nothing when there is no whole state here (SnapshotRequired
    /// on its member link answers refills) and asks the next node after a while.
    /// </summary>
    private void OnSubscribe(PeerChannel channel, in Subscribe request)
    {
        if (request.Flags == SubscribeFlags.Snapshot)
        {
            _keyedServer?.Serve(channel, request, Outbox, _scratch, refuse: channel.Peer.Kind == NodeKind.Leader);
            return;
        }
        if (channel.Peer.Kind != NodeKind.Relay) throw new CodecException(CodecError.Protocol, $"unexpected Subscribe from {channel.Peer.NodeId}");
        ServeRefill(channel, request);
    }

    /// <summary>A relay asks for entries below its own retention, for a learner: one Deliver frame, or SnapshotRequired.</summary>
    private void ServeRefill(PeerChannel channel, Subscribe request)
    {
        _scratch.Clear();
        if (_learners.TryWriteRange(request.FromIndex, request.KeyPrefix.Span, _scratch, out ulong oldest))
        {
            Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.Deliver, _scratch.WrittenSpan)));
            return;
        }
        _scratch.Clear();
        new SnapshotRequired(oldest).Write(_scratch);
        Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.SnapshotRequired, _scratch.WrittenSpan, compress: false)));
    }
    /// <summary>The commit index moves only over entries known to be the leader's, never over an old leader's suffix.</summary>
    private void AdvanceCommit(ulong leaderCommit) => _commit = Math.Max(_commit, Math.Min(leaderCommit, _matched));

    /// <summary>The highest index learners may have: durable here, and committed unless <c>delivery: durable</c>.</summary>
    private ulong VisibleHead => _delivery == LearnerDelivery.Durable ? _log.DurableIndex : Math.Min(_log.DurableIndex, _commit);

    /// <summary>Now when appended entries wait to be flushed, handed to learners and acked, or learners catch up; else the housekeeping tick.</summary>
    public long NextTickMicros =>
        (!_sync.Running && _log.LastIndex > _log.DurableIndex) || VisibleHead > _delivered || _log.DurableIndex != _ackedDurable || _learners.HasWork
            || (_draining && !_finalAckSent && !_sync.Running)
            ? long.MinValue
            : _lastTickMicros + _housekeepingMicros;

    public void OnTick()
    {
        _lastTickMicros = _env.NowMicros;
        if (_log.LastIndex > _log.DurableIndex) _sync.Start(Outbox);
        ulong durable = _log.DurableIndex;
        ulong visible = VisibleHead;
        if (visible > _delivered)
        {
            _learners.OnAppended(Math.Max(_delivered + 1, _log.FirstIndex), visible);
            _delivered = visible;
        }
        long now = _env.NowMicros;
        // What is not known committed stays: if this member leads one day, its oldest entry must be committed.
        var (dropped, oldest) = _retentionPacer.OnTick(_log, now, keepFrom: _commit, committed: _commit);
        if (dropped > 0) RelayLog.RetentionApplied(_logger, dropped, oldest, _log.FirstIndex);
        long heartbeat = (long)_topology.Defaults.Heartbeat.TotalMicroseconds;
        // Nothing from a fed upstream for a while: learners that have all we hold look elsewhere.
        long failoverAfter = (long)_topology.Defaults.FailoverAfter.TotalMicroseconds;
        if (now - _lastFedMicros > failoverAfter)
            _learners.SendAwayCaughtUp("this member has no feed from the leader; resume elsewhere");
        bool progressed = durable != _ackedDurable;
        if (_draining && !_finalAckSent && !_sync.Running && durable == _log.LastIndex)
        {
            // Draining, and all of the log durable: every upstream hears where it ends.
            foreach (var (_, channel) in _upstreams) SendAck(channel);
            _finalAckSent = true;
        }
        else
        {
            foreach (var (_, channel) in _upstreams)
            {
                // An upstream that sends us nothing (a standby relay) needs our progress only at heartbeat pace:
                // acking it on every flush woke it thousands of times a second for nothing.
                bool feedsUs = now - channel.LastHeardMicros <= failoverAfter;
                if ((progressed && feedsUs) || now - channel.LastSentMicros >= heartbeat) SendAck(channel);
            }
        }
        _ackedDurable = durable;
        // Installed past its keyed state: the feeding upstream sends its own, to merge once folded that far.
        if (_keyedFetch?.NeedsAsking() == true)
        {
            // The upstream feeding it first (its datacenter's relay, where the state crosses the region once), then the others.
            var upstreams = _upstreams.Values.OrderBy(c => c.Connection == _feeder ? 0 : 1).ThenBy(c => c.Connection).ToList();
            _keyedFetch.OnTick(upstreams, now, Outbox, _scratch);
        }
        _learners.OnTick();
    }

    public void OnSynced() => _sync.Finished();

    private void SendAck(PeerChannel channel)
    {
        _scratch.Clear();
        ulong durable = _log.DurableIndex;
        ulong durableEpoch = durable == 0 ? 0 : durable == _log.LastIndex ? _log.LastEpoch : _log.TryGet(durable, out var e) ? e.Epoch : 0;
        new Ack(_highestEpoch, durable, _log.LastIndex, durableEpoch, Math.Min(_commit, durable)).Write(_scratch);
        Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.Ack, _scratch.WrittenSpan, compress: false)));
        channel.LastSentMicros = _env.NowMicros;
    }

    public void Dispose()
    {
        _learners.Dispose();
        foreach (var (_, c) in _upstreams) c.Dispose();
        _scratch.Dispose();
    }
}
