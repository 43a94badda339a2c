using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using GeoRelay.Transport;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Relay.Learners;

/// <summary>
/// Streams the retained log to the learners on a relay's (or member's) learner port, sans-IO: the
/// owning engine feeds it events and executes what it appends to the outbox.
/// </summary>
/// <remarks>
/// <para>A learner at the head of retention is <em>live</em>: each append is encoded once per filter
/// (one frame for every unfiltered learner, one per distinct key prefix) and the same reference-counted
/// buffer is queued on every connection. A learner behind the head <em>catches up</em> from retention,
/// a bounded step per tick, only while its connection's queue is under half of
/// <see cref="LearnerFanoutOptions.MaxBacklogBytes"/>; once at the head it turns live.</para>
/// <para>A live learner whose queue would pass <see cref="LearnerFanoutOptions.MaxBacklogBytes"/> is
/// closed with <see cref="CodecError.SlowConsumer"/>; it resumes from its last index on reconnect.</para>
/// <para>Queued bytes are the transport's count plus what this fan-out put in the outbox during the
/// current call: the driver is assumed to run the outbox after every call, as <see cref="IEngine"/> says.</para>
/// </remarks>
public sealed partial class LearnerFanout : IDisposable
{
    private readonly IEntryLog _retention;
    private readonly IEngineEnvironment _env;
    private readonly List<EngineCommand> _outbox;
    private readonly LearnerFanoutOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<int, LearnerSession> _sessions = new();
    private readonly LearnerGroup _unfiltered = new(null, "");
    /// <summary>
    /// The filter of a relay feed (<see cref="SubscribeFlags.RelayFeed"/>): every entry, internal ones too. Told apart
    /// from a key prefix by reference; it groups like one, so all relays fed here share each encoded frame.
    /// </summary>
    private static readonly byte[] Everything = [];
    private const string EverythingKey = "*relays*";
    private readonly Dictionary<string, LearnerGroup> _groupsByPrefix = new(StringComparer.Ordinal);
    private readonly List<LearnerGroup> _prefixGroups = new();
    private readonly List<LearnerSession> _catchingUp = new();
    private readonly List<LearnerSession> _tickScratch = new();
    private readonly List<LogEntry> _batch = new();
    private long _call;
    private int _catchUpCursor;
    private ulong _resetNext;
    private bool _resetUnknown;
    /// <summary>A learner sent nothing for this long gets a Heartbeat (<see cref="Capabilities.LearnerHeartbeats"/>).</summary>
    public const long LearnerHeartbeatMicros = 1_000_000;
    private long _lastHeartbeatSweepMicros;

    /// <summary>Highest index learners may be sent: the owner moves it (committed, or durable, per <c>delivery</c>).</summary>
    private ulong _visible;

    /// <param name="visibleThrough">The highest index learners may be sent at start; <see cref="OnAppended"/> moves it.</param>
    public LearnerFanout(IEntryLog retention, IEngineEnvironment env, List<EngineCommand> outbox, LearnerFanoutOptions options, ILogger? logger = null,
        ulong visibleThrough = ulong.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(retention);
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(outbox);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _retention = retention;
        _env = env;
        _outbox = outbox;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _visible = visibleThrough;
        KeyedSnapshots = retention is KeyedLog keyed ? keyed.Snapshot : null;
    }

    /// <summary>The highest index learners may be sent now (at most what retention holds).</summary>
    public ulong Head => Math.Min(_visible, _retention.LastIndex);

    /// <summary>Learners told Truncated since start.</summary>
    public long TruncationsSent { get; private set; }

    /// <summary>
    /// Asks another node (a member of the datacenter) for a learner's entries below this node's retention;
    /// null when there is none to ask. The answer comes back through <see cref="OnRefilled"/>,
    /// <see cref="OnRefillRefused"/> or <see cref="OnRefillFailed"/>.
    /// </summary>
    public LearnerRefillRequest? Refill { get; init; }

    /// <summary>Learner connections known (subscribed or not).</summary>
    public int LearnerCount => _sessions.Count;

    /// <summary>
    /// Connections on the learner port: the learners proper, what <c>max-learners</c> counts and status shows. Relays
    /// taking their feed here come on the peer port and are not among them.
    /// </summary>
    public int LearnerPortConnections { get; private set; }

    /// <summary>Learners disconnected with SlowConsumer by this fan-out.</summary>
    public long SlowConsumerCuts { get; private set; }

    /// <summary>Deliver frames encoded (each then queued on one or many connections).</summary>
    public long FramesEncoded { get; private set; }

