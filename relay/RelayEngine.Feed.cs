using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Topology;

namespace GeoRelay.Relay;

/// <summary>
/// Relays feeding each other inside a datacenter. A relay the leader does not feed takes its entries from one that is
/// fed (the active relay for a first-tier standby, its <c>feed-from</c> parents for a second-tier relay), so every relay
/// serves learners, at most one in-DC hop per tier behind, and a standby the leader fails over to is already warm.
/// </summary>
/// <remarks>
/// The feed is a learner subscription on the parent's peer port with <see cref="SubscribeFlags.RelayFeed"/>: every
/// entry, internal ones included, from the parent's learner fan-out (one encoded frame for all its relays). With
/// committed delivery a parent hands out only final entries, so what a child takes is final too; with durable delivery
/// a parent's Truncated frames take back what a new leader rewrote, as they do for learners.
/// </remarks>
public sealed partial class RelayEngine
{
    private const long FeedRetryInitialMicros = 50_000;
    private const long FeedRetryMaxMicros = 2_000_000;

    /// <summary>Relays this one may take its feed from, in order: its feed-from list, else the other first-tier relays.</summary>
    private string[] _parents = [];
    /// <summary>The connection this relay takes its feed on (subscribed as soon as it opens), or null.</summary>
    private PeerChannel? _feed;
    private string? _feedDialing;
    private int _feedCursor;
    /// <summary>Parents tried since the last feed that worked; a whole round of refusals backs off.</summary>
    private int _feedTries;
    private Backoff _feedBackoff;
    /// <summary>The current upstream connection has carried a batch: the leader feeds this relay, not just probes it.</summary>
    private bool _leaderFeeding;
    /// <summary>Relays taking their feed here, by connection: a channel each for heartbeats (entries go through the fan-out).</summary>
    private readonly Dictionary<int, PeerChannel> _children = new();

    /// <summary>Fed at all: by the leader, or by another relay.</summary>
    private bool Fed => _upstream is not null || _feed is not null;

    private static string[] ParentsOf(TopologyConfig topology, NodeConfig self)
    {
        if (self.FeedFrom.Count > 0) return [.. self.FeedFrom];
        var dc = topology.GetDatacenter(self.Datacenter);
        return dc.Relays.Where(r => r != self.Id && topology.GetNode(r).IsFirstTier).ToArray();
    }

    /// <summary>Whether <paramref name="hello"/>'s relay may take its feed here now; null when it may.</summary>
    private CodecException? CheckFeedChild(in Hello hello)
    {
        if (!_topology.Nodes.TryGetValue(hello.NodeId, out var child) || child.Role != NodeRole.Relay || child.Datacenter != _self.Datacenter)
            return new CodecException(CodecError.UnknownNode, $"{hello.NodeId} is not a relay of {_self.Datacenter}");
        if (child.FeedFrom.Count > 0)
        {
            if (!child.FeedFrom.Contains(_self.Id))
                return new CodecException(CodecError.Protocol, $"{child.Id} takes its feed from {string.Join(", ", child.FeedFrom)} (feed-from), not {_self.Id}");
            if (!Fed) return new CodecException(CodecError.Shutdown, $"{_self.Id} has no feed itself; try the next relay of feed-from");
            return null;
        }
        if (!_self.IsFirstTier)
            return new CodecException(CodecError.Protocol, $"{_self.Id} is a second-tier relay; first-tier {child.Id} takes its feed from the relay the leader feeds");
        // A first-tier standby feeds from the relay the leader feeds: one hop, and never a ring of standbys.
        if (_upstream is null) return new CodecException(CodecError.Shutdown, $"{_self.Id} is not fed by the leader; try the next relay");
        return null;
    }

    private void OnFeedChildConnected(int connection, PeerInfo peer, long now)
    {
        _children[connection] = new PeerChannel(connection, peer, _topology.CompressionLevelBetween(_self.Id, peer.NodeId), now);
        _learners.OnConnected(connection, peer);
        RelayLog.FeedChildConnected(_logger, peer.NodeId);
    }

