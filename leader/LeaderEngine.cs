using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Leader;

/// <summary>
/// The single writer, as a sans-IO state machine. Appends entries to its log, makes them durable
/// in groups, and each tick sends every datacenter one batch (through its relay, or directly to its
/// members), never waiting for acks; tracks acks to move the commit index.
/// </summary>
public sealed partial class LeaderEngine : IEngine, IDisposable
{
    private enum LinkKind : byte { Relay, Member, Publisher, Other }

    private sealed class Link(PeerChannel channel, LinkKind kind, int datacenter, int slot)
    {
        public PeerChannel Channel { get; } = channel;
        public LinkKind Kind { get; } = kind;
        public int Datacenter { get; } = datacenter;
        public int Slot { get; } = slot;
        /// <summary>A relay link: the highest index the voters' progress last sent on it would let the relay release.</summary>
        public ulong ProgressReachTold;
    }

    /// <summary>A publish waiting for <see cref="Last"/> to be durable or committed; its ack names <see cref="First"/> (0 for an old duplicate) and <see cref="Count"/>.</summary>
    private readonly record struct PendingPublish(int Connection, ulong Request, ulong First, ulong Last, WaitLevel Level, ulong Count);

    private readonly TopologyConfig _topology;
    private readonly LeaderOptions _options;
    private readonly IEntryLog _log;
    private readonly KeyedStateServer? _keyedServer;
    /// <summary>A leader whose own log was installed past its keyed state (it followed, then won) asks its followers for theirs.</summary>
    private readonly KeyedStateFetch? _keyedFetch;
    private readonly IEngineEnvironment _env;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly DatacenterState[] _datacenters;
    private readonly Dictionary<string, (int Datacenter, int Slot)> _memberIndex = new();
    private readonly Dictionary<string, (int Datacenter, int Relay)> _relayIndex = new();
    private readonly Dictionary<int, Link> _links = new();
    private readonly List<PendingPublish> _pendingPublishes = new();
    private readonly ulong _topologyHash;
    private readonly int _compressionLevel;
    private readonly int _maxFrame;
    private readonly int _requiredAcks;
    private readonly ulong[] _durableScratch;
    private ulong _commitIndex;
    private ulong _batchSeq;
    private long _appendedBytesSinceFlush;
    private readonly long _housekeepingMicros;
    private readonly long _lingerMicros;
    private long _lastFlushMicros = long.MinValue / 2;
    private readonly GroupSync _sync;
    /// <summary>The durable index the commit and the batches last saw; the sync thread moves the log's ahead of it.</summary>
    private ulong _durableSeen;
    private readonly long[] _lastBatchMicros;
    /// <summary>
    /// The first index of this leader's epoch: the commit index moves only onto entries of its own epoch, never by
    /// counting copies of an earlier leader's entries (Raft §5.4.2: such an entry can be replicated on a majority and
    /// still be overwritten). Earlier entries commit with the first entry of this epoch, the no-op it starts with.
    /// </summary>
    private readonly ulong _ownEpochFrom;
    private readonly ProducerTable _producers;
    private readonly ConfigurationFrame _configuration;
    // The log copies what it appends: one array serves every marker (was one per exactly-once request).
    private static readonly byte[] ProducerKey = InternalEntries.ProducerKey.ToArray();

