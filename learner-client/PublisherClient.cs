using System.Diagnostics;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.LearnerClient;

/// <summary>
/// Publishes entries to the leader, pipelined: many publishes in flight, each answered with the indexes its entries
/// got. The bytes and entries in flight are bounded; past the bound a publish waits for room. Follows the leader:
/// when its connection closes (the node stopped leading, died, or the network cut it) it reconnects on its own.
/// </summary>
/// <example>
/// <code>
/// var options = PublisherClientOptions.Default with { Endpoints = ["127.0.0.1:7100"], Serializers = new JsonPayloadSerializerRegistry() };
/// await using var publisher = await PublisherClient.ConnectAsync(options, ct);
/// PublishResult done = await publisher.PublishAsync("prices/eu"u8.ToArray(), new Price("EURUSD", 1.0842m), WaitLevel.Committed);
/// Console.WriteLine($"committed at index {done.FirstIndex}");
/// </code>
/// </example>
/// <remarks>
/// <para>
/// A publish is encoded when it is called (the caller may reuse its buffers once the call returns) and sent when
/// the window (<see cref="PublisherClientOptions.MaxInFlightBytes"/>, <see cref="PublisherClientOptions.MaxInFlightEntries"/>)
/// has room, in call order, so entries published one after the other are appended in that order. Its task
/// completes when the leader acknowledges it; each acknowledgement frees room for the publishes waiting. A caller
/// that does not await its publishes holds one encoded request per publish: bound how many it keeps outstanding.
/// </para>
/// <para>
/// Reconnecting: when the connection closes, or a node refuses the client with <see cref="CodecError.NotLeader"/>, the
/// client dials the leader that node named (<c>publish at HOST:PORT</c>, even when it is not one of the endpoints),
/// then the endpoints in order, in rounds with jittered exponential back-off
/// (<see cref="GeoRelayClientOptions.ReconnectInitial"/>, <see cref="GeoRelayClientOptions.ReconnectMax"/>), for at most
/// <see cref="PublisherClientOptions.ReconnectTimeout"/>. Publishes made meanwhile wait (the window still bounds them).
/// With <see cref="PublisherClientOptions.ExactlyOnce"/> (the default) every request sent and not acknowledged goes out
/// again first, in its original order with the same producer id and sequences, so the leader answers one it already
/// holds with where it is instead of appending it twice; its <see cref="PublishResult"/> says where it really is.
/// Without it such a request fails with <see cref="PublishFailedException"/> (<see cref="PublishFailedException.WasSent"/>
/// true: it may be in the log) and only later publishes go to the new connection. When no node takes the client within
/// the timeout, every publish not yet acknowledged fails, and so does every later one. A refused token, and a request
/// the leader refuses (<see cref="CodecError.Protocol"/>, <see cref="CodecError.TooLarge"/>: sending it again would be
/// refused again), end the client at once the same way. A zero <see cref="PublisherClientOptions.ReconnectTimeout"/>
/// never reconnects.
/// </para>
/// </remarks>
public sealed class PublisherClient : IAsyncDisposable
{
    private readonly PublisherClientOptions _options;
    private readonly ILogger _logger;
    private readonly EndpointDialer _dialer;
    private readonly Task _running;
    // Disposal: ends the reconnect rounds, their back-off and the heartbeats.
    private readonly CancellationTokenSource _stop = new();
    private volatile string _endpoint;

    private readonly Lock _gate = new();
    // Everything below is guarded by _gate.
    private FramedConnection? _connection; // null while reconnecting
    private readonly Dictionary<ulong, PendingPublish> _sent = new();
    private readonly Queue<PendingPublish> _waiting = new();
    private readonly Stack<PendingPublish> _pool = new();
    private readonly List<PendingPublish> _resend = new();
    private long _inFlightBytes;
    private int _inFlightEntries;
    private ulong _nextRequest;
    private ulong _nextSeq = 1;
    private ulong _sends;
    private string? _closedBecause;
    private Exception? _closedCause;
    private bool _disposed;
    private long _heardAtMs; // when the connection last gave a frame, or publishes started waiting on it (TickCount64)

    // Room in the send queue beyond the window, for heartbeats: the window bounds everything else queued.
    private const int HeartbeatRoom = 64 << 10;
    private const int MaxPooled = 1024;

