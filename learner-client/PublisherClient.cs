using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.LearnerClient;

/// <summary>
/// Publishes entries to the leader over one connection, pipelined: many publishes in flight, each answered with the
/// indexes its entries got. The bytes and entries in flight are bounded; past the bound a publish waits for room.
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
/// A publish is encoded when it is called (the caller may reuse its buffers once the call returns) and sent when
/// the window (<see cref="PublisherClientOptions.MaxInFlightBytes"/>, <see cref="PublisherClientOptions.MaxInFlightEntries"/>)
/// has room, in call order, so entries published one after the other are appended in that order. Its task
/// completes when the leader acknowledges it; each acknowledgement frees room for the publishes waiting. A caller
/// that does not await its publishes holds one encoded request per publish: bound how many it keeps outstanding.
/// There is no reconnect: when the connection closes, every publish not yet acknowledged fails with
/// <see cref="PublishFailedException"/> and so does every later one; connect a new client.
/// </remarks>
public sealed class PublisherClient : IAsyncDisposable
{
    private readonly PublisherClientOptions _options;
    private readonly ILogger _logger;
    private readonly FramedConnection _connection;
    private readonly Task _reading;
    private readonly Task _heartbeats;
    private readonly CancellationTokenSource _stopHeartbeats = new();

    private readonly Lock _gate = new();
    // Everything below is guarded by _gate.
    private readonly Dictionary<ulong, PendingPublish> _sent = new();
    private readonly Queue<PendingPublish> _waiting = new();
    private readonly Stack<PendingPublish> _pool = new();
    private long _inFlightBytes;
    private int _inFlightEntries;
    private ulong _nextRequest;
    private ulong _nextSeq = 1;
    private string? _closedBecause;
    private Exception? _closedCause;
    private bool _disposed;

    // Room in the send queue beyond the window, for heartbeats: the window bounds everything else queued.
    private const int HeartbeatRoom = 64 << 10;
    private const int MaxPooled = 1024;

    private PublisherClient(PublisherClientOptions options, ILogger logger, FramedConnection connection, string endpoint)
    {
        _options = options;
        _logger = logger;
        _connection = connection;
        Endpoint = endpoint;
        ProducerId = options.ExactlyOnce ? NewProducerId() : 0;
        _reading = Task.Run(ReadAsync);
        _heartbeats = ClientHeartbeats.SendWhileOpenAsync(connection, options.HeartbeatInterval, _stopHeartbeats.Token);
    }

    /// <summary>
    /// Connects to the first of <see cref="GeoRelayClientOptions.Endpoints"/> that answers, trying them in order;
    /// throws <see cref="PublisherConnectException"/> when none does, and <see cref="ClientRefusedException"/> when one
    /// refuses the token (the others would too) or every one refuses this client.
    /// </summary>
    public static Task<PublisherClient> ConnectAsync(PublisherClientOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(options, null, cancellationToken);

    /// <inheritdoc cref="ConnectAsync(PublisherClientOptions, CancellationToken)"/>
    public static async Task<PublisherClient> ConnectAsync(PublisherClientOptions options, ILogger? logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        logger ??= NullLogger.Instance;
        using var dialer = new EndpointDialer(options, NodeKind.Publisher, new ConnectionOptions
        {
            MaxFrameBytes = options.MaxFrameBytes,
            MaxQueuedBytes = Math.Max(options.MaxInFlightBytes, options.MaxFrameBytes) + HeartbeatRoom,
            HandshakeTimeout = options.ConnectTimeout,
        });
        Exception? last = null;
        var refusals = new RefusalRound();
        for (int i = 0; i < dialer.Count; i++)
        {
            try
            {
                var connection = await dialer.DialAsync(i, cancellationToken).ConfigureAwait(false);
                PublisherClientLog.Connected(logger, dialer.Name(i));
                return new PublisherClient(options, logger, connection, dialer.Name(i));
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                PublisherClientLog.ConnectFailed(logger, dialer.Name(i), e.Message);
                last = e;
                refusals.Failed(dialer.Name(i), e);
            }
        }
        if (refusals.EveryEndpointRefused is { } refused) throw refused;
        throw new PublisherConnectException($"no endpoint answered ({string.Join(", ", options.Endpoints)}): {last?.Message}", last);
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

    /// <summary>The endpoint, as <see cref="GeoRelayClientOptions.Endpoints"/> spells it, that this client publishes to.</summary>
    public string Endpoint { get; }

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
    /// <exception cref="PublishFailedException">The connection closed, or the client was disposed, before the acknowledgement.</exception>
    /// <exception cref="ArgumentException">The key is too long, or the request would pass <see cref="PublisherClientOptions.MaxFrameBytes"/>.</exception>
    public ValueTask<PublishResult> PublishAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, WaitLevel wait = WaitLevel.Accepted,
        CancellationToken cancellationToken = default) =>
        Publish(new RawEntry(key, payload), wait, cancellationToken);

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
            if (_waiting.Count == 0 && HasRoom(pending))
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
        var frame = pending.TakeFrame(PublishState.Sent);
        if (ProducerId != 0)
        {
            PublishFrame.SetFirstSeq(frame.Writer.WrittenSpanMutable[FrameHeader.Size..], _nextSeq);
            _nextSeq += (ulong)pending.Entries;
        }
        _sent.Add(pending.Request, pending);
        _inFlightBytes += pending.Bytes;
        _inFlightEntries += pending.Entries;
        if (_connection.TrySend(frame)) return;
        // The connection is closing; its read loop fails the rest when it ends.
        _sent.Remove(pending.Request);
        _inFlightBytes -= pending.Bytes;
        _inFlightEntries -= pending.Entries;
        pending.Fail(new PublishFailedException($"a publish of {pending.Entries} entries was not sent: the connection to {Endpoint} is closing", wasSent: false));
    }