    public LeaderEngine(TopologyConfig topology, ulong epoch, IEntryLog log, IEngineEnvironment env,
        LeaderOptions? options = null, ILogger? logger = null)
    {
        _topology = topology;
        _options = options ?? LeaderOptions.Default;
        Epoch = epoch;
        _log = log;
        _keyedServer = KeyedStateServer.For(log);
        _sync = new GroupSync(log.Flush, log.FlushWaitsForDisk);
        _env = env;
        _logger = logger ?? NullLogger.Instance;
        _keyedFetch = KeyedStateFetch.For(log, _logger);
        _random = new Random(_options.Seed);
        _housekeepingMicros = TickCadence.HousekeepingMicros(topology.Defaults.Heartbeat, topology.Defaults.FailoverAfter);
        _lingerMicros = Micros(topology.Defaults.BatchLinger);
        _topologyHash = TopologyFingerprint.Of(topology);
        _compressionLevel = _options.CompressionLevel ?? Math.Max(topology.Defaults.CompressionLevel, topology.Defaults.LocalCompressionLevel);
        _maxFrame = (int)Math.Min(int.MaxValue - 1024, topology.Defaults.MaxFrame);
        _requiredAcks = topology.RequiredAcks;
        _datacenters = new DatacenterState[topology.Datacenters.Count];
        int members = 0;
        for (int d = 0; d < _datacenters.Length; d++)
        {
            // The leader routes only to first-tier relays; second-tier ones (feed-from) are fed inside their datacenter.
            var config = topology.Datacenters[d];
            var dc = _datacenters[d] = new DatacenterState(config with { Relays = config.Relays.Where(r => topology.GetNode(r).IsFirstTier).ToList() }, topology.IsVoter);
            for (int s = 0; s < dc.Members.Length; s++) _memberIndex[dc.Members[s].Id] = (d, s);
            for (int p = 0; p < dc.Config.Relays.Count; p++) _relayIndex[dc.Config.Relays[p]] = (d, p);
            if (_options.UseRelays && dc.HasRelays && !dc.Config.IsLeaderDatacenter) dc.CurrentRelay = 0;
            else dc.DirectSinceMicros = dc.HasRelays && !dc.Config.IsLeaderDatacenter ? env.NowMicros : -1;
            members += dc.Members.Length;
        }
        _durableScratch = new ulong[members];
        _lastBatchMicros = new long[_datacenters.Length];
        Array.Fill(_lastBatchMicros, long.MinValue / 2);
        // Entries the log already holds were accepted before a restart; nothing of them is known committed.
        _ownEpochFrom = FirstIndexOfEpoch(log, epoch);
        _producers = ProducerTable.Rebuild(log);
        var membership = Membership.Of(topology);
        _configuration = _options.Configuration ?? new ConfigurationFrame(0, 0, membership.Hash, membership.Encode());
        if (_options.KnownCommit >= _ownEpochFrom) _commitIndex = Math.Min(_options.KnownCommit, log.DurableIndex);
        if (_ownEpochFrom > log.LastIndex && log.LastIndex > 0)
        {
            Append(InternalEntries.NoOpKey.ToArray(), default, WallClock.UnixMicros(), internalEntry: true);
            LeaderLog.EpochStarted(_logger, epoch, log.LastIndex);
        }
        LocalHello = Hello.ForThisBuild(topology.LeaderId, NodeKind.Leader, epoch, topology.Cluster, _topologyHash,
            (_compressionLevel > 0 ? Capabilities.Zstd : Capabilities.None) | Capabilities.Mux | Capabilities.Delta | Capabilities.SnapshotInstall | Capabilities.KeyedState | Capabilities.VoterProgress);
    }