    /// <summary>Deliver frames queued on learner connections.</summary>
    public long FramesSent { get; private set; }

    public bool Owns(int connection) => _sessions.ContainsKey(connection);

    /// <summary>Learners are catching up: the owner should tick again soon.</summary>
    public bool HasWork => _catchingUp.Count > 0;

    /// <summary>A Learner-kind peer finished its handshake on the learner port.</summary>
    public void OnConnected(int connection, PeerInfo peer) => OnConnected(connection, peer, null);

    /// <summary>As <see cref="OnConnected(int, PeerInfo)"/>, with the remote address to show in <see cref="Status"/>.</summary>
    public void OnConnected(int connection, PeerInfo peer, string? remote)
    {
        BeginCall();
        _sessions[connection] = new LearnerSession(connection, peer, remote);
        if (peer.Port == PortKind.Learner) LearnerPortConnections++;
    }

    public void OnDisconnected(int connection)
    {
        BeginCall();
        if (!_sessions.Remove(connection, out var session)) return;
        if (session.Peer.Port == PortKind.Learner) LearnerPortConnections--;
        Detach(session);
    }

    /// <summary>A frame from a learner (payload already inflated): Subscribe, Confirm; Heartbeat is ignored.</summary>
    public void OnFrame(int connection, FrameType type, ReadOnlySequence<byte> payload)
    {
        BeginCall();
        if (!_sessions.TryGetValue(connection, out var session) || session.State == LearnerState.Closing) return;
        try
        {
            switch (type)
            {
                case FrameType.Subscribe:
                    OnSubscribe(session, Subscribe.Read(payload));
                    break;
                case FrameType.Confirm:
                    var confirm = Confirm.Read(payload);
                    if (session.State == LearnerState.AwaitingSubscribe)
                        throw new CodecException(CodecError.Protocol, "Confirm before Subscribe");
                    // A learner cannot have processed more than it was sent on this connection or before it.
                    ulong index = Math.Min(confirm.Index, session.Next - 1);
                    if (index > session.Delivered) session.Delivered = index;
                    break;
                case FrameType.Heartbeat:
                    break;
                case FrameType.Error:
                    // The other side is closing (a relay that took its feed elsewhere says why).
                    CloseSession(session, CodecError.None, "closed by the peer");
                    break;
                default:
                    throw new CodecException(CodecError.Protocol, $"{type} is not expected on the learner port");
            }
        }
        catch (CodecException e)
        {
            LearnerLog.ProtocolError(_logger, session.Peer.NodeId, connection, e.Reason, e.Detail);
            CloseSession(session, e.Reason, e.Detail);
        }
    }

    /// <summary>
    /// Entries <paramref name="first"/>..<paramref name="last"/> may now go to learners (appended to retention, and
    /// committed or durable as <c>delivery</c> says): <paramref name="last"/> is the new visible head.
    /// </summary>
    public void OnAppended(ulong first, ulong last)
    {
        BeginCall();
        if (last >= first) _visible = last;
        if (last < first || (_unfiltered.Members.Count == 0 && _prefixGroups.Count == 0)) return;
        _batch.Clear();
        ulong wanted = last - first + 1;
        // Bounded: a commit index learned late (a restart) can open a long range at once; catch-up reads the rest.
        _retention.Read(first, (int)Math.Min(wanted, int.MaxValue), _options.CatchUpBytesPerTick, _batch);
        if (_batch.Count == 0 || _batch[0].Index != first)
        {
            // Retention no longer holds them (reset or trimmed meanwhile): let catch-up sort each learner out.
            DemoteLive(_unfiltered, last);
            foreach (var group in _prefixGroups) DemoteLive(group, last);
            return;
        }
        while (_batch.Count > 0 && _batch[^1].Index > last) _batch.RemoveAt(_batch.Count - 1);
        ulong covered = _batch[^1].Index;
        DeliverLive(_unfiltered, first, covered);
        for (int g = _prefixGroups.Count - 1; g >= 0; g--)
            DeliverLive(_prefixGroups[g], first, covered);
        _batch.Clear();
        if (covered < last)
        {
            DemoteLive(_unfiltered, last);
            foreach (var group in _prefixGroups) DemoteLive(group, last);
        }
        AnnounceLevelRelayFeeds();
    }

