using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Relay;

/// <summary>
/// A datacenter's relay as a sans-IO state machine: takes one mux batch per tick from the leader,
/// keeps its entries for learners, hands each member its Append, and answers with one DcAck that
/// carries every member's durable index.
/// </summary>
public sealed partial class RelayEngine : IEngine, IDisposable
{
    private sealed class MemberLink(string id, int slot, bool voting)
    {
        public string Id { get; } = id;
        public int Slot { get; } = slot;
        /// <summary>False for a non-voting member: it gets every entry and counts toward no quorum.</summary>
        public bool Voting { get; } = voting;
        public int Connection = -1;
        public PeerChannel? Channel;
        public ulong Durable;
        public ulong DurableEpoch;
        public ulong Commit;
        public MemberLinkState State = MemberLinkState.Down;
        public bool DialPending;
        public Backoff Backoff;
        /// <summary>Refill requests sent on this link, answered in order: (learner connection, from index).</summary>
        public readonly Queue<(int Learner, ulong From)> Refills = new();
    }

    // Replaced together by Reconfigure when the upstream's membership differs from ours.
    private TopologyConfig _topology;
    private NodeConfig _self;
    /// <summary>The file this relay started from: cluster, defaults and security stay; the membership follows the leader.</summary>
    private readonly TopologyConfig _file;
    /// <summary>The membership this relay acts on, as it passes it to its members on protocol 3.</summary>
    private ConfigurationFrame _configuration;
    private readonly IEntryLog _retention;
    private readonly KeyedStateFetch? _keyedFetch;
    private readonly KeyedStateServer? _keyedServer;
    private readonly IEngineEnvironment _env;
    private readonly ILogger _logger;
    private readonly LearnerFanout _learners;
    private MemberLink[] _members = [];
    private readonly Dictionary<int, MemberLink> _memberByConnection = new();
    private readonly Dictionary<string, MemberLink> _memberById = new();
    private ulong _topologyHash;
    private readonly int _maxFrame;
    private readonly Random _random;
    private readonly List<int> _slots = new();
    private readonly List<ulong> _skips = new();
    private readonly PooledBufferWriter _scratch = new(64 * 1024);
    private MemberProgress[] _progress = [];
    private PeerChannel? _upstream;
    private ulong _highestEpoch;
    private ulong _commit;
    /// <summary>
    /// Highest index up to which retention is known to be the current upstream leader's log: what it sent on this
    /// connection, and what it trusted from our first DcAck. A deposed leader's suffix can sit above it until rewritten.
    /// </summary>
    private ulong _matched;
    /// <summary>Highest retained index known committed and matched: final on every node, whoever leads later.</summary>
    private ulong _final;
    /// <summary>Highest index handed to the learner fan-out.</summary>
    private ulong _published;
    private readonly LearnerDelivery _delivery;
    private bool _ackDirty;
    private long _lastAckMicros;
    private RetentionPacer _retentionPacer;
    private int _refillCursor;
    /// <summary>When this relay last lost its feed (leader and relay alike), or started.</summary>
    private long _unfedSinceMicros;
    private long _lastTickMicros;
    private readonly long _housekeepingMicros;
    private readonly long _ackSpacingMicros;
    private bool _draining;
    private int _learnerRefusals;

    public RelayEngine(TopologyConfig topology, string nodeId, IEntryLog retention, IEngineEnvironment env,
        LearnerFanoutOptions? learnerOptions = null, ILogger? logger = null, int seed = 1)
    {
        _topology = _file = topology;
        _self = topology.GetNode(nodeId);
        if (_self.Role != NodeRole.Relay) throw new ArgumentException($"{nodeId} is a {_self.Role}, not a relay", nameof(nodeId));
        _configuration = ConfigurationOf(Membership.Of(topology), 0, 0);
        _retention = retention;
        _keyedServer = KeyedStateServer.For(retention);
        _env = env;
        _logger = logger ?? NullLogger.Instance;
        _keyedFetch = KeyedStateFetch.For(retention, _logger);
        _random = new Random(seed);
        _topologyHash = TopologyFingerprint.Of(topology);
        _maxFrame = (int)Math.Min(int.MaxValue - 1024, topology.Defaults.MaxFrame);
        SetMembers(topology);
        _delivery = topology.Defaults.Delivery;
        // Committed delivery waits for the leader to say what is committed: nothing retained is known committed after a restart.
        _published = _delivery == LearnerDelivery.Durable ? retention.LastIndex : 0;
        _learners = new LearnerFanout(retention, env, Outbox,
            learnerOptions ?? LearnerFanoutOptions.ForTopology(topology.Defaults), _logger,
            visibleThrough: _published)
        {
            Refill = RequestRefill,
        };
        LocalHello = Hello.ForThisBuild(nodeId, NodeKind.Relay, 0, topology.Cluster, _topologyHash);
        _unfedSinceMicros = env.NowMicros;
        _parents = ParentsOf(topology, _self);
        _housekeepingMicros = TickCadence.HousekeepingMicros(topology.Defaults.Heartbeat, topology.Defaults.FailoverAfter);
        _ackSpacingMicros = (long)topology.Defaults.BatchLinger.TotalMicroseconds;
    }

