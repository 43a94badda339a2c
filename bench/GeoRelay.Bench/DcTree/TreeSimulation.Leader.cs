using GeoRelay.Codec.Frames;
using GeoRelay.Engines;

namespace GeoRelay.Bench.DcTree;

internal sealed partial class TreeSimulation
{
    private long _leaderBytes, _leaderSteadyBytes;
    private RelayNode? _killed, _takeover;
    private long _leaderLostAt = -1, _takeoverFedAt = -1, _takeoverFirstBatchAt = -1;

    private void OnPublish()
    {
        _published++;
        for (int dc = 0; dc < _links.Length; dc++) TrySend(dc);
        if ((long)_published < _entries) Schedule(_o.PublishedAt((long)_published + 1), new Event(Kind.Publish, 0));
    }

    /// <summary>Natural batching: a batch leaves at once when the previous one is at least a linger old, else at that moment.</summary>
    private void TrySend(int dc)
    {
        var link = _links[dc];
        if (!link.Connected || link.SentThrough >= _published) return;
        if (_now - link.LastBatchAt < _o.Linger)
        {
            if (link.FlushPending) return;
            link.FlushPending = true;
            Schedule(link.LastBatchAt + _o.Linger, new Event(Kind.LeaderFlush, dc));
            return;
        }
        while (link.SentThrough < _published)
        {
            // As LeaderEngine.Table: records are added until they reach batch.max-bytes.
            ulong first = link.SentThrough + 1, last = first;
            long bytes = _wire.RecordBytes(first, first);
            while (last < _published && bytes < _o.BatchMaxBytes) bytes += _wire.RecordBytes(++last, last);
            int frame = _wire.LeaderBatch(link.Channel!, first, last, CommitAt(_now), _o.MembersPerDc);
            _leaderBytes += frame;
            if (_now >= _o.SteadyFrom && _now < _o.KillAt) _leaderSteadyBytes += frame;
            Schedule(_now + _o.WanOneWay, new Event(Kind.BatchArrives, link.Relay!.Id, Token: link.Token, First: first, Last: last));
            link.SentThrough = last;
        }
        link.LastBatchAt = _now;
    }

    private void OnLeaderFlush(int dc)
    {
        _links[dc].FlushPending = false;
        TrySend(dc);
    }

    /// <summary>
    /// The commit index a batch sent at <paramref name="sentAt"/> carries: what was published a WAN round trip
    /// earlier (the quorum's acks are that far away); it only sizes the batch and Append headers.
    /// </summary>
    private ulong CommitAt(long sentAt) => (ulong)Math.Max(0, Math.Min((long)_published, (sentAt - _o.WanRtt) * _o.Rate / 1_000_000));

    private void OnBatchArrives(in Event e)
    {
        var r = _relays[e.Node];
        if (r.Dead || r.Hung || r.Feed != Feed.Leader || r.FeedToken != e.Token) return;
        r.LastLeaderArrival = _now;
        if (r == _takeover && _takeoverFirstBatchAt < 0) _takeoverFirstBatchAt = _now;
        // The active relay forwards each member its packet of the batch (RelayEngine.OnBatch), over the in-DC links.
        ulong commit = CommitAt(_now - _o.WanOneWay);
        foreach (var member in r.Members!)
            Account(r, ToMembers, _wire.MemberAppend(member, e.First, e.Last, commit));
        Append(r, e.First, e.Last, from: null);
    }

    private void OnLeaderLost(in Event e)
    {
        var link = _links[e.Node];
        if (!link.Connected || link.Token != e.Token) return;
        link.Connected = false;
        link.Failed.Add(link.Relay!.Index);
        link.Channel!.Dispose();
        link.Channel = null;
        link.Relay = null;
        if (_leaderLostAt < 0) _leaderLostAt = _now;
        LeaderDial(e.Node);
    }

    /// <summary>A closed or abandoned relay is replaced at once by the next tier-1 relay in priority order.</summary>
    private void LeaderDial(int dc)
    {
        int relaysPerDc = _shape.Relays;
        for (int p = 0; p < relaysPerDc; p++)
        {
            if (!_shape.Tier1[p] || _links[dc].Failed.Contains(p)) continue;
            Schedule(_now + _o.WanOneWay, new Event(Kind.LeaderDialReaches, dc, Target: dc * relaysPerDc + p, Start: _now));
            return;
        }
        throw new NotSupportedException($"every tier-1 relay of dc{dc + 1:00} failed: direct sends to members are not modelled");
    }

    /// <summary>One WAN round trip for the TCP connect and one for the handshake; a dead relay refuses the SYN, a hung one times the handshake out.</summary>
    private void OnLeaderDialReaches(in Event e)
    {
        var t = _relays[e.Target];
        if (t.Dead) Schedule(e.Start + _o.WanRtt, new Event(Kind.LeaderDialFailed, e.Node, Target: e.Target));
        else if (t.Hung) Schedule(e.Start + _o.HandshakeTimeout, new Event(Kind.LeaderDialFailed, e.Node, Target: e.Target));
        else Schedule(e.Start + 2 * _o.WanRtt, new Event(Kind.RelayTakesLeader, e.Node, Target: e.Target));
    }

    private void OnLeaderDialFailed(in Event e)
    {
        _links[e.Node].Failed.Add(_relays[e.Target].Index);
        LeaderDial(e.Node);
    }

    /// <summary>The handshake is done: the relay is fed by the leader from now on and sends its first DcAck, saying what it holds.</summary>
    private void OnRelayTakesLeader(in Event e)
    {
        var t = _relays[e.Target];
        if (t.Dead || t.Hung)
        {
            Schedule(_now + _o.WanOneWay, new Event(Kind.LeaderDialFailed, e.Node, Target: e.Target));
            return;
        }
        TakeLeaderFeed(t);
        t.AckedThrough = t.Last;
        _takeover = t;
        _takeoverFedAt = _now;
        Schedule(_now + _o.WanOneWay, new Event(Kind.LeaderDcAck, e.Node, Target: e.Target, Token: t.FeedToken));
    }

    /// <summary>The first DcAck arrives: the leader resends from what the relay holds (warm retention), on a new zstd stream.</summary>
    private void OnLeaderDcAck(in Event e)
    {
        var t = _relays[e.Target];
        var link = _links[e.Node];
        link.Relay = t;
        link.Channel = NewLeaderChannel(t);
        link.Token = e.Token;
        link.SentThrough = t.AckedThrough;
        link.LastBatchAt = long.MinValue / 2;
        link.Connected = true;
        link.Failed.Clear();
        TrySend(e.Node);
    }

    private void TakeLeaderFeed(RelayNode r)
    {
        r.Parent?.Receivers.Remove(r);
        r.Parent = null;
        r.Feed = Feed.Leader;
        r.FeedToken++;
        r.SearchToken++;
        r.UnfedToken++;
        r.Members = new PeerChannel[_o.MembersPerDc];
        for (int m = 0; m < r.Members.Length; m++)
            r.Members[m] = new PeerChannel(m, new PeerInfo($"{r.Name}-m{m + 1}", NodeKind.Member, 0, PortKind.Outbound), _o.LocalCompressionLevel, _now);
    }

    private PeerChannel NewLeaderChannel(RelayNode relay) =>
        new(relay.Id, new PeerInfo(relay.Name, NodeKind.Relay, 0, PortKind.Outbound), _o.CompressionLevel, _now);
}