    /// <summary>
    /// Retention dropped every entry above <paramref name="after"/> (a new leader rewrote an uncommitted suffix). Learners
    /// that hold any of them (sent by us, or found equal to ours when they subscribed) are told with a Truncated frame
    /// and go on from <paramref name="after"/> + 1. A learner that got its entries elsewhere and was not compared yet is
    /// compared once our new entries are visible.
    /// </summary>
    public void OnTruncated(ulong after)
    {
        BeginCall();
        if (_visible > after) _visible = after;
        List<LearnerSession>? told = null;
        foreach (var (_, session) in _sessions)
            if (session.State is LearnerState.Live or LearnerState.CatchingUp && session.Known > after) (told ??= new()).Add(session);
        if (told is null) return;
        told.Sort((a, b) => a.Connection.CompareTo(b.Connection)); // a stable order for the simulator
        foreach (var session in told) SendTruncated(session, after);
    }

    /// <summary>Retention was reset (ResetTo) and its next index is not known here: learners re-check it when entries arrive.</summary>
    public void OnReset()
    {
        BeginCall();
        _resetUnknown = true;
        _resetNext = 0;
        foreach (var (_, session) in _sessions)
            if (session.State == LearnerState.Live) MakeCatchingUp(session);
    }

    /// <summary>Retention was reset to start at <paramref name="nextIndex"/>: learners behind it get SnapshotRequired now.</summary>
    public void OnReset(ulong nextIndex)
    {
        BeginCall();
        _resetUnknown = false;
        _resetNext = nextIndex;
        foreach (var (_, session) in _sessions)
        {
            if (session.State is LearnerState.Live or LearnerState.CatchingUp && session.Transfer is null && session.Next < OldestHeld())
                BehindRetention(session, OldestHeld());
        }
    }

    /// <summary>Moves catching-up learners forward, a bounded step each, round-robin within a per-tick read budget.</summary>
    public void OnTick()
    {
        BeginCall();
        SendIdleHeartbeats();
        int n = _catchingUp.Count;
        if (n == 0) return;
        _tickScratch.Clear();
        _tickScratch.AddRange(_catchingUp);
        long budget = _options.CatchUpBytesPerTick;
        int start = _catchUpCursor % n;
        for (int k = 0; k < n && budget > 0; k++)
        {
            var session = _tickScratch[(start + k) % n];
            if (session.State == LearnerState.CatchingUp)
                budget -= CatchUp(session, budget);
        }
        _catchUpCursor = start + 1;
        _tickScratch.Clear();
    }

    /// <summary>
    /// Serves another node's refill request: writes the payload of one Deliver frame (up to the size and
    /// count bounds, filtered by <paramref name="prefix"/>) starting at <paramref name="from"/>; an empty one
    /// (through = from - 1) when nothing is held there yet. False, with the oldest index held, when
    /// <paramref name="from"/> is below retention.
    /// </summary>
    public bool TryWriteRange(ulong from, ReadOnlySpan<byte> prefix, IBufferWriter<byte> payload, out ulong oldest)
    {
        if (!TryOldestHeld(out oldest) || from < oldest || from == 0)
        {
            oldest = Math.Max(oldest, 1);
            return false;
        }
        _batch.Clear();
        ulong head = Head;
        int n = from > head ? 0 : _retention.Read(from, (int)Math.Min((ulong)_options.MaxDeliverEntries, head - from + 1), _options.MaxDeliverBytes, _batch);
        if (n == 0)
        {
            DeliverFrame.WriteHeader(payload, from, 0, from - 1);
            return true;
        }
        byte[]? filter = prefix.IsEmpty ? null : prefix.ToArray();
        int end = PlanChunk(0, filter, from, _batch[n - 1].Index, out int count, out ulong through);
        WriteDeliverPayload(payload, 0, end, filter, from, count, through);
        _batch.Clear();
        return true;
    }

    /// <summary>The answer to a <see cref="Refill"/> request: one Deliver payload starting at <paramref name="from"/>.</summary>
    public void OnRefilled(int connection, ulong from, ReadOnlySequence<byte> deliverPayload)
    {
        BeginCall();
        if (!_sessions.TryGetValue(connection, out var s) || s.State != LearnerState.Refilling || s.Next != from) return;
        DeliverFrame.Read(deliverPayload, out ulong first, out _, out ulong through);
        if (first == from && through == from - 1)
        {
            // The member is not there yet (its learners' head lags this relay's): ask again on a later tick. A relay
            // whose retention is shorter than that lag sent such learners SnapshotRequired although the member would
            // have had the entries a moment later.
            s.State = LearnerState.CatchingUp;
            MakeCatchingUp(s);
            return;
        }
        if (first != from || through < from)
        {
            // The member holds nothing at `from` after all: nobody asked can fill the gap.
            if (!TryStartSnapshot(s)) RequireSnapshot(s, OldestHeld());
            return;
        }
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        foreach (var segment in deliverPayload) frame.Writer.Write(segment.Span);
        FrameWriter.End(frame.Writer, start, FrameType.Deliver);
        s.State = LearnerState.CatchingUp;
        if (Send(s, frame))
        {
            s.Next = through + 1;
            s.Known = through;
            FramesSent++;
            LearnerMetrics.FramesSent.Add(1);
            LearnerMetrics.Refills.Add(1);
            MakeCatchingUp(s);
        }
        frame.Release();
    }