    private void SetMembers(TopologyConfig topology)
    {
        var dc = topology.GetDatacenter(_self.Datacenter);
        _members = new MemberLink[dc.Members.Count];
        _progress = new MemberProgress[_members.Length]; // reused by every DcAck
        _memberById.Clear();
        _memberByConnection.Clear();
        for (int i = 0; i < _members.Length; i++)
        {
            _members[i] = new MemberLink(dc.Members[i], i, topology.IsVoter(dc.Members[i]));
            _memberById[dc.Members[i]] = _members[i];
        }
    }

    private static ConfigurationFrame ConfigurationOf(Membership membership, ulong index, ulong epoch) =>
        new(index, epoch, membership.Hash, membership.Encode());

    /// <summary>The membership this relay acts on: its file's, until an upstream sent another.</summary>
    public TopologyConfig Topology => _topology;

    /// <summary>The topology fingerprint each leader's last Hello carried.</summary>
    private readonly Dictionary<string, ulong> _leaderTopologyHash = new(StringComparer.Ordinal);

    /// <summary>The upstream speaks protocol 3 and has not yet sent its membership: no DcAck goes to it before.</summary>
    private bool _awaitingConfiguration;

    /// <summary>The upstream may lead in the membership this relay acts on (else it must first send one in which it may).</summary>
    private bool _upstreamVouched;

    /// <summary>The membership no longer lists this relay: it feeds nobody and sends its learners elsewhere.</summary>
    public bool Removed { get; private set; }

    /// <summary>
    /// The upstream (leader, on protocol 3) sent its membership before any batch. The slots its batches and our DcAcks
    /// name are positions in that membership, so a different one is adopted before anything else is read: member links
    /// close (they are dialed again, and told it in turn), learners stay.
    /// </summary>
    private void OnConfiguration(PeerChannel from, ConfigurationFrame frame)
    {
        if (frame.Hash != _configuration.Hash) Reconfigure(from, frame);
        else _upstreamVouched |= _topology.CanLead(from.Peer.NodeId);
        if (_awaitingConfiguration && _upstream == from && !Removed)
        {
            _awaitingConfiguration = false;
            SendDcAck(_env.NowMicros); // the greeting, now in the leader's numbering
        }
        else if (_upstream == from) _awaitingConfiguration = false;
    }

    private void Reconfigure(PeerChannel from, ConfigurationFrame frame)
    {
        Membership membership;
        TopologyConfig topology;
        try
        {
            membership = Membership.Decode(frame.Membership.Span);
            topology = membership.ApplyTo(_file);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw new CodecException(CodecError.Protocol, $"{from.Peer.NodeId} sent a membership this relay cannot use: {e.Message}");
        }
        _configuration = frame with { Membership = frame.Membership.ToArray() };
        if (!topology.Nodes.TryGetValue(_self.Id, out var self) || self.Role != NodeRole.Relay)
        {
            Removed = true;
            RelayLog.Removed(_logger, _self.Id, frame.Index);
            BeginDrain();
            _learners.CloseAll($"{_self.Id} was removed from the cluster; resume at another relay or member");
            Outbox.Add(EngineCommand.Close(from.Connection, CodecError.Shutdown, $"{_self.Id} is not in the membership of entry {frame.Index}"));
            return;
        }
        if (!topology.CanLead(from.Peer.NodeId))
            throw new CodecException(CodecError.UnknownNode, $"{from.Peer.NodeId} sent a membership in which it may not lead");
        _upstreamVouched = true;
        RelayLog.Reconfigured(_logger, _self.Id, frame.Index, from.Peer.NodeId);
        foreach (var m in _members)
        {
            if (m.Connection >= 0) Outbox.Add(EngineCommand.Close(m.Connection, CodecError.None, "the cluster's membership changed"));
            m.Channel?.Dispose();
            while (m.Refills.TryDequeue(out var refill)) _learners.OnRefillFailed(refill.Learner);
        }
        _topology = topology;
        _self = self;
        _topologyHash = TopologyFingerprint.Of(topology);
        LocalHello = LocalHello with { TopologyHash = _topologyHash };
        SetMembers(topology);
        _parents = ParentsOf(topology, _self);
        _voterProgress.Clear();
        _ackDirty = true;
    }