    private void OnFeedConnected(int connection, PeerInfo peer, long now)
    {
        _feedDialing = null;
        _feed = new PeerChannel(connection, peer, _topology.CompressionLevelBetween(_self.Id, peer.NodeId), now);
        // Above what is final here, retention may hold a deposed leader's suffix: asked for again from there, the parent's
        // entries replace what differs (AppendRetained). With nothing final known (a restart), the parent compares our last.
        ulong last = _retention.LastIndex;
        if (_final >= _retention.FirstIndex && _final < last) last = _final;
        ulong from = last > 0 ? last + 1 : Math.Max(1, _feedStartIfEmpty);
        ulong lastEpoch = last > 0 && _retention.TryGet(last, out var held) ? held.Epoch : 0;
        if (lastEpoch == 0) last = 0;
        _scratch.Clear();
        new Subscribe(from, ReadOnlyMemory<byte>.Empty, SubscribeFlags.RelayFeed, last, lastEpoch).Write(_scratch);
        Outbox.Add(EngineCommand.Send(connection, _feed.Frame(FrameType.Subscribe, _scratch.WrittenSpan, compress: false)));
        _feed.LastSentMicros = now;
        RelayLog.FeedConnected(_logger, peer.NodeId, from);
    }

    /// <summary>Where an empty retention asks its feed to start (a parent's oldest, after it said SnapshotRequired).</summary>
    private ulong _feedStartIfEmpty;

    private void OnFeedLost(string reason)
    {
        if (_feed is null) return;
        _keyedFetch?.OnDisconnected(_feed.Connection);
        RelayLog.FeedLost(_logger, _feed.Peer.NodeId, reason);
        _feed.Dispose();
        _feed = null;
        if (_upstream is null) _unfedSinceMicros = _env.NowMicros;
        _feedCursor = (_feedCursor + 1) % Math.Max(1, _parents.Length); // the parent gone is the least likely to serve next
    }

    private void DropFeed(string reason)
    {
        if (_feed is null) return;
        Outbox.Add(EngineCommand.Close(_feed.Connection, CodecError.None, reason));
        OnFeedLost(reason);
    }

    private void OnFeedDialFailed(string reason)
    {
        _feedDialing = null;
        _feedCursor = (_feedCursor + 1) % Math.Max(1, _parents.Length);
        // Refused or unreachable: the next parent at once, until a whole round failed; then back off.
        if (++_feedTries >= _parents.Length)
        {
            _feedTries = 0;
            _feedBackoff.Fail(_env.NowMicros, FeedRetryInitialMicros, FeedRetryMaxMicros, _random);
        }
        RelayLog.FeedRefused(_logger, reason);
    }