    /// <summary>The node asked no longer holds <paramref name="from"/> either; its oldest is <paramref name="oldest"/>.</summary>
    public void OnRefillRefused(int connection, ulong from, ulong oldest)
    {
        BeginCall();
        if (!_sessions.TryGetValue(connection, out var s) || s.State != LearnerState.Refilling || s.Next != from) return;
        ulong here = OldestHeld();
        if (TryStartSnapshot(s)) return;
        RequireSnapshot(s, here == 0 ? Math.Max(1, oldest) : Math.Min(Math.Max(1, oldest), here));
    }

    /// <summary>The node asked went away before answering: the learner asks again (another node) on the next tick.</summary>
    public void OnRefillFailed(int connection)
    {
        BeginCall();
        if (_sessions.TryGetValue(connection, out var s) && s.State == LearnerState.Refilling) MakeCatchingUp(s);
    }

    /// <summary>
    /// Sends away learners that have everything retention holds (its feed stopped): they reconnect
    /// elsewhere and resume at their next index. Catching-up learners stay until they are level.
    /// Returns how many were sent away.
    /// </summary>
    public int SendAwayCaughtUp(string reason)
    {
        BeginCall();
        List<LearnerSession>? live = null;
        foreach (var (_, session) in _sessions)
            if (session.State == LearnerState.Live) (live ??= new()).Add(session);
        if (live is null) return 0;
        live.Sort((a, b) => a.Connection.CompareTo(b.Connection)); // a stable order for the simulator
        foreach (var session in live) CloseSession(session, CodecError.None, reason);
        return live.Count;
    }

    /// <summary>
    /// Every half heartbeat period: each subscribed learner sent nothing for <see cref="LearnerHeartbeatMicros"/> gets one
    /// shared Heartbeat frame, so that a learner that hears nothing at all can tell a hung node from a quiet log.
    /// </summary>
    private void SendIdleHeartbeats()
    {
        long now = _env.NowMicros;
        if (now - _lastHeartbeatSweepMicros < LearnerHeartbeatMicros / 2) return;
        _lastHeartbeatSweepMicros = now;
        FrameBuffer? frame = null;
        foreach (var (_, s) in _sessions)
        {
            // Relays taking their feed here get the relay's own heartbeats.
            if (s.State is LearnerState.AwaitingSubscribe or LearnerState.Closing || s.IsRelayFeed) continue;
            if (now - s.LastSentMicros < LearnerHeartbeatMicros) continue;
            if (frame is null)
            {
                frame = FrameBuffer.Rent();
                int start = FrameWriter.Begin(frame.Writer);
                var delta = new DeltaState();
                new Heartbeat(0, Head, WallClock.UnixMicros()).Write(frame.Writer, ref delta);
                FrameWriter.End(frame.Writer, start, FrameType.Heartbeat);
            }
            _outbox.Add(EngineCommand.Send(s.Connection, frame.AddRef()));
            s.LastSentMicros = now;
        }
        frame?.Release();
    }

    /// <summary>Closes one connection (it resumes elsewhere from its next index), telling it why.</summary>
    public void Close(int connection, string reason)
    {
        BeginCall();
        if (_sessions.TryGetValue(connection, out var session) && session.State != LearnerState.Closing)
            CloseSession(session, CodecError.None, reason);
    }

    /// <summary>Closes every learner (each resumes elsewhere from its next index), telling it why.</summary>
    public void CloseAll(string reason)
    {
        BeginCall();
        foreach (var session in _sessions.Values.ToList())
            if (session.State != LearnerState.Closing) CloseSession(session, CodecError.Shutdown, reason);
    }

    public IReadOnlyList<LearnerStatus> Status()
    {
        var list = new List<LearnerStatus>(_sessions.Count);
        foreach (var (connection, s) in _sessions)
        {
            bool subscribed = s.State != LearnerState.AwaitingSubscribe;
            list.Add(new LearnerStatus(connection, s.Peer.NodeId, s.Remote, s.From,
                subscribed && s.Next > 0 ? s.Next - 1 : 0, s.Delivered, _env.QueuedBytes(connection),
                s.Prefix is null ? null : s.IsRelayFeed ? "(relay feed)" : Encoding.UTF8.GetString(s.Prefix), s.State));
        }
        return list;
    }