    /// <summary>On protocol 3, a member link starts with the membership this relay acts on.</summary>
    private void SendConfiguration(PeerChannel channel)
    {
        if (channel.Peer.Version < 3) return;
        _scratch.Clear();
        _configuration.Write(_scratch);
        Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.Configuration, _scratch.WrittenSpan, compress: false)));
    }

    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; private set; }
    public LearnerFanout Learners => _learners;
    public string NodeId => _self.Id;
    public ulong HighestEpoch => _highestEpoch;
    public ulong RetainedIndex => _retention.LastIndex;
    public ulong CommitIndex => _commit;
    public ulong FirstRetainedIndex => _retention.FirstIndex;

    /// <summary>The retained entry at <paramref name="index"/>, for status and checks.</summary>
    public bool TryGetRetained(ulong index, out LogEntry entry) => _retention.TryGet(index, out entry);
    public bool UpstreamConnected => _upstream is not null;

    /// <summary>Where this relay's entries come from now, for status: <c>leader ID</c>, <c>relay ID</c>, or null when unfed.</summary>
    public string? FeedSource => _upstream is not null && (_leaderFeeding || _feed is null) ? "leader " + _upstream.Peer.NodeId
        : _feed is not null ? "relay " + _feed.Peer.NodeId : null;

    /// <summary>
    /// Starts a clean stop: no more batches are taken from upstream (the leader resends them through the next relay
    /// once this one has gone), so what this relay holds stops moving and its members can ack all of it.
    /// </summary>
    public void BeginDrain() => _draining = true;

    /// <summary>Sends the leader a DcAck with every member's progress now (the drain's last word).</summary>
    public void SendFinalAck() => SendDcAck(_env.NowMicros);

    /// <summary>Batches taken from the leader since start.</summary>
    public long BatchesReceived { get; private set; }

    public IReadOnlyList<(string Member, bool Up, ulong Durable)> MemberStatus()
    {
        var list = new List<(string, bool, ulong)>(_members.Length);
        foreach (var m in _members) list.Add((m.Id, m.State != MemberLinkState.Down, m.Durable));
        return list;
    }

    public CodecException? CheckPeer(in Hello hello, PortKind port)
    {
        // A relay the leader does not feed (it routes elsewhere, or cannot reach us) would leave a new
        // learner waiting for entries that never come: the learner tries its next endpoint instead.
        if (port == PortKind.Learner && Unfed(_env.NowMicros))
            return new CodecException(CodecError.Shutdown, $"{_self.Id} has had no feed for {(_env.NowMicros - _unfedSinceMicros) / 1000} ms; try another relay or member");
        if (port == PortKind.Learner && LearnerCapacity.Check(_topology, _self.Id, _learners.LearnerPortConnections, _draining, ref _learnerRefusals) is { } refused) return refused;
        if (port == PortKind.Peer && hello.Kind == NodeKind.Relay)
            return PeerAdmission.Check(hello, port, _topology, _topologyHash, _self.Id, mayFeed: true, _highestEpoch) ?? CheckFeedChild(hello);
        // A leader our membership does not list may lead one a later configuration made: on protocol 3 its membership
        // comes first and must list it (OnConfiguration), before any batch is taken.
        if (hello.Kind == NodeKind.Leader) _leaderTopologyHash[hello.NodeId] = hello.TopologyHash;
        return PeerAdmission.Check(hello, port, _topology, _topologyHash, _self.Id,
            mayFeed: hello.Kind == NodeKind.Leader && (_topology.CanLead(hello.NodeId) || ProtocolVersion.CarriesConfiguration(hello)), _highestEpoch);
    }

    private bool Unfed(long now) => !Fed && now - _unfedSinceMicros > (long)_topology.Defaults.FailoverAfter.TotalMicroseconds;

    public void OnConnected(int connection, PeerInfo peer)
    {
        long now = _env.NowMicros;
        if (peer.Port == PortKind.Learner)
        {
            _learners.OnConnected(connection, peer);
            return;
        }
        if (peer.Port == PortKind.Peer && peer.Kind == NodeKind.Relay)
        {
            OnFeedChildConnected(connection, peer, now);
            return;
        }
        if (peer.Port == PortKind.Outbound && peer.NodeId == _feedDialing)
        {
            OnFeedConnected(connection, peer, now);
            return;
        }
        if (peer.Port == PortKind.Peer)
        {
            // A newer leader connection replaces the old one.
            if (_upstream is not null)
            {
                Outbox.Add(EngineCommand.Close(_upstream.Connection, CodecError.None, "replaced by a newer upstream connection"));
                _upstream.Dispose();
            }
            _highestEpoch = Math.Max(_highestEpoch, peer.Epoch);
            LocalHello = LocalHello with { Epoch = _highestEpoch };
            _upstream = new PeerChannel(connection, peer, _topology.CompressionLevelBetween(_self.Id, peer.NodeId), now);
            _upstreamVouched = _topology.CanLead(peer.NodeId);
            _leaderFeeding = false; // a probe, until its first batch: the feed from another relay goes on meanwhile
            _matched = _final; // the new upstream may hold another log above what is final
            _voterProgress.Clear(); // the old leader's indexes count nothing towards the new one's log
            RelayLog.UpstreamConnected(_logger, peer.NodeId, peer.Epoch);
            foreach (var m in _members)
                if (m.State != MemberLinkState.Down) m.State = MemberLinkState.Resync;
            // On protocol 3 the leader's membership comes first: our slots mean nothing to it before we number as it does.
            // With the same fingerprint (the same members in the same order) they already agree.
            _awaitingConfiguration = peer.Version >= 3
                && (!_leaderTopologyHash.TryGetValue(peer.NodeId, out ulong theirs) || theirs != _topologyHash);
            SendDcAck(now);
            return;
        }
        if (_memberById.TryGetValue(peer.NodeId, out var member) && member.Connection < 0)
        {
            member.DialPending = false;
            member.Backoff.Succeed();
            member.Connection = connection;
            member.Channel = new PeerChannel(connection, peer, _topology.CompressionLevelBetween(_self.Id, peer.NodeId), now);
            _memberByConnection[connection] = member;
            SendConfiguration(member.Channel);
            // State stays Down until the member's first Ack says what it holds.
            return;
        }
        Outbox.Add(EngineCommand.Close(connection, CodecError.UnknownNode, $"{peer.NodeId} is not a member of {_self.Datacenter}"));
    }

    public void OnDisconnected(int connection)
    {
        if (_learners.Owns(connection))
        {
            _learners.OnDisconnected(connection);
            if (_children.Remove(connection, out var child)) child.Dispose();
            return;
        }
        if (_upstream?.Connection == connection)
        {
            _keyedFetch?.OnDisconnected(connection);
            _upstream.Dispose();
            _upstream = null;
            _leaderFeeding = false;
            _voterProgress.Clear();
            if (_feed is null) _unfedSinceMicros = _env.NowMicros;
            return;
        }
        if (_feed?.Connection == connection)
        {
            OnFeedLost("connection closed");
            return;
        }
        if (_memberByConnection.Remove(connection, out var member))
        {
            member.Connection = -1;
            member.Channel?.Dispose();
            member.Channel = null;
            if (member.State != MemberLinkState.Down) _ackDirty = true;
            member.State = MemberLinkState.Down;
            while (member.Refills.TryDequeue(out var refill)) _learners.OnRefillFailed(refill.Learner);
            member.Backoff.Fail(_env.NowMicros, 50_000, 2_000_000, _random);
        }
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        if (nodeId == _feedDialing)
        {
            OnFeedDialFailed($"{nodeId}: {reason}");
            return;
        }
        if (_memberById.TryGetValue(nodeId, out var member))
        {
            member.DialPending = false;
            member.Backoff.Fail(_env.NowMicros, 50_000, 2_000_000, _random);
        }
    }

    public void OnFrame(int connection, in Frame frame)
    {
        if (frame.Type == FrameType.Subscribe && _keyedServer is not null && _children.TryGetValue(connection, out var child)
            && !frame.IsCompressed && Subscribe.Read(frame.Payload) is { Flags: SubscribeFlags.Snapshot } request)
        {
            // A relay fed here asks for the keyed state (its retention was reset past its own); the feed goes on meanwhile.
            // Silent when there is none: SnapshotRequired on a feed says the feed fell behind. Uncompressed: the fan-out shares the connection.
            _keyedServer.Serve(child, request, Outbox, _scratch, refuse: false, compress: false);
            return;
        }
        if (_learners.Owns(connection))
        {
            _learners.OnFrame(connection, frame.Type, frame.Payload);
            return;
        }
        long now = _env.NowMicros;
        if (_feed?.Connection == connection)
        {
            _feed.LastHeardMicros = now;
            OnFeedFrame(_feed, frame);
            return;
        }
        if (_upstream?.Connection == connection)
        {
            var channel = _upstream;
            channel.LastHeardMicros = now;
            if (_draining && frame.Type != FrameType.Error) return;
            var payload = channel.Payload(frame, _maxFrame);
            switch (frame.Type)
            {
                case FrameType.Batch when !_upstreamVouched:
                    throw new CodecException(CodecError.UnknownNode, $"{channel.Peer.NodeId} is not a leader of this relay's membership and sent none that lists it");
                case FrameType.Batch: OnBatch(channel, payload); break;
                case FrameType.Configuration: OnConfiguration(channel, ConfigurationFrame.Read(payload)); break;
                case FrameType.InstallSnapshot: ForwardInstall(channel, InstallSnapshot.Read(payload)); break;
                case FrameType.SnapshotChunk when _keyedFetch is not null: _keyedFetch.OnChunk(channel, payload, now, Outbox, _scratch); break;
                case FrameType.Subscribe when _keyedServer is not null: _keyedServer.Serve(channel, Subscribe.Read(payload), Outbox, _scratch); break;
                case FrameType.SnapshotRequired when _keyedFetch is not null: _keyedFetch.OnRefused(channel, now); break;
                case FrameType.Heartbeat:
                    var hb = Heartbeat.Read(payload, ref channel.RxDelta);
                    if (hb.Epoch < _highestEpoch) { Fence(connection, hb.Epoch); return; }
                    _commit = Math.Max(_commit, hb.Commit);
                    PublishToLearners();
                    break;
                case FrameType.Error: Outbox.Add(EngineCommand.Close(connection, CodecError.None, "peer reported an error")); break;
                default: throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} from the leader");
            }
            return;
        }
        if (_memberByConnection.TryGetValue(connection, out var member))
        {
            var channel = member.Channel!;
            channel.LastHeardMicros = now;
            var payload = channel.Payload(frame, _maxFrame);
            switch (frame.Type)
            {
                case FrameType.Ack:
                    var ack = Ack.Read(payload);
                    if (member.State == MemberLinkState.Down)
                    {
                        member.State = MemberLinkState.Resync;
                        RelayLog.MemberSynced(_logger, member.Id, ack.DurableIndex);
                    }
                    member.Durable = ack.DurableIndex;
                    member.DurableEpoch = ack.DurableEpoch;
                    member.Commit = ack.Commit;
                    _ackDirty = true;
                    // A member has heard from a newer leader than our upstream: a standby relay learns
                    // the epoch this way, and a deposed leader still feeding us is cut off.
                    RaiseEpoch(ack.Epoch);
                    PublishToLearners(); // its ack may complete a quorum (see CommittedByQuorum)
                    break;
                case FrameType.Heartbeat: break;
                case FrameType.SnapshotChunk when _keyedFetch is not null: _keyedFetch.OnChunk(channel, payload, now, Outbox, _scratch); break;
                case FrameType.Subscribe when _keyedServer is not null: _keyedServer.Serve(channel, Subscribe.Read(payload), Outbox, _scratch); break;
                case FrameType.Deliver:
                    var refilled = TakeRefill(member);
                    _learners.OnRefilled(refilled.Learner, refilled.From, payload);
                    break;
                case FrameType.SnapshotRequired:
                    var refused = TakeRefill(member);
                    _learners.OnRefillRefused(refused.Learner, refused.From, SnapshotRequired.Read(payload).OldestIndex);
                    break;
                case FrameType.Error: Outbox.Add(EngineCommand.Close(connection, CodecError.None, "member reported an error")); break;
                default: throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} from member {member.Id}");
            }
        }
    }

    /// <summary>
    /// Asks a member that holds <paramref name="from"/> durably for a learner's entries below this relay's
    /// retention (members keep the log longer than a relay that came up or was reset later). Members are
    /// asked in turn; the leader is not, so history never competes with the live stream across regions.
    /// </summary>
    private bool RequestRefill(int learner, ulong from, byte[]? prefix)
    {
        for (int k = 0; k < _members.Length; k++)
        {
            var m = _members[(_refillCursor + k) % _members.Length];
            if (m.Channel is null || m.State == MemberLinkState.Down || m.Durable < from) continue;
            _refillCursor = (_refillCursor + k + 1) % _members.Length;
            _scratch.Clear();
            new Subscribe(from, prefix ?? ReadOnlyMemory<byte>.Empty, SubscribeFlags.None).Write(_scratch);
            Outbox.Add(EngineCommand.Send(m.Connection, m.Channel.Frame(FrameType.Subscribe, _scratch.WrittenSpan, compress: false)));
            m.Refills.Enqueue((learner, from));
            return true;
        }
        return false;
    }

    private static (int Learner, ulong From) TakeRefill(MemberLink member) =>
        member.Refills.TryDequeue(out var refill) ? refill
            : throw new CodecException(CodecError.Protocol, $"member {member.Id} answered a refill nobody asked for");

    private void RaiseEpoch(ulong epoch)
    {
        if (epoch <= _highestEpoch) return;
        _highestEpoch = epoch;
        LocalHello = LocalHello with { Epoch = _highestEpoch };
        if (_upstream is not null && _upstream.Peer.Epoch < _highestEpoch) Fence(_upstream.Connection, _upstream.Peer.Epoch);
    }

    private void Fence(int connection, ulong epoch) =>
        Outbox.Add(EngineCommand.Close(connection, CodecError.StaleEpoch, $"epoch {epoch} is below {_highestEpoch}"));

    /// <summary>
    /// The leader's log start, for this relay's retention (target 0) or for a member, which gets it on its link just
    /// before its next Append. A member's is dropped when the member is down: once it is back, the leader learns where
    /// it is and sends the install again.
    /// </summary>
    private void ForwardInstall(PeerChannel upstream, InstallSnapshot install)
    {
        if (install.Epoch < _highestEpoch) { Fence(upstream.Connection, install.Epoch); return; }
        if (install.Target == 0)
        {
            // Retention that neither holds the start nor begins past it may end in a deposed leader's entry just below it.
            if (!LogStart.MustReset(_retention, install, out _)) return;
            RelayLog.RetentionReset(_logger, install.Index);
            _retention.ResetTo(install.Index);
            if (_published >= install.Index) _learners.OnTruncated(install.Index - 1); // durable delivery had sent a suffix now gone
            _published = Math.Min(_published, install.Index - 1);
            _matched = Math.Min(_matched, install.Index - 1);
            _learners.OnReset();
            _ackDirty = true;
            return;
        }
        int slot = install.Target - 1;
        if (slot >= _members.Length)
            throw new CodecException(CodecError.Corrupt, $"InstallSnapshot names member slot {slot}; {_self.Datacenter} has {_members.Length}");
        var member = _members[slot];
        if (member.State == MemberLinkState.Down || member.Channel is null) return;
        if ((member.Channel.Peer.Capabilities & Capabilities.SnapshotInstall) == 0) return;
        _scratch.Clear();
        (install with { Target = 0 }).Write(_scratch);
        Outbox.Add(EngineCommand.Send(member.Connection, member.Channel.Frame(FrameType.InstallSnapshot, _scratch.WrittenSpan, compress: false)));
    }

    private void OnBatch(PeerChannel channel, ReadOnlySequence<byte> payload)
    {
        var mux = BatchFrame.Read(payload, ref channel.RxDelta, _slots, _skips, out var epoch, out var commit, out _, out var tableFirst, out var tableCount, _voterProgress);
        BatchesReceived++;
        if (epoch < _highestEpoch) { _voterProgress.Clear(); Fence(channel.Connection, epoch); return; }
        _highestEpoch = epoch;
        _progressEpoch = epoch;
        _leaderFeeding = true;
        var batch = MuxBatch.Parse(mux.AsContiguous(), _slots.Count + 1);
        if (batch.PacketCount != _slots.Count + 1)
            throw new CodecException(CodecError.Corrupt, $"batch has {batch.PacketCount} packets for {_slots.Count} members + retention");

        // Packet 0: entries for retention and learners.
        var (first, count) = BatchFrame.Range(tableFirst, tableCount, _skips[0]);
        var deliver = BatchFrame.ReadPacket(batch.GetPacket(0), first, count);
        if (count > 0)
        {
            ulong before = _retention.LastIndex;
            // An empty retention may still fix its next index (reset, then restarted before anything new was durable);
            // the leader starts it wherever it trusts it to be, so it starts there.
            if (before == 0) _retention.ResetTo(first);
            else if (first > before + 1)
            {
                RelayLog.RetentionReset(_logger, first);
                _retention.ResetTo(first);
                _learners.OnReset();
                before = first - 1;
            }
            while (deliver.TryNext(out var e)) AppendRetained(e);
            if (_retention.LastIndex != before) _ackDirty = true;
        }
        // The leader sends retention from what it trusts of ours (an empty range still says where that is), so all up
        // to the range's end is its log now.
        ulong through = first + count - 1;
        if (through <= _retention.LastIndex) _matched = Math.Max(_matched, through);
        _commit = Math.Max(_commit, commit);
        PublishToLearners();

        // Packets 1..k: each member's Append (the header rebuilt here, the records as they came), forwarded on its own link.
        for (int i = 0; i < _slots.Count; i++)
        {
            int slot = _slots[i];
            if ((uint)slot >= (uint)_members.Length)
                throw new CodecException(CodecError.Corrupt, $"batch names member slot {slot}; {_self.Datacenter} has {_members.Length}");
            var member = _members[slot];
            if (member.State == MemberLinkState.Down || member.Channel is null) continue;
            int length = batch.GetPacketLength(i + 1);
            var (from, n) = BatchFrame.Range(tableFirst, tableCount, _skips[i + 1]);
            _scratch.Clear();
            AppendFrame.WriteFullHeader(_scratch, epoch, commit, from, n);
            batch.CopyPacketTo(i + 1, _scratch.GetSpan(length));
            _scratch.Advance(length);
            var frame = member.Channel.Frame(FrameType.Append, _scratch.WrittenSpan);
            member.Channel.LastSentMicros = _env.NowMicros;
            Outbox.Add(EngineCommand.Send(member.Connection, frame));
        }
    }

    /// <summary>Appends one entry to retention; one it holds of another epoch first truncates the deposed suffix there.</summary>
    private void AppendRetained(in EntryView e)
    {
        if (e.Index <= _retention.LastIndex)
        {
            if (e.Index < _retention.FirstIndex || !_retention.TryGet(e.Index, out var held) || held.Epoch == e.Epoch) return;
            // Same index, other epoch: we kept a deposed leader's uncommitted suffix, which this leader rewrote.
            if (e.Index <= _final)
                throw new CodecException(CodecError.Corrupt, $"entry {e.Index} of epoch {e.Epoch} conflicts with committed entry of epoch {held.Epoch}");
            RelayLog.Truncated(_logger, e.Index - 1, e.Epoch);
            TruncateRetention(e.Index - 1);
        }
        _retention.Append(e.ToLogEntry());
    }

    private void TruncateRetention(ulong after)
    {
        _retention.TruncateAfter(after);
        _published = Math.Min(_published, after);
        _matched = Math.Min(_matched, after);
        _learners.OnTruncated(after); // learners sent what was dropped (durable delivery) are told
    }

    /// <summary>
    /// Hands learners what they may have now: what retention holds, and, unless <c>delivery: durable</c>, only what is
    /// committed and matched against the current leader (a deposed leader's suffix above it may still be rewritten).
    /// </summary>
    private void PublishToLearners()
    {
        _final = Math.Max(_final, Math.Min(_retention.LastIndex, Math.Min(Math.Max(_commit, CommittedByQuorum()), _matched)));
        ulong head = _delivery == LearnerDelivery.Durable ? _retention.LastIndex : _final;
        if (head <= _published) return;
        _learners.OnAppended(Math.Max(_published + 1, _retention.FirstIndex), head);
        _published = head;
    }

    /// <summary>
    /// Now while learners catch up; a DcAck owed goes out one linger after the previous one (acks for several
    /// batches and member acks share one); else member dials by their back-off and the housekeeping tick.
    /// </summary>
    public long NextTickMicros
    {
        get
        {
            if (_learners.HasWork) return long.MinValue;
            long next = _lastTickMicros + _housekeepingMicros;
            if (_upstream is not null && _ackDirty) next = Math.Min(next, _lastAckMicros + _ackSpacingMicros);
            foreach (var m in _members)
                if (m.Connection < 0 && !m.DialPending) next = Math.Min(next, m.Backoff.RetryAtMicros);
            return NextFeedTickMicros(next);
        }
    }

    public void OnTick()
    {
        long now = _env.NowMicros;
        _lastTickMicros = now;
        foreach (var m in _members)
        {
            // A member that leads (elections) feeds this relay itself and takes no member link.
            if (m.Connection < 0 && !m.DialPending && m.Backoff.Due(now) && _upstream?.Peer.NodeId != m.Id)
            {
                m.DialPending = true;
                Outbox.Add(EngineCommand.Dial(m.Id));
            }
        }
        if (_retention.LastIndex > _retention.DurableIndex) _retention.Flush();
        // Keyed compaction folds what is final only (entries past it may still be rewritten by a new leader).
        var (dropped, oldest) = _retentionPacer.OnTick(_retention, now, keepFrom: _retention is KeyedLog ? _final + 1 : ulong.MaxValue);
        if (dropped > 0) RelayLog.RetentionApplied(_logger, dropped, oldest, _retention.FirstIndex);
        long heartbeat = (long)_topology.Defaults.Heartbeat.TotalMicroseconds;
        if (_upstream is not null && (_ackDirty || now - _lastAckMicros >= heartbeat))
            SendDcAck(now);
        TickFeed(now, heartbeat);
        // Retention installed past its keyed state: whoever feeds this relay sends its own, to merge once folded that far;
        // else its members in turn (a leader installed past its own state has none to send).
        if (_keyedFetch?.NeedsAsking() == true)
        {
            var sources = new List<PeerChannel>();
            if ((_upstream ?? _feed) is { } feeding) sources.Add(feeding);
            foreach (var m in _members)
                if (m.Channel is not null) sources.Add(m.Channel);
            _keyedFetch.OnTick(sources, now, Outbox, _scratch);
        }
        // Not fed (the leader routes elsewhere, or cannot reach us): learners that have all we hold
        // go find a relay or member that is fed. Members need no heartbeat from us then either.
        if (_upstream is null)
        {
            if (Unfed(now))
                _learners.SendAwayCaughtUp("this relay has no feed; resume elsewhere");
            _learners.OnTick();
            return;
        }
        foreach (var m in _members)
        {
            if (m.Channel is null || now - m.Channel.LastSentMicros < heartbeat) continue;
            _scratch.Clear();
            // Forwarded Appends set the member's delta state behind our back: always send in full.
            m.Channel.TxDelta.Reset();
            new Heartbeat(_highestEpoch, _commit, WallClock.UnixMicros()).Write(_scratch, ref m.Channel.TxDelta);
            Outbox.Add(EngineCommand.Send(m.Connection, m.Channel.Frame(FrameType.Heartbeat, _scratch.WrittenSpan, compress: false)));
            m.Channel.LastSentMicros = now;
        }
        _learners.OnTick();
    }

    private void SendDcAck(long now)
    {
        if (_upstream is null || _awaitingConfiguration) return;
        var progress = _progress;
        for (int i = 0; i < _members.Length; i++)
        {
            var m = _members[i];
            progress[i] = new MemberProgress(m.Slot, m.Durable, m.State, m.DurableEpoch, m.Commit);
            if (m.State == MemberLinkState.Resync) m.State = MemberLinkState.Up;
        }
        _scratch.Clear();
        // With the epoch at our last index and what we know final, a new leader can tell how much of retention is its log.
        new DcAck(_highestEpoch, _retention.LastIndex, progress, _retention.LastIndex == 0 ? 0 : _retention.LastEpoch, Math.Min(_final, _retention.LastIndex)).Write(_scratch);
        Outbox.Add(EngineCommand.Send(_upstream.Connection, _upstream.Frame(FrameType.DcAck, _scratch.WrittenSpan, compress: false)));
        _upstream.LastSentMicros = now;
        _lastAckMicros = now;
        _ackDirty = false;
    }

    public void Dispose()
    {
        _learners.Dispose();
        _upstream?.Dispose();
        _feed?.Dispose();
        foreach (var (_, child) in _children) child.Dispose();
        foreach (var m in _members) m.Channel?.Dispose();
        _scratch.Dispose();
    }
}