    private void OnFeedFrame(PeerChannel feed, in Frame frame)
    {
        var payload = feed.Payload(frame, _maxFrame);
        switch (frame.Type)
        {
            case FrameType.Deliver: OnFeedDeliver(payload); break;
            case FrameType.Heartbeat:
                var hb = Heartbeat.Read(payload, ref feed.RxDelta);
                if (hb.Epoch < _highestEpoch) { DropFeed($"{feed.Peer.NodeId} is at epoch {hb.Epoch}, below {_highestEpoch}"); return; }
                RaiseEpoch(hb.Epoch);
                break;
            case FrameType.Truncated:
                var truncated = Truncated.Read(payload);
                // Only what is held and known final cannot be taken back; a parent that proves nothing shared takes back the rest.
                if (truncated.After < _final && _final >= _retention.FirstIndex)
                    throw new CodecException(CodecError.Corrupt, $"{feed.Peer.NodeId} took back entries from {truncated.After + 1}; {_final} is final here");
                if (truncated.After < _retention.LastIndex) TruncateRetention(truncated.After);
                break;
            case FrameType.SnapshotRequired:
                // The parent no longer holds what follows ours: start over at its oldest (our learners behind it refill from members).
                ulong oldest = SnapshotRequired.Read(payload).OldestIndex;
                RelayLog.RetentionReset(_logger, oldest);
                _retention.ResetTo(oldest);
                _feedStartIfEmpty = oldest;
                _learners.OnReset(oldest);
                _published = Math.Min(_published, oldest - 1);
                break;
            case FrameType.SnapshotChunk when _keyedFetch is not null: _keyedFetch.OnChunk(feed, payload, _env.NowMicros, Outbox, _scratch); break;
            case FrameType.Error: DropFeed("parent reported an error"); break;
            default: throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} from feed relay {feed.Peer.NodeId}");
        }
    }

    private void OnFeedDeliver(ReadOnlySequence<byte> payload)
    {
        var reader = DeliverFrame.Read(payload, out ulong first, out ulong count, out ulong through);
        _feedTries = 0;
        _feedBackoff.Succeed();
        if (count > 0)
        {
            ulong before = _retention.LastIndex;
            if (before == 0) _retention.ResetTo(first);
            else if (first > before + 1)
                throw new CodecException(CodecError.Corrupt, $"relay feed skipped from {before} to {first}");
            while (reader.TryNext(out var e)) AppendRetained(e);
            if (_retention.LastIndex != before) _ackDirty = true;
        }
        // Entries of ours past the parent's that carry an older epoch than ours at `through` are a deposed leader's:
        // epochs never go down along a log, and the parent's log holds ours up to there. Nothing else would remove them
        // until the parent's log grew past them.
        if (_retention.LastIndex > through && through >= _retention.FirstIndex && _retention.TryGet(through, out var atThrough)
            && _retention.TryGet(through + 1, out var after) && after.Epoch < atThrough.Epoch)
        {
            RelayLog.Truncated(_logger, through, atThrough.Epoch);
            TruncateRetention(through);
        }
        // Sent from where our last entry matched the parent's (an empty Deliver says only that), so through is ours too.
        // A parent hands out committed entries only (delivery: committed): final wherever they are. Not our commit index,
        // which members are told: the parent may know them committed by counting acks, before any leader does.
        if (_delivery == LearnerDelivery.Committed && through <= _retention.LastIndex)
        {
            _matched = Math.Max(_matched, through);
            _final = Math.Max(_final, through);
        }
        PublishToLearners();
    }

    /// <summary>Feed upkeep on each tick: drop it once the leader feeds us, find one when nobody does, heartbeat both ways.</summary>
    private void TickFeed(long now, long heartbeat)
    {
        if (_leaderFeeding)
        {
            DropFeed("fed by the leader now");
        }
        else if (_feed is not null)
        {
            if (now - _feed.LastHeardMicros > (long)_topology.Defaults.FailoverAfter.TotalMicroseconds)
            {
                DropFeed($"silent for {(now - _feed.LastHeardMicros) / 1000} ms");
            }
            else if (now - _feed.LastSentMicros >= heartbeat)
            {
                SendHeartbeat(_feed, now);
            }
        }
        else if (_feedDialing is null && _parents.Length > 0 && _feedBackoff.Due(now))
        {
            _feedDialing = _parents[_feedCursor % _parents.Length];
            Outbox.Add(EngineCommand.Dial(_feedDialing));
        }

        if (_children.Count == 0) return;
        // Fed by another relay now (not the leader): first-tier children go find the relay the leader feeds.
        if (_upstream is null && _feed is not null)
        {
            foreach (var (connection, child) in _children)
            {
                if (_topology.GetNode(child.Peer.NodeId).IsFirstTier && _learners.Owns(connection))
                    _learners.Close(connection, $"{_self.Id} takes its feed from {_feed.Peer.NodeId} now; feed from the relay the leader feeds");
            }
        }
        foreach (var (_, child) in _children)
            if (now - child.LastSentMicros >= heartbeat) SendHeartbeat(child, now);
    }

    private void SendHeartbeat(PeerChannel channel, long now)
    {
        _scratch.Clear();
        new Heartbeat(_highestEpoch, _final, WallClock.UnixMicros()).Write(_scratch, ref channel.TxDelta);
        Outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.Heartbeat, _scratch.WrittenSpan, compress: false)));
        channel.LastSentMicros = now;
    }

    private long NextFeedTickMicros(long next)
    {
        if (!_leaderFeeding && _feed is null && _feedDialing is null && _parents.Length > 0) next = Math.Min(next, _feedBackoff.RetryAtMicros);
        return next;
    }
}