    public void Dispose()
    {
        _sessions.Clear();
        _unfiltered.Members.Clear();
        _prefixGroups.Clear();
        _groupsByPrefix.Clear();
        _catchingUp.Clear();
        _batch.Clear();
    }

    private void BeginCall() => _call++;

    private void OnSubscribe(LearnerSession session, Subscribe subscribe)
    {
        if (session.State != LearnerState.AwaitingSubscribe)
            throw new CodecException(CodecError.Protocol, "Subscribe sent twice on one connection");
        session.From = session.Next = subscribe.FromIndex;
        session.CheckIndex = subscribe.LastIndex;
        session.CheckEpoch = subscribe.LastEpoch;
        bool relayFeed = (subscribe.Flags & SubscribeFlags.RelayFeed) != 0;
        if (relayFeed && session.Peer.Kind != NodeKind.Relay)
            throw new CodecException(CodecError.Protocol, $"only a relay takes a relay feed, not {session.Peer.Kind} {session.Peer.NodeId}");
        session.Prefix = relayFeed ? Everything : subscribe.KeyPrefix.Length == 0 ? null : subscribe.KeyPrefix.ToArray();
        LearnerGroup group = _unfiltered;
        if (session.Prefix is not null)
        {
            string key = relayFeed ? EverythingKey : Convert.ToHexString(session.Prefix);
            if (!_groupsByPrefix.TryGetValue(key, out var found))
            {
                found = new LearnerGroup(session.Prefix, key);
                _groupsByPrefix.Add(key, found);
                _prefixGroups.Add(found);
            }
            group = found;
        }
        group.Add(session);
        session.State = LearnerState.Live;
        LearnerLog.Subscribed(_logger, session.Peer.NodeId, session.Connection, session.From,
            session.Prefix is null ? "" : relayFeed ? "(relay feed)" : Encoding.UTF8.GetString(session.Prefix));

        if ((subscribe.Flags & SubscribeFlags.Snapshot) != 0)
        {
            session.Next = 1;
            StartSnapshot(session, subscribe.SnapshotThrough, subscribe.FromIndex);
            return;
        }
        if (!TryOldestHeld(out ulong oldest)) return; // reset, next index unknown: wait for entries
        if (session.Next < oldest)
        {
            BehindRetention(session, oldest);
            return;
        }
        if (!Verified(session)) return;
        if (session.Next <= Head)
        {
            MakeCatchingUp(session);
            CatchUp(session, _options.CatchUpBytesPerTick);
        }
        else if (relayFeed)
        {
            AnnounceLevelRelayFeeds();
        }
    }

    /// <summary>
    /// A relay feed that holds exactly our head, compared equal there, is sent an empty Deliver saying so: otherwise,
    /// with nothing new to send, it would never learn that what it holds (from the leader, before its feed moved here) is
    /// final, and would keep it from its own learners.
    /// </summary>
    private void AnnounceLevelRelayFeeds()
    {
        if (!_groupsByPrefix.TryGetValue(EverythingKey, out var group)) return;
        ulong head = Head;
        // Backwards: a cut session leaves the list by swap-remove, which only moves visited members.
        for (int i = group.Members.Count - 1; i >= 0; i--)
        {
            var s = group.Members[i];
            if (s.State != LearnerState.Live || s.Announced || s.Next != head + 1 || !Verified(s)) continue;
            s.Announced = true;
            var frame = FrameBuffer.Rent();
            int start = FrameWriter.Begin(frame.Writer);
            DeliverFrame.WriteHeader(frame.Writer, s.Next, 0, s.Next - 1);
            FrameWriter.End(frame.Writer, start, FrameType.Deliver);
            Send(s, frame);
            frame.Release();
        }
    }