    private PublisherClient(PublisherClientOptions options, ILogger logger, EndpointDialer dialer, FramedConnection connection, string endpoint)
    {
        _options = options;
        _logger = logger;
        _dialer = dialer;
        _connection = connection;
        _endpoint = endpoint;
        ProducerId = options.ExactlyOnce ? NewProducerId() : 0;
        _running = Task.Run(() => RunAsync(connection));
    }

    /// <summary>
    /// Connects to the first of <see cref="GeoRelayClientOptions.Endpoints"/> that takes publishes, trying them in order
    /// and going to the leader a refusing node names first. While nodes answer that none of them leads (an election),
    /// it keeps trying, with back-off, for up to <see cref="PublisherClientOptions.ReconnectTimeout"/>. Throws
    /// <see cref="PublisherConnectException"/> when no endpoint takes it, and <see cref="ClientRefusedException"/> when
    /// one refuses the token (the others would too) or every one refuses this client.
    /// </summary>
    public static Task<PublisherClient> ConnectAsync(PublisherClientOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(options, null, cancellationToken);

    /// <inheritdoc cref="ConnectAsync(PublisherClientOptions, CancellationToken)"/>
    public static async Task<PublisherClient> ConnectAsync(PublisherClientOptions options, ILogger? logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        logger ??= NullLogger.Instance;
        var dialer = new EndpointDialer(options, options.Endpoints, NodeKind.Publisher, new ConnectionOptions
        {
            MaxFrameBytes = options.MaxFrameBytes,
            MaxQueuedBytes = Math.Max(options.MaxInFlightBytes, options.MaxFrameBytes) + HeartbeatRoom,
            HandshakeTimeout = options.ConnectTimeout,
        }, logger);
        try
        {
            var clock = Stopwatch.StartNew();
            string? hint = null;
            for (int round = 1; ; round++)
            {
                var attempt = await DialRoundAsync(dialer, logger, hint, cancellationToken).ConfigureAwait(false);
                if (attempt.Connection is { } connection) return new PublisherClient(options, logger, dialer, connection, attempt.Endpoint);
                if (attempt.Refused is { } refused) throw refused;
                // Only a cluster between leaders is waited for; unreachable endpoints alone fail at once.
                var left = options.ReconnectTimeout - clock.Elapsed;
                if (!attempt.SawNotLeader || left <= TimeSpan.Zero)
                    throw new PublisherConnectException($"no endpoint took publishes ({string.Join(", ", options.Endpoints)}): {attempt.Last?.Message}", attempt.Last);
                hint = attempt.Hint;
                var delay = Min(DelayAfter(options, attempt, round), left);
                PublisherClientLog.Backoff(logger, delay);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            dialer.Dispose();
            throw;
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// The wait before the next dial round. A node that answered NotLeader is up and an election is under way (over in
    /// about a second), so the back-off stops at four times the initial delay instead of growing past the new leader;
    /// the full back-off is for endpoints that do not answer at all.
    /// </summary>
    private static TimeSpan DelayAfter(PublisherClientOptions options, DialRound attempt, int round) =>
        options.ReconnectDelay(attempt.SawNotLeader ? Math.Min(round, 3) : round);

    /// <summary>The outcome of one round of dials: a connection, or why there was none.</summary>
    private readonly record struct DialRound(FramedConnection? Connection, string Endpoint, ClientRefusedException? Refused,
        Exception? Last, bool SawNotLeader, string? Hint);

    /// <summary>
    /// Dials <paramref name="hint"/> (a leader a node named), then the endpoints in order, each at most once, and keeps the
    /// first that takes publishes (any other that connects is closed); a node that refuses with NotLeader and names a
    /// leader not dialed yet is dialed at once. The next endpoint is dialed when the previous dial fails or has not
    /// finished within <see cref="DialStagger"/> (as happy eyeballs does): while an election runs every node refuses,
    /// and a round that waited on the far regions one after another would find the new leader a WAN handshake or more late.
    /// </summary>
    private static async Task<DialRound> DialRoundAsync(EndpointDialer dialer, ILogger logger, string? hint, CancellationToken ct)
    {
        var refusals = new RefusalRound();
        var tried = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var dials = new Dictionary<Task<FramedConnection>, string>();
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(ct); // cancels the rest once one wins
        void Dial(string name)
        {
            if (!tried.Add(name)) return;
            int index = dialer.IndexOf(name);
            dials[index >= 0 ? dialer.DialAsync(index, lost.Token) : dialer.DialAsync(EndpointAddress.Parse(name), lost.Token)] = name;
        }
        var queue = new Queue<string>();
        if (hint is not null) queue.Enqueue(hint);
        for (int i = 0; i < dialer.Count; i++) queue.Enqueue(dialer.Name(i));
        bool DialNext()
        {
            while (queue.TryDequeue(out var name))
            {
                if (tried.Contains(name)) continue;
                Dial(name);
                return true;
            }
            return false;
        }
        DialNext();

        Exception? last = null;
        bool sawNotLeader = false;
        string? learned = null;
        DialRound? won = null;
        while (dials.Count > 0)
        {
            Task<FramedConnection> done;
            if (won is null && queue.Count > 0)
            {
                var stagger = Task.Delay(DialStagger, lost.Token);
                var first = await Task.WhenAny(dials.Keys.Append<Task>(stagger)).ConfigureAwait(false);
                if (first == stagger)
                {
                    if (!stagger.IsCanceled) DialNext();
                    continue;
                }
                done = (Task<FramedConnection>)first;
            }
            else
            {
                done = await Task.WhenAny(dials.Keys).ConfigureAwait(false);
            }
            string name = dials[done];
            dials.Remove(done);
            if (done.IsCompletedSuccessfully)
            {
                if (won is null)
                {
                    PublisherClientLog.Connected(logger, name);
                    won = new DialRound(done.Result, name, null, null, sawNotLeader, learned);
                    await lost.CancelAsync().ConfigureAwait(false);
                }
                else
                {
                    await done.Result.DisposeAsync().ConfigureAwait(false); // a second node took it too: one is enough
                }
                continue;
            }
            var e = done.Exception?.GetBaseException() ?? new OperationCanceledException(ct);
            if (won is not null || ct.IsCancellationRequested) continue;
            if (dials.Count == 0) DialNext(); // failed fast: the next one now
            PublisherClientLog.ConnectFailed(logger, name, e.Message);
            last = e;
            try
            {
                refusals.Failed(name, e);
            }
            catch (ClientRefusedException refused)
            {
                await lost.CancelAsync().ConfigureAwait(false);
                await DrainAsync(dials.Keys).ConfigureAwait(false);
                return new DialRound(null, name, refused, e, sawNotLeader, learned);
            }
            if (e is HandshakeRefusedException { Reason: CodecError.NotLeader } notLeader)
            {
                sawNotLeader = true;
                if (LeaderHint.Find(notLeader.Detail) is { } named)
                {
                    learned = named; // also the first to try next round: it may not have taken publishes yet
                    if (!tried.Contains(named))
                    {
                        PublisherClientLog.Redirected(logger, name, named);
                        Dial(named);
                    }
                }
            }
        }
        ct.ThrowIfCancellationRequested();
        return won ?? new DialRound(null, "", refusals.EveryEndpointRefused, last, sawNotLeader, learned);
    }

    /// <summary>How long a dial may run before the round dials the next endpoint beside it.</summary>
    private static readonly TimeSpan DialStagger = TimeSpan.FromMilliseconds(100);

    /// <summary>Waits for dials that lost the round and closes any that connected anyway.</summary>
    private static async Task DrainAsync(IEnumerable<Task<FramedConnection>> dials)
    {
        foreach (var dial in dials.ToList())
        {
            try { await (await dial.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false); }
            catch (Exception) when (dial.IsFaulted || dial.IsCanceled) { } // lost or cancelled: nothing to close
        }
    }

    /// <summary>
    /// This client's producer id: the leader remembers, through its log, which of its requests (numbered in the order
    /// they are sent) it holds, so a request sent again is never appended twice, even by another leader.
    /// </summary>
    /// <remarks>0 unless <see cref="PublisherClientOptions.ExactlyOnce"/>.</remarks>
    public ulong ProducerId { get; }

    private static ulong NewProducerId()
    {
        Span<byte> bytes = stackalloc byte[8];
        ulong id;
        do
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
            id = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        }
        while (id == 0);
        return id;
    }

    /// <summary>
    /// The endpoint this client publishes to (or, while it reconnects, last published to), as
    /// <see cref="GeoRelayClientOptions.Endpoints"/> spells it, or as a node named the leader.
    /// </summary>
    public string Endpoint => _endpoint;

    /// <summary>Whether the client is between connections, looking for the leader.</summary>
    public bool Reconnecting
    {
        get { lock (_gate) return _connection is null && _closedBecause is null; }
    }

    /// <summary>Bytes of requests sent and not yet acknowledged.</summary>
    public long InFlightBytes
    {
        get { lock (_gate) return _inFlightBytes; }
    }

    /// <summary>Entries sent and not yet acknowledged.</summary>
    public int InFlightEntries
    {
        get { lock (_gate) return _inFlightEntries; }
    }

    /// <summary>Publishes that wait for room in the window (encoded, not sent).</summary>
    public int WaitingPublishes
    {
        get
        {
            lock (_gate)
            {
                int waiting = 0;
                foreach (var p in _waiting)
                    if (p.State == PublishState.Waiting) waiting++;
                return waiting;
            }
        }
    }

    /// <summary>
    /// Publishes one entry; completes with its index once the leader confirms <paramref name="wait"/>. The key and
    /// payload are copied before this returns.
    /// </summary>
    /// <param name="key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
    /// <param name="payload">The entry's bytes.</param>
    /// <param name="wait"><see cref="WaitLevel.Accepted"/>: durable in the leader's log; <see cref="WaitLevel.Committed"/>: durable on a quorum of members.</param>
    /// <param name="cancellationToken">Stops the wait for room in the window; a publish already sent cannot be called back and completes as acknowledged.</param>
    /// <exception cref="PublishFailedException">
    /// No acknowledgement: no node took the client within <see cref="PublisherClientOptions.ReconnectTimeout"/>, the
    /// connection closed for good (a refused token or request, or no reconnect), the client was disposed, or, without
    /// <see cref="PublisherClientOptions.ExactlyOnce"/>, the connection closed after the request was sent.
    /// </exception>
    /// <exception cref="ArgumentException">The key is too long, or the request would pass <see cref="PublisherClientOptions.MaxFrameBytes"/>.</exception>
    public ValueTask<PublishResult> PublishAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, WaitLevel wait = WaitLevel.Accepted,
        CancellationToken cancellationToken = default) =>
        Publish(new RawEntry(key, payload), wait, cancellationToken);

    /// <summary>
    /// Publishes a tombstone for <paramref name="key"/>: the key is deleted (keyed compaction drops it, and the
    /// tombstone itself after <c>tombstone-retention</c>). Otherwise as
    /// <see cref="PublishAsync(ReadOnlyMemory{byte}, ReadOnlyMemory{byte}, WaitLevel, CancellationToken)"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The key is empty or too long.</exception>
    public ValueTask<PublishResult> DeleteAsync(ReadOnlyMemory<byte> key, WaitLevel wait = WaitLevel.Accepted, CancellationToken cancellationToken = default) =>
        Publish(new RawEntry(key, ReadOnlyMemory<byte>.Empty, tombstone: true), wait, cancellationToken);

    /// <summary>
    /// Publishes one entry whose payload is <paramref name="value"/>, written by the serializer
    /// <see cref="GeoRelayClientOptions.Serializers"/> has for <typeparamref name="T"/>; otherwise as
    /// <see cref="PublishAsync(ReadOnlyMemory{byte}, ReadOnlyMemory{byte}, WaitLevel, CancellationToken)"/>.
    /// </summary>
    /// <param name="key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
    /// <param name="value">The value; serialized before this returns.</param>
    /// <param name="wait"><see cref="WaitLevel.Accepted"/>: durable in the leader's log; <see cref="WaitLevel.Committed"/>: durable on a quorum of members.</param>
    /// <param name="cancellationToken">Stops the wait for room in the window; a publish already sent cannot be called back.</param>
    /// <exception cref="InvalidOperationException">The registry has no serializer for <typeparamref name="T"/>.</exception>
    public ValueTask<PublishResult> PublishAsync<T>(ReadOnlyMemory<byte> key, T value, WaitLevel wait = WaitLevel.Accepted,
        CancellationToken cancellationToken = default) =>
        Publish(new TypedEntry<T>(key, value, _options.Serializers.Require<T>()), wait, cancellationToken);

    /// <summary>
    /// Publishes entries as one request: they get consecutive indexes, in list order, and one acknowledgement covers
    /// them all. Otherwise as <see cref="PublishAsync(ReadOnlyMemory{byte}, ReadOnlyMemory{byte}, WaitLevel, CancellationToken)"/>.
    /// </summary>
    /// <param name="entries">At least one entry; copied before this returns.</param>
    /// <param name="wait"><see cref="WaitLevel.Accepted"/>: durable in the leader's log; <see cref="WaitLevel.Committed"/>: durable on a quorum of members.</param>
    /// <param name="cancellationToken">Stops the wait for room in the window; a publish already sent cannot be called back.</param>
    public ValueTask<PublishResult> PublishAsync(IReadOnlyList<PublishEntry> entries, WaitLevel wait = WaitLevel.Accepted,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return Publish(new RawBatch(entries), wait, cancellationToken);
    }

    /// <summary>
    /// Publishes typed entries as one request, as <see cref="PublishAsync(IReadOnlyList{PublishEntry}, WaitLevel, CancellationToken)"/>,
    /// each value written by the serializer <see cref="GeoRelayClientOptions.Serializers"/> has for <typeparamref name="T"/>.
    /// </summary>
    /// <param name="entries">At least one entry; serialized before this returns.</param>
    /// <param name="wait"><see cref="WaitLevel.Accepted"/>: durable in the leader's log; <see cref="WaitLevel.Committed"/>: durable on a quorum of members.</param>
    /// <param name="cancellationToken">Stops the wait for room in the window; a publish already sent cannot be called back.</param>
    public ValueTask<PublishResult> PublishAsync<T>(IReadOnlyList<PublishEntry<T>> entries, WaitLevel wait = WaitLevel.Accepted,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return Publish(new TypedBatch<T>(entries, _options.Serializers.Require<T>()), wait, cancellationToken);
    }

    private ValueTask<PublishResult> Publish<TEntries>(TEntries entries, WaitLevel wait, CancellationToken ct) where TEntries : struct, IPublishEntries
    {
        if (wait is not (WaitLevel.Accepted or WaitLevel.Committed))
            throw new ArgumentOutOfRangeException(nameof(wait), wait, "not a wait level");
        int count = entries.Count;
        if (count == 0) throw new ArgumentException("a publish needs at least one entry", nameof(entries));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (ct.IsCancellationRequested) return ValueTask.FromCanceled<PublishResult>(ct);

        ulong request = Interlocked.Increment(ref _nextRequest);
        var frame = FrameBuffer.Rent();
        try
        {
            int start = FrameWriter.Begin(frame.Writer);
            // Numbered when it gets room (Send), in the order requests go out.
            PublishFrame.WriteHeader(frame.Writer, request, wait, count, new ProducerSequence(ProducerId, 0));
            entries.Write(frame.Writer);
            FrameWriter.End(frame.Writer, start, FrameType.Publish);
            int size = frame.Length - FrameHeader.Size;
            if (size > _options.MaxFrameBytes)
                throw new ArgumentException($"the request would be {size} bytes, more than MaxFrameBytes ({_options.MaxFrameBytes}, the leader's max-frame): publish fewer or smaller entries", nameof(entries));
        }
        catch
        {
            frame.Release();
            throw;
        }

        lock (_gate)
        {
            if (_closedBecause is not null)
            {
                frame.Release();
                return ValueTask.FromException<PublishResult>(new PublishFailedException($"a publish of {count} entries was not sent: {_closedBecause}", wasSent: false, _closedCause));
            }
            var pending = _pool.TryPop(out var pooled) ? pooled : new PendingPublish(this);
            pending.Start(request, frame, count);
            // Taken before anything can complete the publish: the source is reused once its result is read.
            var task = pending.Task;
            if (_waiting.Count == 0 && _connection is not null && HasRoom(pending))
            {
                Send(pending);
            }
            else
            {
                _waiting.Enqueue(pending);
                if (ct.CanBeCanceled) pending.CancelWith(ct, static (state, token) => ((PendingPublish)state!).Owner.CancelWaiting((PendingPublish)state!, token));
            }
            return task;
        }
    }

    /// <summary>Whether the window takes <paramref name="pending"/> now; an empty window takes anything, so an oversized request cannot wait forever.</summary>
    private bool HasRoom(PendingPublish pending) =>
        _sent.Count == 0
        || (_inFlightBytes + pending.Bytes <= _options.MaxInFlightBytes && _inFlightEntries + pending.Entries <= _options.MaxInFlightEntries);

    /// <summary>Hands a publish to the connection (under the lock, so requests go out in the order they got room).</summary>
    private void Send(PendingPublish pending)
    {
        pending.MarkSent(++_sends);
        var frame = pending.Frame!;
        if (ProducerId != 0)
        {
            PublishFrame.SetFirstSeq(frame.Writer.WrittenSpanMutable[FrameHeader.Size..], _nextSeq);
            _nextSeq += (ulong)pending.Entries;
        }
        if (_sent.Count == 0) _heardAtMs = Environment.TickCount64; // the wait for an answer starts now
        _sent.Add(pending.Request, pending);
        _inFlightBytes += pending.Bytes;
        _inFlightEntries += pending.Entries;
        // The connection gets a reference of its own: the bytes stay with the publish, to be sent again after a
        // reconnect. A connection that refuses is closing; the request then goes to the next one (RunAsync).
        pending.OnWire = _connection!.TrySend(frame.AddRef());
    }

    /// <summary>Sends the waiting publishes, oldest first, while the window has room and a connection is up.</summary>
    private void SendWaiting()
    {
        if (_connection is null) return;
        while (_waiting.TryPeek(out var next))
        {
            if (next.State == PublishState.Waiting)
            {
                if (!HasRoom(next)) return;
                Send(next);
            }
            _waiting.Dequeue();
        }
    }

    private void CancelWaiting(PendingPublish pending, CancellationToken ct)
    {
        lock (_gate)
        {
            if (pending.State != PublishState.Waiting) return;
            pending.Fail(new OperationCanceledException($"a publish of {pending.Entries} entries was cancelled while it waited for room; it was not sent", ct));
            // It stays in the queue until it reaches the front; everything behind it may now fit.
            if (_waiting.Peek() == pending) SendWaiting();
        }
    }

    private void OnAck(PublishAck ack)
    {
        lock (_gate)
        {
            if (!_sent.Remove(ack.Request, out var pending)) return;
            Unsent(pending);
            pending.Succeed(new PublishResult(ack.FirstIndex, (int)ack.Count, ack.Level));
            SendWaiting();
        }
    }

    /// <summary>Takes a publish out of the window's count (it was acknowledged or fails).</summary>
    private void Unsent(PendingPublish pending)
    {
        _inFlightBytes -= pending.Bytes;
        _inFlightEntries -= pending.Entries;
    }

    internal void Return(PendingPublish pending)
    {
        lock (_gate)
        {
            if (_pool.Count < MaxPooled) _pool.Push(pending);
        }
    }

    private static PublishFailedException SentButNotAcknowledged(PendingPublish pending, string because, Exception? cause) =>
        new($"a publish of {pending.Entries} entries was sent but not acknowledged: {because}; the leader may have appended it", wasSent: true, cause);

    /// <summary>Stops publishing for good: fails every publish not yet acknowledged, saying whether it was sent.</summary>
    private (int Sent, int Waiting) Close(string because, Exception? cause = null)
    {
        lock (_gate)
        {
            if (_closedBecause is not null) return (0, 0);
            _closedBecause = because;
            _closedCause = cause;
            int sent = _sent.Count, waiting = 0;
            foreach (var pending in _sent.Values)
                pending.Fail(pending.OnWire ? SentButNotAcknowledged(pending, because, cause)
                    : new PublishFailedException($"a publish of {pending.Entries} entries was not sent: {because}", wasSent: false, cause));
            _sent.Clear();
            _inFlightBytes = 0;
            _inFlightEntries = 0;
            while (_waiting.TryDequeue(out var pending))
            {
                if (pending.State != PublishState.Waiting) continue;
                waiting++;
                pending.Fail(new PublishFailedException($"a publish of {pending.Entries} entries was not sent: {because}", wasSent: false, cause));
            }
            return (sent, waiting);
        }
    }

    /// <summary>
    /// The connection is gone and the client will look for the leader: without exactly-once, what reached the
    /// connection fails now (sent again, it could be appended twice). Returns what is held for the next connection.
    /// </summary>
    private (int Held, int Failed, int Waiting) Detach(string because)
    {
        lock (_gate)
        {
            int failed = 0;
            if (ProducerId == 0)
            {
                foreach (var pending in _sent.Values)
                    if (pending.OnWire) _resend.Add(pending);
                foreach (var pending in _resend)
                {
                    _sent.Remove(pending.Request);
                    Unsent(pending);
                    pending.Fail(new PublishFailedException(
                        $"a publish of {pending.Entries} entries was sent but not acknowledged: {because}; the leader may have appended it, so without ExactlyOnce it is not sent again",
                        wasSent: true));
                }
                failed = _resend.Count;
                _resend.Clear();
            }
            int waiting = 0;
            foreach (var pending in _waiting)
                if (pending.State == PublishState.Waiting) waiting++;
            return (_sent.Count, failed, waiting);
        }
    }

    /// <summary>
    /// Publishes over <paramref name="connection"/>: what the last one left unacknowledged first, in the order it
    /// was sent (same request, producer id and sequences: the leader answers what it holds with where it is), then
    /// the publishes that waited. False when the client was closed meanwhile.
    /// </summary>
    private bool Resume(FramedConnection connection, string endpoint, TimeSpan after)
    {
        int resent;
        lock (_gate)
        {
            if (_closedBecause is not null) return false;
            _connection = connection;
            _endpoint = endpoint;
            _heardAtMs = Environment.TickCount64;
            _resend.AddRange(_sent.Values);
            _resend.Sort(static (a, b) => a.SendOrder.CompareTo(b.SendOrder));
            foreach (var pending in _resend)
                pending.OnWire = connection.TrySend(pending.Frame!.AddRef());
            resent = _resend.Count;
            _resend.Clear();
            SendWaiting();
        }
        PublisherClientLog.Reconnected(_logger, endpoint, after, resent);
        return true;
    }

    /// <summary>Reads acknowledgements until the connection closes, then reconnects, until the client is closed.</summary>
    private async Task RunAsync(FramedConnection connection)
    {
        while (true)
        {
            var heartbeats = ClientHeartbeats.SendWhileOpenAsync(connection, _options.HeartbeatInterval, _stop.Token);
            using var watching = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var watchdog = WatchForAnswersAsync(connection, watching.Token);
            var (reason, refusedBy, hint) = await ReadUntilClosedAsync(connection).ConfigureAwait(false);
            await watching.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
            // Publishes from here on wait for the next connection instead of going to this dead one.
            lock (_gate) _connection = null;
            connection.Abort(CodecError.None, "closed");
            await heartbeats.ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
            string endpoint = _endpoint;
            string because = $"the connection to {endpoint} closed ({reason})";
            if (Volatile.Read(ref _disposed)) return;
            if (refusedBy is not null || _options.ReconnectTimeout == TimeSpan.Zero)
            {
                var (sent, waiting) = Close(because, refusedBy);
                PublisherClientLog.ConnectionLost(_logger, endpoint, reason, sent, waiting);
                return;
            }
            var (held, failed, waited) = Detach(because);
            PublisherClientLog.Reconnecting(_logger, endpoint, reason, held, waited, failed, _options.ReconnectTimeout);
            if (hint is not null) PublisherClientLog.Redirected(_logger, endpoint, hint);
            var next = await ReconnectAsync(hint, because).ConfigureAwait(false);
            if (next is null) return;
            connection = next;
        }
    }

    /// <summary>Drops the connection when publishes wait on it and nothing has arrived for <see cref="PublisherClientOptions.AnswerTimeout"/>.</summary>
    private async Task WatchForAnswersAsync(FramedConnection connection, CancellationToken ct)
    {
        var timeout = _options.AnswerTimeout;
        if (timeout <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(timeout / 4);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                bool silent;
                lock (_gate) silent = _sent.Count > 0 && Environment.TickCount64 - _heardAtMs > (long)timeout.TotalMilliseconds;
                if (!silent) continue;
                connection.Abort(CodecError.Timeout, $"no answer for {timeout.TotalSeconds:0.#} s while publishes wait");
                return;
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// Reads until the connection closes. Returns why, what ends the client instead of a reconnect (a refused token as
    /// <see cref="ClientRefusedException"/>; a refused request as <see cref="CodecException"/>), and the leader a
    /// NotLeader close named.
    /// </summary>
    private async Task<(string Reason, Exception? Final, string? Hint)> ReadUntilClosedAsync(FramedConnection connection)
    {
        string? leaderSaid = null, hint = null;
        Exception? final = null;
        string endpoint = _endpoint;
        try
        {
            await connection.ReadLoopAsync(null, frame =>
            {
                Volatile.Write(ref _heardAtMs, Environment.TickCount64);
                switch (frame.Type)
                {
                    case FrameType.PublishAck:
                        OnAck(PublishAck.Read(frame.Payload));
                        break;
                    case FrameType.Error:
                        var error = ErrorFrame.Read(frame.Payload);
                        leaderSaid = $"{error.Code}: {error.Message}";
                        // The token: a new connection with it would be refused too.
                        if (RefusalRound.IsFinalAtOnce(error.Code)) final = new ClientRefusedException(endpoint, error.Code, error.Message);
                        // A request the leader refused would be refused again when sent again.
                        else if (error.Code is CodecError.Protocol or CodecError.TooLarge) final = new CodecException(error.Code, error.Message);
                        else if (error.Code == CodecError.NotLeader) hint = LeaderHint.Find(error.Message);
                        break;
                    case FrameType.Heartbeat:
                        break;
                    default:
                        throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} frame from the leader");
                }
            }).ConfigureAwait(false);
        }
        catch (CodecException e)
        {
            leaderSaid ??= e.Message; // a frame cut short by a dying leader among them: reconnect
        }
        string reason = leaderSaid ?? (connection.CloseReason is { } r ? $"{r.Reason}: {r.Message}" : "closed");
        return (reason, final, hint);
    }

    /// <summary>
    /// Dial rounds, with back-off, until a node takes publishes (then <see cref="Resume"/>), a refusal ends the client,
    /// or <see cref="PublisherClientOptions.ReconnectTimeout"/> passes; null unless a connection was resumed.
    /// </summary>
    private async Task<FramedConnection?> ReconnectAsync(string? hint, string because)
    {
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(_options.ReconnectTimeout);
        Exception? last = null;
        try
        {
            for (int round = 1; ; round++)
            {
                var attempt = await DialRoundAsync(_dialer, _logger, hint, deadline.Token).ConfigureAwait(false);
                if (attempt.Connection is { } connection)
                {
                    if (Resume(connection, attempt.Endpoint, clock.Elapsed)) return connection;
                    await connection.DisposeAsync().ConfigureAwait(false);
                    return null;
                }
                if (attempt.Refused is { } refused)
                {
                    var (sent, waiting) = Close($"{because}, and reconnecting {refused.Message}", refused);
                    PublisherClientLog.ConnectionLost(_logger, refused.Endpoint, refused.Message, sent, waiting);
                    return null;
                }
                last = attempt.Last ?? last;
                hint = attempt.Hint ?? hint;
                var delay = DelayAfter(_options, attempt, round);
                PublisherClientLog.Backoff(_logger, delay);
                await Task.Delay(delay, deadline.Token).ConfigureAwait(false);
            }
        }
        catch (Exception) when (deadline.IsCancellationRequested)
        {
        }
        if (_stop.IsCancellationRequested) return null; // disposed: DisposeAsync failed what was pending
        string timeout = $"{_options.ReconnectTimeout.TotalSeconds:0.###} s";
        var (failedSent, failedWaiting) = Close(
            $"{because}, and the client gave up reconnecting: no endpoint took publishes within ReconnectTimeout ({timeout}){(last is null ? "" : $"; last attempt: {last.Message}")}", last);
        PublisherClientLog.GaveUp(_logger, _options.ReconnectTimeout, failedSent, failedWaiting);
        return null;
    }

    /// <summary>
    /// Closes the connection (or stops reconnecting). Publishes not yet acknowledged fail with
    /// <see cref="PublishFailedException"/> (await them first to have them all acknowledged); later calls throw
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        FramedConnection? connection;
        lock (_gate)
        {
            if (_disposed) return;
            Volatile.Write(ref _disposed, true);
        }
        Close("the publisher was disposed");
        _stop.Cancel();
        lock (_gate) connection = _connection;
        connection?.Abort(CodecError.None, "publisher done");
        await _running.ConfigureAwait(false);
        _dialer.Dispose();
        _stop.Dispose();
    }
}