    /// <summary>Sends the waiting publishes, oldest first, while the window has room.</summary>
    private void SendWaiting()
    {
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
            pending.TakeFrame(PublishState.Done).Release();
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
            _inFlightBytes -= pending.Bytes;
            _inFlightEntries -= pending.Entries;
            pending.Succeed(new PublishResult(ack.FirstIndex, (int)ack.Count, ack.Level));
            SendWaiting();
        }
    }

    internal void Return(PendingPublish pending)
    {
        lock (_gate)
        {
            if (_pool.Count < MaxPooled) _pool.Push(pending);
        }
    }

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
                pending.Fail(new PublishFailedException(
                    $"a publish of {pending.Entries} entries was sent but not acknowledged: {because}; the leader may have appended it", wasSent: true, cause));
            _sent.Clear();
            _inFlightBytes = 0;
            _inFlightEntries = 0;
            while (_waiting.TryDequeue(out var pending))
            {
                if (pending.State != PublishState.Waiting) continue;
                waiting++;
                pending.TakeFrame(PublishState.Done).Release();
                pending.Fail(new PublishFailedException($"a publish of {pending.Entries} entries was not sent: {because}", wasSent: false, cause));
            }
            return (sent, waiting);
        }
    }

    private async Task ReadAsync()
    {
        string? leaderSaid = null;
        ClientRefusedException? refused = null;
        try
        {
            await _connection.ReadLoopAsync(null, frame =>
            {
                switch (frame.Type)
                {
                    case FrameType.PublishAck:
                        OnAck(PublishAck.Read(frame.Payload));
                        break;
                    case FrameType.Error:
                        var error = ErrorFrame.Read(frame.Payload);
                        leaderSaid = $"{error.Code}: {error.Message}";
                        // The token: a new connection with it would be refused too.
                        if (RefusalRound.IsFinalAtOnce(error.Code)) refused = new ClientRefusedException(Endpoint, error.Code, error.Message);
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
            leaderSaid ??= e.Message;
        }
        string reason = leaderSaid ?? (_connection.CloseReason is { } r ? $"{r.Reason}: {r.Message}" : "closed");
        var (sent, waiting) = Close($"the connection to {Endpoint} closed ({reason})", refused);
        if (!Volatile.Read(ref _disposed)) PublisherClientLog.ConnectionLost(_logger, Endpoint, reason, sent, waiting);
    }

    /// <summary>
    /// Closes the connection. Publishes not yet acknowledged fail with <see cref="PublishFailedException"/> (await
    /// them first to have them all acknowledged); later calls throw <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            Volatile.Write(ref _disposed, true);
        }
        Close("the publisher was disposed");
        _connection.Abort(CodecError.None, "publisher done");
        _stopHeartbeats.Cancel();
        await _reading.ConfigureAwait(false);
        await _heartbeats.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _stopHeartbeats.Dispose();
    }
}