    /// <summary>Sends one chunked range of <see cref="_batch"/> to the group's live learners at <paramref name="first"/>.</summary>
    private void DeliverLive(LearnerGroup group, ulong first, ulong covered)
    {
        var members = group.Members;
        if (members.Count == 0) return;
        int pos = 0;
        ulong chunkFirst = first;
        while (pos < _batch.Count)
        {
            int end = PlanChunk(pos, group.Prefix, chunkFirst, covered, out int count, out ulong through);
            FrameBuffer? frame = null;
            int sent = 0;
            // Backwards: a cut learner leaves the list by swap-remove, which only moves visited members.
            for (int i = members.Count - 1; i >= 0; i--)
            {
                var s = members[i];
                if (s.State != LearnerState.Live) continue;
                if (s.Next == chunkFirst && !Verified(s)) continue;
                if (s.Next == chunkFirst)
                {
                    frame ??= Encode(pos, end, group.Prefix, chunkFirst, count, through);
                    if (Send(s, frame))
                    {
                        s.Next = through + 1;
                        s.Known = through;
                        sent++;
                    }
                }
                else if (s.Next <= through)
                {
                    // Behind this append (or waiting for an index inside it): retention serves it.
                    MakeCatchingUp(s);
                }
            }
            if (frame is not null)
            {
                frame.Release();
                FramesSent += sent;
                LearnerMetrics.FramesSent.Add(sent);
            }
            pos = end;
            chunkFirst = through + 1;
        }
    }

    private void DemoteLive(LearnerGroup group, ulong last)
    {
        foreach (var s in group.Members)
            if (s.State == LearnerState.Live && s.Next <= last) MakeCatchingUp(s);
    }

    /// <summary>Reads and sends a bounded step of retention to one learner; returns the bytes read.</summary>
    private long CatchUp(LearnerSession s, long budget)
    {
        long read = 0;
        if (s.Transfer is not null)
        {
            read += SendSnapshotChunks(s, budget);
            if (s.Transfer is not null || s.State != LearnerState.CatchingUp) return read;
        }
        for (int step = 0; step < _options.CatchUpFramesPerTick && read < budget && s.State == LearnerState.CatchingUp; step++)
        {
            if (!TryOldestHeld(out ulong oldest)) return read;
            if (s.Next < oldest)
            {
                BehindRetention(s, oldest);
                return read;
            }
            ulong head = Head;
            if (s.Next > head)
            {
                MakeLive(s);
                return read;
            }
            if (!Verified(s)) return read;
            if (Backlog(s) >= BacklogLimit(s) / 2) return read;
            _batch.Clear();
            int n = _retention.Read(s.Next, (int)Math.Min((ulong)_options.MaxDeliverEntries, head - s.Next + 1), _options.MaxDeliverBytes, _batch);
            if (n == 0) return read; // raced with retention trimming; the next step re-checks
            for (int i = 0; i < n; i++) read += _batch[i].EncodedSize;
            ulong covered = _batch[n - 1].Index;
            int pos = 0;
            while (pos < n && s.State == LearnerState.CatchingUp)
            {
                ulong chunkFirst = s.Next;
                int end = PlanChunk(pos, s.Prefix, chunkFirst, covered, out int count, out ulong through);
                var frame = Encode(pos, end, s.Prefix, chunkFirst, count, through);
                if (Send(s, frame))
                {
                    s.Next = through + 1;
                    s.Known = through;
                    FramesSent++;
                    LearnerMetrics.FramesSent.Add(1);
                }
                frame.Release();
                pos = end;
            }
            _batch.Clear();
        }
        if (s.State == LearnerState.CatchingUp && s.Next > Head) MakeLive(s);
        return read;
    }

    /// <summary>
    /// Picks the entries of <see cref="_batch"/> from <paramref name="pos"/> that go in one frame: those matching
    /// <paramref name="prefix"/>, up to the size and count bounds. Returns the position after them. The frame covers
    /// <paramref name="chunkFirst"/>..<paramref name="through"/>: up to <paramref name="covered"/> when the batch is
    /// exhausted (skipped entries included, so a filtered learner's resume point moves past them).
    /// </summary>
    private int PlanChunk(int pos, byte[]? prefix, ulong chunkFirst, ulong covered, out int count, out ulong through)
    {
        long bytes = 0;
        count = 0;
        ulong expected = chunkFirst, lastIncluded = 0;
        int i = pos;
        for (; i < _batch.Count; i++)
        {
            var e = _batch[i];
            if (!Wanted(e.Key.Span, prefix)) continue;
            int size = EntryRecord.SizeOf(e.Index - expected, e.Epoch, e.TimestampMicros, e.Key.Length, e.Payload.Length);
            if (count > 0 && (bytes + size > _options.MaxDeliverBytes || count >= _options.MaxDeliverEntries)) break;
            bytes += size;
            count++;
            lastIncluded = e.Index;
            expected = e.Index + 1;
        }
        through = i >= _batch.Count ? covered : lastIncluded;
        return i;
    }

    /// <summary>An application entry under the learner's prefix (internal entries go to no learner).</summary>
    private static bool Wanted(ReadOnlySpan<byte> key, byte[]? prefix) =>
        ReferenceEquals(prefix, Everything) || (!InternalEntries.IsInternal(key) && (prefix is null || key.StartsWith(prefix)));