    public ulong Epoch { get; }
    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; }
    public ulong LastIndex => _log.LastIndex;
    /// <summary>The oldest entry held: retention keeps it committed.</summary>
    public ulong OldestIndex => _log.FirstIndex;
    public ulong DurableIndex => _log.DurableIndex;
    public ulong CommitIndex => _commitIndex;
    public bool Deposed { get; private set; }

    /// <summary>Set while the node shuts down: closing links is then not a failure.</summary>
    public bool Stopping { get; set; }
    public int DatacenterCount => _datacenters.Length;

    /// <summary>False while any datacenter has a full window of un-acked bytes in flight: publishers wait.</summary>
    public bool HasCapacity
    {
        get
        {
            if (_appendedBytesSinceFlush >= 4 * _topology.Defaults.BatchMaxBytes) return false;
            foreach (var dc in _datacenters)
                if (dc.InflightBytes >= _topology.Defaults.Window) return false;
            return true;
        }
    }

    /// <summary>The durable index a member has acked (directly or through its relay); 0 for unknown nodes.</summary>
    public ulong DurableOf(string memberId) =>
        _memberIndex.TryGetValue(memberId, out var m) ? _datacenters[m.Datacenter].Members[m.Slot].Durable : 0;

    /// <summary>Whether the member's acks reach this leader now (directly or through its relay).</summary>
    public bool Reaches(string memberId) =>
        _memberIndex.TryGetValue(memberId, out var m) && _datacenters[m.Datacenter].Members[m.Slot].Reachable;

    /// <summary>Highest index durable on every reachable member of the datacenter (at least one).</summary>
    public ulong DeliveredTo(string datacenter)
    {
        foreach (var dc in _datacenters)
            if (dc.Config.Name == datacenter) return dc.Delivered;
        throw new ArgumentException($"unknown datacenter '{datacenter}'", nameof(datacenter));
    }

    /// <summary>
    /// Appends a configuration entry (the cluster's next membership, encoded); returns its index. The caller (the voter)
    /// acts on it at once, and checks first that it is the only configuration not yet committed (Raft §4.1).
    /// </summary>
    public ulong AppendConfiguration(ReadOnlyMemory<byte> membership) =>
        Append(InternalEntries.ConfigurationKey.ToArray(), membership, WallClock.UnixMicros(), internalEntry: true);

    /// <summary>Whether this leader committed an entry of its own epoch (the no-op it started with, or later).</summary>
    public bool CommittedOwnEpoch => _commitIndex >= _ownEpochFrom;

    /// <summary>
    /// Appends the no-op that starts this epoch if its log holds no entry of it yet (a leader elected on an empty log starts
    /// without one, so numbering stays as it was): a membership change waits for an entry of the leader's own epoch to
    /// commit. False when there already is one.
    /// </summary>
    public bool EnsureOwnEpochEntry()
    {
        if (_ownEpochFrom <= _log.LastIndex || Deposed) return false;
        Append(InternalEntries.NoOpKey.ToArray(), default, WallClock.UnixMicros(), internalEntry: true);
        return true;
    }

    /// <summary>Appends one entry (not yet durable); returns its index.</summary>
    /// <exception cref="ArgumentException">The key is reserved for internal entries, or the key or payload is too large.</exception>
    public ulong Append(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, long timestampMicros, bool tombstone = false) =>
        Append(key, payload, timestampMicros, internalEntry: false, tombstone);

    private ulong Append(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, long timestampMicros, bool internalEntry, bool tombstone = false)
    {
        if (tombstone && key.IsEmpty) throw new ArgumentException("a tombstone deletes a key, so it needs one", nameof(key));
        if (!internalEntry && InternalEntries.IsInternal(key.Span))
            throw new ArgumentException("keys starting with a zero byte are reserved for the cluster's own entries", nameof(key));
        if (key.Length > EntryRecord.MaxKeyLength)
            throw new ArgumentException($"key is {key.Length} bytes, over the maximum of {EntryRecord.MaxKeyLength}", nameof(key));
        if (payload.Length > _maxFrame / 2)
            throw new ArgumentException($"payload is {payload.Length} bytes, over half the max frame of {_maxFrame}", nameof(payload));
        ulong index = _log.LastIndex + 1;
        var entry = new LogEntry(index, Epoch, timestampMicros, key, payload, tombstone ? EntryFlags.Tombstone : EntryFlags.None);
        _options.LogObserver?.BeforeAppend(entry);
        _log.Append(entry);
        _appendedBytesSinceFlush += payload.Length + key.Length + 32;
        if (_appendedBytesSinceFlush >= _topology.Defaults.BatchMaxBytes) RequestSync(_env.NowMicros);
        return index;
    }

    public CodecException? CheckPeer(in Hello hello, PortKind port)
    {
        // Publishers need not know the cluster's name; peers must.
        if (hello.Cluster != _topology.Cluster && !(port == PortKind.Publish && hello.Cluster.Length == 0))
            return new CodecException(CodecError.UnknownNode, $"cluster '{hello.Cluster}' is not '{_topology.Cluster}'");
        return port switch
        {
            PortKind.Publish when hello.Kind is NodeKind.Publisher or NodeKind.Tool => null,
            PortKind.Publish => new CodecException(CodecError.Protocol, $"the publish port takes publishers, not {hello.Kind}"),
            _ => new CodecException(CodecError.Protocol, $"the leader dials its peers; {hello.Kind} {hello.NodeId} may not dial in on {port}"),
        };
    }

    public void OnConnected(int connection, PeerInfo peer)
    {
        long now = _env.NowMicros;
        var channel = new PeerChannel(connection, peer, _options.CompressionLevel ?? _topology.CompressionLevelBetween(_topology.LeaderId, peer.NodeId), now);
        if (peer.Port == PortKind.Publish)
        {
            _links[connection] = new Link(channel, LinkKind.Publisher, -1, -1);
            return;
        }
        if (peer.Epoch > Epoch) Depose(peer.NodeId, peer.Epoch);
        if (_relayIndex.TryGetValue(peer.NodeId, out var p))
        {
            var dc = _datacenters[p.Datacenter];
            dc.RelayDialPending[p.Relay] = false;
            dc.RelayBackoff[p.Relay].Succeed();
            dc.Health[p.Relay] = RelayHealth.Healthy;
            if (dc.IsDirect && _options.UseRelays)
            {
                // Back from direct mode: the relay path takes over, members' direct links close.
                LeaderLog.BackToRelay(_logger, dc.Config.Name, peer.NodeId);
                dc.RelayReturns++;
                LeaderMetrics.RelayReturns.Add(1, new KeyValuePair<string, object?>("datacenter", dc.Config.Name));
                dc.CurrentRelay = p.Relay;
                if (dc.DirectSinceMicros >= 0) { dc.DirectMicrosTotal += now - dc.DirectSinceMicros; dc.DirectSinceMicros = -1; }
                CloseDirectLinks(dc, "datacenter is back on its relay");
            }
            if (dc.CurrentRelay == p.Relay && dc.RelayConnection < 0)
            {
                _links[connection] = new Link(channel, LinkKind.Relay, p.Datacenter, p.Relay);
                SendConfiguration(channel);
                dc.RelayConnection = connection;
                dc.RelaySynced = false;
                dc.LastHeardMicros = now;
                dc.LastAckProgressMicros = now;
                ResetInflight(dc);
                return;
            }
            // A probe that answered while another relay serves the DC: counts toward failing back to it, if it ranks higher.
            if (!dc.IsDirect && p.Relay < dc.CurrentRelay)
            {
                if (dc.HealthySinceMicros[p.Relay] < 0) dc.HealthySinceMicros[p.Relay] = now;
                dc.RelayBackoff[p.Relay].RetryAtMicros = now + FailbackProbeEveryMicros;
            }
            _links[connection] = new Link(channel, LinkKind.Other, p.Datacenter, p.Relay);
            Outbox.Add(EngineCommand.Close(connection, CodecError.None, "not the current route"));
            return;
        }
        if (_memberIndex.TryGetValue(peer.NodeId, out var m))
        {
            var dc = _datacenters[m.Datacenter];
            var member = dc.Members[m.Slot];
            member.DialPending = false;
            member.Backoff.Succeed();
            if (!dc.IsDirect || member.DirectConnection >= 0)
            {
                _links[connection] = new Link(channel, LinkKind.Other, m.Datacenter, m.Slot);
                Outbox.Add(EngineCommand.Close(connection, CodecError.None, "datacenter is served through its relay"));
                return;
            }
            _links[connection] = new Link(channel, LinkKind.Member, m.Datacenter, m.Slot);
            SendConfiguration(channel);
            member.DirectConnection = connection;
            member.Reachable = false; // until its first Ack says where it is
            return;
        }
        _links[connection] = new Link(channel, LinkKind.Other, -1, -1);
        Outbox.Add(EngineCommand.Close(connection, CodecError.UnknownNode, $"{peer.NodeId} is not in the topology"));
    }

    /// <summary>On protocol 3 a follower link starts with our membership: the slots our batches name are positions in it.</summary>
    private void SendConfiguration(PeerChannel channel)
    {
        if (channel.Peer.Version < 3) return;
        _scratch.Clear();
        _configuration.Write(_scratch);
        Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.Configuration, _scratch.WrittenSpan, compress: false)));
    }

    public void OnDisconnected(int connection)
    {
        if (!_links.Remove(connection, out var link)) return;
        _keyedFetch?.OnDisconnected(connection);
        link.Channel.Dispose();
        _pendingPublishes.RemoveAll(p => p.Connection == connection);
        switch (link.Kind)
        {
            case LinkKind.Relay:
            {
                var dc = _datacenters[link.Datacenter];
                if (dc.RelayConnection != connection) break;
                if (!Stopping)
                {
                    FailRelay(dc, "connection closed");
                }
                else
                {
                    // Shutting down: no failover, but nothing may be sent on the closed link either.
                    dc.RelayConnection = -1;
                    dc.RelaySynced = false;
                }
                break;
            }
            case LinkKind.Member:
            {
                var member = _datacenters[link.Datacenter].Members[link.Slot];
                if (member.DirectConnection == connection)
                {
                    member.DirectConnection = -1;
                    member.Reachable = false;
                    member.Backoff.Fail(_env.NowMicros, Micros(_options.ReconnectInitial), Micros(_options.ReconnectMax), _random);
                }
                break;
            }
        }
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        long now = _env.NowMicros;
        if (_relayIndex.TryGetValue(nodeId, out var p))
        {
            var dc = _datacenters[p.Datacenter];
            dc.RelayDialPending[p.Relay] = false;
            dc.RelayBackoff[p.Relay].Fail(now, Micros(_options.ReconnectInitial), Micros(_options.ReconnectMax), _random);
            dc.HealthySinceMicros[p.Relay] = -1;
            if (dc.CurrentRelay == p.Relay && dc.RelayConnection < 0)
                FailRelay(dc, "dial failed: " + reason);
            else
                dc.Health[p.Relay] = RelayHealth.Failed;
        }
        else if (_memberIndex.TryGetValue(nodeId, out var m))
        {
            var member = _datacenters[m.Datacenter].Members[m.Slot];
            member.DialPending = false;
            member.Backoff.Fail(now, Micros(_options.ReconnectInitial), Micros(_options.ReconnectMax), _random);
        }
    }

    public void OnFrame(int connection, in Frame frame)
    {
        if (!_links.TryGetValue(connection, out var link)) return;
        var channel = link.Channel;
        channel.LastHeardMicros = _env.NowMicros;
        var payload = channel.Payload(frame, _maxFrame);
        switch (frame.Type)
        {
            case FrameType.DcAck when link.Kind == LinkKind.Relay:
            {
                var ack = DcAck.Read(payload);
                // A relay this leader failed over from may still answer before its close lands: what it holds says
                // nothing of the route now in use (taken for the new relay's first ack, it would skip what that one lacks).
                if (_datacenters[link.Datacenter].RelayConnection == connection) OnDcAck(_datacenters[link.Datacenter], ack);
                break;
            }
            case FrameType.DcAck when link.Kind == LinkKind.Other:
                break; // a probed relay's greeting, on a connection already closing
            case FrameType.Ack when link.Kind == LinkKind.Member:
                OnMemberAck(_datacenters[link.Datacenter], link.Slot, Ack.Read(payload));
                break;
            case FrameType.Heartbeat:
                Heartbeat.Read(payload, ref channel.RxDelta);
                if (link.Kind == LinkKind.Relay && _datacenters[link.Datacenter].RelayConnection == connection)
                    _datacenters[link.Datacenter].LastHeardMicros = channel.LastHeardMicros;
                break;
            case FrameType.Subscribe when _keyedServer is not null && link.Kind is LinkKind.Relay or LinkKind.Member:
                _keyedServer.Serve(channel, Subscribe.Read(payload), Outbox, _scratch);
                break;
            case FrameType.SnapshotChunk when _keyedFetch is not null && link.Kind is LinkKind.Relay or LinkKind.Member:
                _keyedFetch.OnChunk(channel, payload, _env.NowMicros, Outbox, _scratch);
                break;
            case FrameType.SnapshotRequired when _keyedFetch is not null && link.Kind is LinkKind.Relay or LinkKind.Member:
                _keyedFetch.OnRefused(channel, _env.NowMicros);
                break;
            case FrameType.Publish when link.Kind == LinkKind.Publisher:
                OnPublish(connection, payload);
                break;
            case FrameType.Error:
                var error = ErrorFrame.Read(payload);
                if (error.Code == CodecError.StaleEpoch) Depose(channel.Peer.NodeId, null);
                Outbox.Add(EngineCommand.Close(connection, CodecError.None, "peer reported " + error.Code));
                break;
            default:
                throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} from {channel.Peer.Kind} {channel.Peer.NodeId}");
        }
    }

    private void OnDcAck(DatacenterState dc, DcAck ack)
    {
        // A relay still numbering members by an older membership (its ack crossed our Configuration frame): its slots are
        // not ours. It sends another once it has taken ours.
        if (ack.Members.Length != dc.Members.Length) return;
        dc.LastHeardMicros = _env.NowMicros;
        bool first = !dc.RelaySynced;
        if (first)
        {
            dc.RelaySynced = true;
            // The relay's retention may end in a deposed leader's suffix: resent from where it is surely ours.
            ulong retained = Trusted(ack.RetainedIndex, ack.RetainedEpoch, ack.RetainedCommit);
            dc.RetainedSentThrough = retained;
            dc.RetainedAcked = retained;
            dc.LastAckProgressMicros = dc.LastHeardMicros;
            LeaderLog.Synced(_logger, dc.Config.Name, dc.CurrentRelayId ?? "?", retained);
        }
        else if (ack.RetainedIndex > dc.RetainedAcked)
        {
            dc.RetainedAcked = ack.RetainedIndex;
            dc.LastAckProgressMicros = dc.LastHeardMicros;
        }
        foreach (var progress in ack.Members)
        {
            if ((uint)progress.Slot >= (uint)dc.Members.Length)
                throw new CodecException(CodecError.Corrupt, $"DcAck names member slot {progress.Slot}; {dc.Config.Name} has {dc.Members.Length}");
            var member = dc.Members[progress.Slot];
            ulong trusted = Trusted(progress.DurableIndex, progress.DurableEpoch, progress.Commit);
            if (trusted > member.Durable) member.Durable = trusted;
            bool up = progress.State != MemberLinkState.Down;
            if (up && (first || !member.Reachable || progress.State == MemberLinkState.Resync))
                member.SentThrough = member.Durable;
            member.Reachable = up;
        }
        OnProgress(dc);
    }

    private void OnMemberAck(DatacenterState dc, int slot, Ack ack)
    {
        var member = dc.Members[slot];
        ulong trusted = Trusted(ack.DurableIndex, ack.DurableEpoch, ack.Commit);
        if (trusted > member.Durable) member.Durable = trusted;
        if (!member.Reachable)
        {
            member.Reachable = true;
            member.SentThrough = member.Durable;
            LeaderLog.Synced(_logger, dc.Config.Name, member.Id, member.Durable);
        }
        OnProgress(dc);
    }

    /// <summary>
    /// How much of a member's durable log is known to be this leader's log. By the log matching rule (one leader per
    /// epoch writes each index once, and every log grows only from a point where it matched), an entry with the same
    /// index and epoch as ours means everything up to it matches. Otherwise the member holds a deposed leader's
    /// suffix we lack; what it knows committed (<paramref name="memberCommit"/>) is in every log, ours included, so its
    /// log matches up to there, and the rest is resent: the member replaces the conflicting entries.
    /// </summary>
    /// <remarks>
    /// Our own commit index proves nothing about a member: a member cut off while an old leader wrote can hold a
    /// different entry at an index that committed without it. Trusting it (as this did before elections) let such a
    /// member keep that entry under later ones, found by the voter chaos simulation.
    /// </remarks>
    private ulong Trusted(ulong durable, ulong durableEpoch, ulong memberCommit)
    {
        if (durable == 0) return 0;
        if (durable <= _log.LastIndex)
        {
            if (durableEpoch == Epoch) return durable; // written by this leader, which never rewrites its log
            if (_log.TryGet(durable, out var ours) && ours.Epoch == durableEpoch) return durable;
        }
        return Math.Min(durable, memberCommit);
    }

    /// <summary>Acks moved: release window, move the datacenter's delivered index and the commit index.</summary>
    private void OnProgress(DatacenterState dc)
    {
        ulong delivered = ulong.MaxValue;
        bool any = false;
        foreach (var m in dc.Members)
        {
            if (!m.Reachable) continue;
            any = true;
            delivered = Math.Min(delivered, m.Durable);
        }
        if (!any) delivered = dc.IsDirect ? dc.Delivered : Math.Max(dc.Delivered, dc.RetainedSentThrough);
        if (delivered > dc.Delivered) dc.Delivered = delivered;
        while (dc.Inflight.TryPeek(out var batch) && batch.Through <= dc.Delivered)
        {
            dc.Inflight.Dequeue();
            dc.InflightBytes -= batch.Bytes;
        }
        UpdateCommit();
    }

    private void UpdateCommit()
    {
        if (_requiredAcks <= 0 || _durableScratch.Length == 0) return;
        int n = 0;
        foreach (var dc in _datacenters)
            foreach (var m in dc.Members)
                if (m.Voting) _durableScratch[n++] = m.Durable;
        if (n == 0) return;
        Array.Sort(_durableScratch, 0, n);
        // the required-th highest durable index
        ulong candidate = _durableScratch[n - Math.Min(_requiredAcks, n)];
        candidate = Math.Min(candidate, _log.DurableIndex);
        if (candidate > _commitIndex && candidate >= _ownEpochFrom) _commitIndex = candidate;
        CompletePublishes();
    }

    private void OnPublish(int connection, System.Buffers.ReadOnlySequence<byte> payload)
    {
        var reader = PublishFrame.Read(payload, out var request, out var wait, out var count, out var producer);
        if (Deposed)
        {
            RefuseAsNotLeader(connection);
            return;
        }
        // Checked whole before anything is appended: a refused request leaves no part of itself in the log.
        var check = reader;
        while (check.TryNext(out var key, out var value, out bool tombstone))
        {
            if (tombstone && key.IsEmpty)
                throw new CodecException(CodecError.Protocol, $"publish request {request}: a tombstone without a key (a tombstone deletes a key)");
            if (InternalEntries.IsInternal(key))
                throw new CodecException(CodecError.Protocol, $"publish request {request}: keys starting with a zero byte are reserved for the cluster's own entries");
            if (key.Length > EntryRecord.MaxKeyLength || value.Length > _maxFrame / 2)
                throw new CodecException(CodecError.TooLarge, $"publish request {request}: an entry's key ({key.Length} bytes, at most {EntryRecord.MaxKeyLength}) or payload ({value.Length} bytes, at most {_maxFrame / 2}) is too large");
        }
        long now = WallClock.UnixMicros();
        if (producer.IsSet && count > 0)
        {
            var verdict = _producers.Check(producer, count, out ulong original, out ulong olderThan, out int present);
            if (verdict == ProducerVerdict.Duplicate)
            {
                // A retry of a request this log holds: answered once what it holds is durable or committed, never appended again.
                LeaderLog.DuplicatePublish(_logger, producer.Producer, producer.FirstSeq, count, original);
                _pendingPublishes.Add(original > 0
                    ? new PendingPublish(connection, request, original, original + (ulong)count - 1, wait, (ulong)count)
                    : new PendingPublish(connection, request, 0, olderThan, wait, (ulong)count));
                CompletePublishes(); // what it holds may be committed already, with nothing left to move the commit index
                return;
            }
            if (verdict == ProducerVerdict.AppendRest)
            {
                // The log holds the first `present` entries (a leader change cut the request): only the rest goes in,
                // and the answer names where the request began.
                var rest = new ProducerSequence(producer.Producer, producer.FirstSeq + (ulong)present);
                Append(ProducerKey, InternalEntries.ProducerMarker(rest, count - present), now, internalEntry: true);
                _producers.Record(rest, count - present, _log.LastIndex + 1);
                ulong end = _log.LastIndex;
                for (int i = 0; reader.TryNext(out var key, out var value, out bool tombstone); i++)
                    if (i >= present) end = Append(key.AsContiguous(), value.AsContiguous(), now, tombstone);
                _pendingPublishes.Add(new PendingPublish(connection, request, original, end, wait, (ulong)count));
                return;
            }
            Append(ProducerKey, InternalEntries.ProducerMarker(producer, count), now, internalEntry: true);
            _producers.Record(producer, count, _log.LastIndex + 1);
        }
        ulong first = _log.LastIndex + 1, last = _log.LastIndex;
        while (reader.TryNext(out var key, out var value, out bool tombstone))
            last = Append(key.AsContiguous(), value.AsContiguous(), now, tombstone); // the log copies
        _pendingPublishes.Add(new PendingPublish(connection, request, first, last, wait, last + 1 - first));
    }

    /// <summary>
    /// A higher epoch exists: this node no longer leads, so nothing it holds may be acknowledged as accepted.
    /// Publishers waiting for an answer are told, and those that publish again are refused.
    /// </summary>
    /// <param name="epoch">The peer's epoch, when its handshake said; null when it only refused ours as stale.</param>
    private void Depose(string by, ulong? epoch)
    {
        if (epoch is { } known) LeaderLog.Deposed(_logger, by, known, Epoch);
        else LeaderLog.RefusedAsStale(_logger, by, Epoch);
        StopLeading();
    }

    /// <summary>
    /// This node stops leading (its election lost the quorum or saw a later term): from now on it acknowledges
    /// nothing, and publishers are told to go to the current leader.
    /// </summary>
    public void StopLeading()
    {
        if (Deposed) return;
        Deposed = true;
        _pendingPublishes.Clear();
        foreach (var (connection, link) in _links)
            if (link.Kind == LinkKind.Publisher) RefuseAsNotLeader(connection);
    }

    /// <summary>
    /// The membership changed within this epoch and <paramref name="successor"/> takes over: publishers stay connected and
    /// their pending acks move with them (their links carry compression state, so they move whole). Returns the connections
    /// moved; the driver closes the rest.
    /// </summary>
    public IReadOnlyList<int> HandOverPublishers(LeaderEngine successor)
    {
        if (successor.Epoch != Epoch) throw new ArgumentException($"the successor leads epoch {successor.Epoch}, not {Epoch}", nameof(successor));
        var moved = new List<int>();
        foreach (var (connection, link) in _links)
        {
            if (link.Kind != LinkKind.Publisher) continue;
            successor._links[connection] = link;
            moved.Add(connection);
        }
        foreach (int connection in moved) _links.Remove(connection);
        successor._pendingPublishes.AddRange(_pendingPublishes);
        _pendingPublishes.Clear();
        successor.CompletePublishes();
        return moved;
    }

    private void RefuseAsNotLeader(int connection) =>
        Outbox.Add(EngineCommand.Close(connection, CodecError.NotLeader,
            $"{_topology.LeaderId} no longer leads (a node has an epoch above {Epoch}); publish to the current leader"));

    private void CompletePublishes()
    {
        if (_pendingPublishes.Count == 0) return;
        int kept = 0;
        for (int i = 0; i < _pendingPublishes.Count; i++)
        {
            var p = _pendingPublishes[i];
            ulong mark = p.Level == WaitLevel.Committed ? _commitIndex : _log.DurableIndex;
            if (p.Last <= mark && _links.TryGetValue(p.Connection, out var link))
            {
                var buffer = FrameBuffer.Rent();
                int start = FrameWriter.Begin(buffer.Writer);
                new PublishAck(p.Request, p.First, p.Count, p.Level).Write(buffer.Writer);
                FrameWriter.End(buffer.Writer, start, FrameType.PublishAck);
                link.Channel.LastSentMicros = _env.NowMicros;
                Outbox.Add(EngineCommand.Send(p.Connection, buffer));
            }
            else
            {
                _pendingPublishes[kept++] = p;
            }
        }
        _pendingPublishes.RemoveRange(kept, _pendingPublishes.Count - kept);
    }

    public void OnTick()
    {
        long now = _env.NowMicros;
        if (_ticked) ForgiveOwnPause(now, now - _lastTickMicros);
        _ticked = true;
        _lastTickMicros = now;
        CheckRoutes(now);
        // Retention keeps the segment holding the commit index, so the oldest entry is always committed: a follower
        // behind it is sent it as its log start (InstallSnapshot).
        var (dropped, oldest) = _retentionPacer.OnTick(_log, now, keepFrom: _commitIndex, committed: _commitIndex);
        if (dropped > 0) LeaderLog.RetentionApplied(_logger, dropped, oldest, _log.FirstIndex);
        FlushAndSend(now);
        SendHeartbeats(now);
        if (_keyedFetch?.NeedsAsking() == true)
        {
            // Its followers in turn: the relays and the members it links to directly.
            var followers = _links.Values.Where(l => l.Kind is LinkKind.Relay or LinkKind.Member).Select(l => l.Channel).OrderBy(c => c.Connection).ToList();
            _keyedFetch.OnTick(followers, now, Outbox, _scratch);
        }
    }

    private bool _ticked;
    private RetentionPacer _retentionPacer;

    /// <summary>
    /// Ticks come every housekeeping interval at the latest. A much longer gap means this process was not running
    /// (a GC pause, a stalled or overloaded machine): silence it did not watch is not held against the relays,
    /// which get a whole <c>failover-after</c> from now. Shifting their clocks by the pause alone was not enough
    /// in the cross-region benchmark: the whole machine had stalled, and the relays' frames were still on their
    /// way (through links that had stalled too) when the shifted limit ran out, failing over every datacenter.
    /// </summary>
    private void ForgiveOwnPause(long now, long gap)
    {
        long paused = gap - 2 * _housekeepingMicros;
        if (paused <= Micros(_topology.Defaults.FailoverAfter) / 4) return;
        foreach (var dc in _datacenters)
        {
            dc.LastHeardMicros = Math.Max(dc.LastHeardMicros, now);
            dc.LastAckProgressMicros = Math.Max(dc.LastAckProgressMicros, now);
        }
        LeaderLog.Paused(_logger, paused / 1000);
    }

    /// <summary>Makes appended entries durable (one group fsync, here and now), then sends every datacenter its batch.</summary>
    public void FlushAndSend()
    {
        if (_log.LastIndex > _log.DurableIndex)
        {
            _log.Flush();
            _lastFlushMicros = _env.NowMicros;
            _appendedBytesSinceFlush = 0;
        }
        SendDurable(long.MaxValue);
    }

    /// <summary>
    /// The tick's way: asks the driver for a group fsync once a linger has passed since the last (or a batch's worth
    /// is waiting), and sends what is durable to datacenters whose linger has passed.
    /// </summary>
    private void FlushAndSend(long now)
    {
        if (now >= SyncDueMicros) RequestSync(now);
        SendDurable(now);
    }

    /// <summary>When appended entries are next due a sync: once a linger after the last, or at once when a batch's worth waits.</summary>
    private long SyncDueMicros =>
        _appendedBytesSinceFlush >= _topology.Defaults.BatchMaxBytes ? long.MinValue : _lastFlushMicros + _lingerMicros;

    private void RequestSync(long now)
    {
        if (_sync.Running) return;
        _appendedBytesSinceFlush = 0; // a sync asked for before these appends may already have covered them
        if (_log.LastIndex <= _log.DurableIndex) return;
        _lastFlushMicros = now;
        _sync.Start(Outbox);
    }

    public void OnSynced() => _sync.Finished();

    private void SendDurable(long now)
    {
        ulong durable = _log.DurableIndex;
        if (durable > _durableSeen)
        {
            _durableSeen = durable;
            UpdateCommit();
        }
        SendBatches(now);
    }

    private long _lastTickMicros;

    /// <summary>
    /// Entries waiting to be made durable, or a datacenter behind the durable index, are due one linger after the
    /// previous flush or batch to it: at once on a quiet link, at most one flush and one batch per datacenter per
    /// linger under load (entries gather meanwhile, as with Nagle). A commit index that alone moved is due the same way.
    /// Otherwise the next housekeeping tick (heartbeats, failure detection, dials).
    /// </summary>
    public long NextTickMicros
    {
        get
        {
            long next = _lastTickMicros + _housekeepingMicros;
            if (Deposed || _disposed) return next;
            ulong durable = _log.DurableIndex;
            if (durable > _durableSeen) return long.MinValue;
            if (!_sync.Running && _log.LastIndex > durable) next = Math.Min(next, SyncDueMicros);
            for (int d = 0; d < _datacenters.Length; d++)
                if (Behind(_datacenters[d], SendableIndex) || CommitUntold(_datacenters[d]) || ProgressUntold(_datacenters[d])) next = Math.Min(next, _lastBatchMicros[d] + _lingerMicros);
            return next;
        }
    }

    /// <summary>
    /// The last entry batches may carry: the durable one, or with <see cref="LeaderOptions.SendBeforeDurable"/> the last
    /// appended (a follower then writes it while this leader's fsync runs).
    /// </summary>
    private ulong SendableIndex => _options.SendBeforeDurable ? _log.LastIndex : _log.DurableIndex;

    /// <summary>Whether SendBatches would send the datacenter entries: it is reachable, within its window, and behind <paramref name="durable"/>.</summary>
    private bool Behind(DatacenterState dc, ulong durable)
    {
        if (dc.InflightBytes >= _topology.Defaults.Window) return false;
        if (!dc.IsDirect)
        {
            if (dc.RelayConnection < 0 || !dc.RelaySynced) return false;
            if (dc.RetainedSentThrough < durable) return true;
            foreach (var m in dc.Members) if (m.Reachable && m.SentThrough < durable) return true;
            return false;
        }
        foreach (var m in dc.Members)
            if (m.DirectConnection >= 0 && m.Reachable && m.SentThrough < durable) return true;
        return false;
    }

    /// <summary>
    /// Whether the commit index moved since the datacenter's last batch: learners there see committed entries only once it
    /// arrives, so it goes out one linger after that batch rather than with the next heartbeat-paced tick.
    /// </summary>
    private bool CommitUntold(DatacenterState dc)
    {
        if (dc.InflightBytes >= _topology.Defaults.Window) return false;
        if (!dc.IsDirect)
            return dc.RelayConnection >= 0 && dc.RelaySynced && _links[dc.RelayConnection].Channel.TxDelta.Commit != _commitIndex;
        foreach (var m in dc.Members)
            if (m.DirectConnection >= 0 && m.Reachable && _links[m.DirectConnection].Channel.TxDelta.Commit != _commitIndex) return true;
        return false;
    }

    /// <summary>
    /// The first index the log holds of <paramref name="epoch"/>, or the next index when its newest entry is older.
    /// Epochs never decrease along a log, so a binary search finds it.
    /// </summary>
    private static ulong FirstIndexOfEpoch(IEntryLog log, ulong epoch)
    {
        if (log.LastIndex == 0 || log.LastEpoch < epoch) return log.LastIndex + 1;
        ulong lo = Math.Max(log.FirstIndex, 1), hi = log.LastIndex;
        while (lo < hi)
        {
            ulong mid = lo + (hi - lo) / 2;
            if (log.TryGet(mid, out var e) && e.Epoch >= epoch) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    /// <summary>Releases every link's compression state; the driver closes the connections.</summary>
    public void Dispose()
    {
        _disposed = true; // the host may still settle once: nothing is due any more
        foreach (var (_, link) in _links) link.Channel.Dispose();
        _links.Clear();
    }

    private bool _disposed;

    private static long Micros(TimeSpan t) => (long)(t.TotalMilliseconds * 1000);
}