    private FrameBuffer Encode(int pos, int end, byte[]? prefix, ulong chunkFirst, int count, ulong through)
    {
        var frame = FrameBuffer.Rent();
        var w = frame.Writer;
        int start = FrameWriter.Begin(w);
        WriteDeliverPayload(w, pos, end, prefix, chunkFirst, count, through);
        // Learners are local and many: their frames go uncompressed, so one buffer serves them all.
        FrameWriter.End(w, start, FrameType.Deliver);
        FramesEncoded++;
        LearnerMetrics.FramesEncoded.Add(1);
        return frame;
    }

    private void WriteDeliverPayload(IBufferWriter<byte> w, int pos, int end, byte[]? prefix, ulong chunkFirst, int count, ulong through)
    {
        DeliverFrame.WriteHeader(w, chunkFirst, (ulong)count, through);
        ulong expected = chunkFirst;
        for (int i = pos; i < end; i++)
        {
            var e = _batch[i];
            if (!Wanted(e.Key.Span, prefix)) continue;
            EntryRecord.Write(w, e.Index - expected, e.Epoch, e.TimestampMicros, e.Key.Span, e.Payload.Span, e.IsTombstone);
            expected = e.Index + 1;
        }
    }

    /// <summary>Queues one more reference of <paramref name="frame"/> for the learner, or cuts it as a slow consumer.</summary>
    private bool Send(LearnerSession s, FrameBuffer frame)
    {
        long backlog = Backlog(s), limit = BacklogLimit(s);
        if (backlog + frame.Length > limit)
        {
            SlowConsumerCuts++;
            LearnerMetrics.SlowConsumerCuts.Add(1);
            LearnerLog.SlowConsumer(_logger, s.Peer.NodeId, s.Connection, backlog, limit);
            CloseSession(s, CodecError.SlowConsumer,
                $"more than {limit} bytes queued for this learner; resume from the last index received");
            return false;
        }
        _outbox.Add(EngineCommand.Send(s.Connection, frame.AddRef()));
        s.LastSentMicros = _env.NowMicros;
        if (s.PendingCall != _call)
        {
            s.PendingCall = _call;
            s.PendingBytes = 0;
        }
        s.PendingBytes += frame.Length;
        return true;
    }

    private long Backlog(LearnerSession s) =>
        _env.QueuedBytes(s.Connection) + (s.PendingCall == _call ? s.PendingBytes : 0);

    /// <summary>What a session may have queued before it is cut: a relay taking its feed here gets a window, learners their backlog.</summary>
    private long BacklogLimit(LearnerSession s) =>
        s.IsRelayFeed ? Math.Max(_options.RelayFeedBacklogBytes, _options.MaxBacklogBytes) : _options.MaxBacklogBytes;

    /// <summary>Asks for the learner's next entries from another node; false when there is nobody to ask.</summary>
    private bool TryRefill(LearnerSession s)
    {
        // Members answer refills without internal entries: a relay feed behind retention starts over from a snapshot point.
        if (Refill is null || s.IsRelayFeed) return false;
        if (Backlog(s) >= _options.MaxBacklogBytes / 2)
        {
            MakeCatchingUp(s); // asks again on a later tick, once its queue has drained
            return true;
        }
        if (!Refill(s.Connection, s.Next, s.Prefix)) return false;
        RemoveCatchingUp(s);
        s.State = LearnerState.Refilling;
        return true;
    }

    /// <summary>
    /// Whether the learner's last entry (from its Subscribe) is this node's too; checked once, when retention holds it.
    /// When it is not, a leader change took it back while the learner was elsewhere: the learner is told Truncated at
    /// the highest index both logs provably share, and false is returned.
    /// </summary>
    private bool Verified(LearnerSession s)
    {
        if (s.CheckIndex == 0) return true;
        // Compared once all the learner holds is visible here: above it this node may itself hold a suffix a new leader
        // is about to rewrite (and nothing is sent to the learner before then anyway). An unfiltered learner also
        // passed over the internal entries up to its next index, so those are compared too.
        ulong holds = s.Prefix is null || s.IsRelayFeed ? s.Next - 1 : s.CheckIndex;
        if (holds > Head) return true;
        if (!_retention.TryGet(s.CheckIndex, out var held))
        {
            // Below retention: long final, nothing to compare.
            s.CheckIndex = 0;
            return true;
        }
        ulong index = s.CheckIndex, epoch = s.CheckEpoch;
        s.CheckIndex = 0;
        if (held.Epoch != epoch)
        {
            SendTruncated(s, SharedThrough(index, epoch));
            return false;
        }
        for (ulong i = index + 1; i <= holds; i++)
        {
            if (_retention.TryGet(i, out var skipped) && !InternalEntries.IsInternal(skipped.Key.Span))
            {
                // It skipped another log's internal entry where ours holds an application entry.
                SendTruncated(s, index);
                return false;
            }
        }
        s.Known = Math.Max(s.Known, holds);
        return true;
    }

    /// <summary>
    /// The highest index up to which a log whose entry at <paramref name="index"/> has <paramref name="epoch"/> surely
    /// equals ours: our last entry of that epoch at or below it (one leader per epoch writes each index once, so both
    /// logs match up to there). 0 when we hold none: nothing else is proven, not even our committed entries, since
    /// the learner may have received other entries at those indexes before they committed.
    /// </summary>
    private ulong SharedThrough(ulong index, ulong epoch)
    {
        ulong lo = Math.Max(_retention.FirstIndex, 1), hi = Math.Min(index, _retention.LastIndex);
        if (lo > hi || !_retention.TryGet(lo, out var first) || first.Epoch > epoch) return 0;
        // Epochs never decrease along a log: find the last entry at or below `index` whose epoch is at most `epoch`.
        while (lo < hi)
        {
            ulong mid = lo + (hi - lo + 1) / 2;
            if (_retention.TryGet(mid, out var e) && e.Epoch <= epoch) lo = mid;
            else hi = mid - 1;
        }
        return _retention.TryGet(lo, out var last) && last.Epoch == epoch ? lo : 0;
    }

    private void SendTruncated(LearnerSession s, ulong after)
    {
        LearnerLog.Truncated(_logger, s.Peer.NodeId, s.Connection, s.Next - 1, after);
        TruncationsSent++;
        LearnerMetrics.Truncations.Add(1);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new Truncated(after).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Truncated);
        _outbox.Add(EngineCommand.Send(s.Connection, frame));
        if (after + 1 < s.Next) s.Next = after + 1;
        s.Known = Math.Min(s.Known, after);
        if (s.State != LearnerState.Refilling) MakeCatchingUp(s);
    }

    private void RequireSnapshot(LearnerSession s, ulong oldest, string? why = null)
    {
        LearnerLog.SnapshotRequired(_logger, s.Peer.NodeId, s.Connection, s.Next, oldest);
        LearnerMetrics.SnapshotsRequired.Add(1);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new SnapshotRequired(oldest).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.SnapshotRequired);
        _outbox.Add(EngineCommand.Send(s.Connection, frame));
        CloseSession(s, CodecError.SnapshotRequired, why ?? $"index {s.Next} is no longer retained here; the oldest is {oldest}");
    }

    private void CloseSession(LearnerSession s, CodecError reason, string message)
    {
        _outbox.Add(EngineCommand.Close(s.Connection, reason, message));
        Detach(s);
        s.State = LearnerState.Closing;
    }

    /// <summary>The lowest index retention can serve, or false while that is unknown (empty after a reset).</summary>
    private bool TryOldestHeld(out ulong oldest)
    {
        oldest = _retention.FirstIndex;
        if (oldest != 0) return true;
        if (_resetUnknown) return false;
        oldest = _resetNext == 0 ? 1 : _resetNext;
        return true;
    }

    private ulong OldestHeld() => TryOldestHeld(out ulong oldest) ? oldest : 0;

    private void MakeCatchingUp(LearnerSession s)
    {
        s.State = LearnerState.CatchingUp;
        if (s.CatchUpSlot >= 0) return;
        s.CatchUpSlot = _catchingUp.Count;
        _catchingUp.Add(s);
    }

    private void MakeLive(LearnerSession s)
    {
        s.State = LearnerState.Live;
        RemoveCatchingUp(s);
    }

    private void RemoveCatchingUp(LearnerSession s)
    {
        int slot = s.CatchUpSlot;
        if (slot < 0) return;
        int last = _catchingUp.Count - 1;
        if (slot != last)
        {
            var moved = _catchingUp[last];
            _catchingUp[slot] = moved;
            moved.CatchUpSlot = slot;
        }
        _catchingUp.RemoveAt(last);
        s.CatchUpSlot = -1;
    }

    private void Detach(LearnerSession s)
    {
        RemoveCatchingUp(s);
        var group = s.Group;
        if (group is null) return;
        group.Remove(s);
        if (group.Prefix is not null && group.Members.Count == 0)
        {
            _groupsByPrefix.Remove(group.Key);
            _prefixGroups.Remove(group);
        }
    }
}
