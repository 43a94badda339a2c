using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.LearnerClient;

/// <summary>
/// Subscribes to a GeoRelay log from a relay or member and hands the application every entry exactly
/// once, in order, across disconnects and endpoint failover.
/// </summary>
/// <example>
/// <code>
/// await using var learner = await LearnerClient.ConnectAsync(options, ct);
/// await foreach (LearnerEntry e in learner.SubscribeAsync(fromIndex: 1, ct))
///     Console.WriteLine($"{e.Index}: {Encoding.UTF8.GetString(e.Payload.Span)}");
/// </code>
/// </example>
/// <remarks>
/// A socket reader fills a bounded buffer (<see cref="LearnerClientOptions.BufferedEntries"/>) that the
/// enumerator drains; when it is full the reader stops reading, so TCP pushes back on the relay. After any
/// disconnect the client reconnects, trying the endpoints in order, and subscribes again from the index
/// after the last one it received (after the last one the relay covered, for a filtered subscription).
/// </remarks>
public sealed partial class LearnerClient : IAsyncDisposable, IDisposable
{
    private readonly LearnerClientOptions _options;
    private readonly ILogger _logger;
    private readonly EndpointDialer _dialer;
    private readonly CancellationTokenSource _disposed = new();
    private (FramedConnection Connection, int Endpoint)? _ready;
    private volatile FramedConnection? _current;
    private int _subscribed;
    private ulong _confirmRequested;
    private ulong _confirmSent;
    private int _confirmScheduled;
    private ulong _lastIndex;
    /// <summary>Truncations the socket reader queued that the enumerator has not reached: entries queued before them above their index are void.</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<ulong> _truncations = new();

    /// <summary>
    /// Creates a client that connects when <see cref="SubscribeAsync"/> starts (for dependency injection);
    /// <see cref="ConnectAsync(LearnerClientOptions, CancellationToken)"/> connects first and fails fast instead.
    /// </summary>
    public LearnerClient(LearnerClientOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _allocate = options.ReuseBuffers
            ? static length => ArrayPool<byte>.Shared.Rent(length)
            : static length => GC.AllocateUninitializedArray<byte>(length);
        // Drawn once per client, so clients given the same local endpoints spread over them.
        _dialer = new EndpointDialer(options, EndpointOrder.For(options, Random.Shared), NodeKind.Learner, new ConnectionOptions
        {
            MaxFrameBytes = options.MaxFrameBytes,
            MaxQueuedBytes = 1 << 20,
            HandshakeTimeout = options.ConnectTimeout,
        }, _logger, options.ReceiveBufferSize);
    }

    /// <summary>
    /// Connects to the first endpoint that answers (local endpoints in this client's order, then the others; a node that
    /// is full or draining may name the one to try next); throws <see cref="LearnerConnectException"/> when none does,
    /// and <see cref="ClientRefusedException"/> when one refuses the token or every one refuses this client.
    /// </summary>
    public static Task<LearnerClient> ConnectAsync(LearnerClientOptions options, CancellationToken cancellationToken = default) =>
        ConnectAsync(options, null, cancellationToken);

    /// <inheritdoc cref="ConnectAsync(LearnerClientOptions, CancellationToken)"/>
    public static async Task<LearnerClient> ConnectAsync(LearnerClientOptions options, ILogger? logger, CancellationToken cancellationToken = default)
    {
        var client = new LearnerClient(options, logger);
        try
        {
            Exception? last = null;
            var started = System.Diagnostics.Stopwatch.StartNew();
            for (int round = 0; ; round++)
            {
                bool onlyRedirected = true;
                var refusals = new RefusalRound();
                var endpoints = new EndpointRound(client._dialer);
                while (endpoints.TryNext(out int i))
                {
                    string name = client._dialer.Name(i);
                    try
                    {
                        client._ready = (await client.DialAsync(i, cancellationToken).ConfigureAwait(false), i);
                        return client;
                    }
                    catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                    {
                        LearnerClientLog.ConnectFailed(client._logger, name, e.Message);
                        last = e;
                        onlyRedirected &= e is HandshakeRefusedException { Reason: CodecError.Shutdown or CodecError.LimitExceeded };
                        refusals.Failed(name, e);
                        client.FollowHint(endpoints, name, e);
                    }
                }
                if (refusals.EveryEndpointRefused is { } refused) throw refused;
                // Every endpoint answered "not now, go elsewhere": the cluster is starting or failing over, or is full.
                if (!onlyRedirected || started.Elapsed >= options.ConnectRetryFor) break;
                var delay = client.Backoff(round + 1);
                LearnerClientLog.Backoff(client._logger, delay);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            }
            throw new LearnerConnectException($"no endpoint answered ({string.Join(", ", client._dialer.Endpoints)}): {last?.Message}", last);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Index of the last entry the enumerator handed to the application; 0 before the first.</summary>
    public ulong LastIndex => Volatile.Read(ref _lastIndex);

    /// <summary>Entries received from the relay that the enumerator has not handed to the application yet.</summary>
    public long BufferedEntries => _budget?.Buffered ?? 0;

    /// <summary>
    /// Entries already received that follow the one the application holds now: 0 means it has everything the node
    /// has sent so far. (<see cref="BufferedEntries"/> still counts a frame's entries until the last is handed out.)
    /// </summary>
    public long EntriesWaiting => Math.Max(0, BufferedEntries - Volatile.Read(ref _handedOfFrame));

    private int _handedOfFrame;

    /// <summary>Completes the first time the socket reader waits for the application to take entries (the buffer is full).</summary>
    internal Task ReadingPaused => _budget?.FirstWait ?? throw new InvalidOperationException("no subscription has started");

    private volatile EntryBudget? _budget;
    private readonly Func<int, byte[]> _allocate;

    /// <summary>The endpoints in the order this client tries them: its local endpoints shuffled, then the others.</summary>
    internal IReadOnlyList<string> DialOrder => _dialer.Endpoints;

    /// <summary>The endpoint of the current connection, or null while reconnecting.</summary>
    public EndPoint? ConnectedEndpoint => _current?.RemoteEndPoint;

    /// <summary>
    /// Streams entries from <paramref name="fromIndex"/> on, exactly once and in order, until
    /// <paramref name="cancellationToken"/> is cancelled or the client is disposed. Ends with
    /// <see cref="SnapshotRequiredException"/> when no endpoint still holds the index it needs, and with
    /// <see cref="ClientRefusedException"/> when an endpoint refuses the token (at once, since every node would) or
    /// every endpoint refuses this client's protocol or cluster, and with <see cref="LogTruncatedException"/> when a
    /// leader change took back entries already handed over (only with <c>delivery: durable</c>). One subscription at a
    /// time per client.
    /// </summary>
    /// <remarks>
    /// <paramref name="fromIndex"/> <see cref="SubscribeFrom.Snapshot"/> starts with a snapshot of the keyed state
    /// (<c>compaction: keyed</c>). A subscription from an index a keyed cluster no longer holds gets one too, instead of
    /// <see cref="SnapshotRequiredException"/>. A snapshot arrives as a begin marker (<see cref="LearnerEntry.IsSnapshotBegin"/>),
    /// the live keys' latest entries (<see cref="LearnerEntry.IsSnapshot"/>) and an end marker; a reconnect resumes the
    /// transfer where it stopped when the node still has that snapshot, or starts a newer one with a new begin marker.
    /// </remarks>
    public async IAsyncEnumerable<LearnerEntry> SubscribeAsync(ulong fromIndex, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        if (Interlocked.Exchange(ref _subscribed, 1) != 0)
            throw new InvalidOperationException("this client already has a subscription running");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        // Whole frames go from the socket reader to the enumerator through a lock-free single-reader queue; the
        // bound is kept in entries by a counter (a bounded channel of entries took a lock per entry on both
        // sides, and the two sides fought over it: a third of a busy learner process's CPU).
        var channel = Channel.CreateUnbounded<DecodedFrame>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = true,
            // The socket reader resumes a waiting enumerator on its own thread instead of queueing it to the
            // thread pool: one hop per frame instead of two. The application's loop body then runs on the
            // reader's thread; while it runs, nothing more is read.
            AllowSynchronousContinuations = true,
        });
        var buffer = _budget = new EntryBudget(_options.BufferedEntries);
        _truncations.Clear();
        ulong handed = fromIndex == SubscribeFrom.Snapshot ? 0 : fromIndex - 1; // the application holds everything below where it subscribes
        var pump = Task.Run(() => PumpAsync(fromIndex, channel.Writer, buffer, stop.Token), CancellationToken.None);
        try
        {
            var reader = channel.Reader;
            // WaitToReadAsync rethrows the pump's failure (SnapshotRequiredException, ClientRefusedException) once the buffer is drained.
            while (await reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    if (frame.IsTruncation)
                    {
                        _truncations.TryDequeue(out _);
                        if (frame.TruncatedAfter < handed) throw new LogTruncatedException(frame.TruncatedAfter, handed);
                        continue;
                    }
                    for (int i = 0; i < frame.Count; i++)
                    {
                        ulong index = frame.Entries[i].Index;
                        if (frame.Entries[i].IsSnapshot)
                        {
                            // Snapshot entries go below the stream's position; the end marker moves it past the snapshot.
                            if (frame.Entries[i].IsSnapshotEnd)
                            {
                                Volatile.Write(ref _lastIndex, index);
                                handed = index;
                            }
                            Volatile.Write(ref _handedOfFrame, i + 1);
                            yield return frame.Entries[i];
                            continue;
                        }
                        if (!_truncations.IsEmpty && Voided(index)) continue; // taken back before the application saw it
                        Volatile.Write(ref _lastIndex, index);
                        Volatile.Write(ref _handedOfFrame, i + 1);
                        handed = index;
                        yield return frame.Entries[i];
                    }
                    buffer.Release(frame.Count);
                    Volatile.Write(ref _handedOfFrame, 0);
                    frame.ReturnBuffers();
                }
            }
        }
        finally
        {
            stop.Cancel();
            await pump.ConfigureAwait(false);
            Volatile.Write(ref _subscribed, 0);
        }
    }

    /// <summary>
    /// As <see cref="SubscribeAsync(ulong, CancellationToken)"/>, with each payload read as a <typeparamref name="T"/>
    /// by the serializer <see cref="GeoRelayClientOptions.Serializers"/> has for it. An entry whose payload the
    /// serializer cannot read ends the enumeration with <see cref="PayloadDeserializationException"/> naming its index.
    /// </summary>
    /// <exception cref="InvalidOperationException">The registry has no serializer for <typeparamref name="T"/> (on the first read).</exception>
    public async IAsyncEnumerable<LearnerEntry<T>> SubscribeAsync<T>(ulong fromIndex, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var serializer = _options.Serializers.Require<T>();
        await foreach (var entry in SubscribeAsync(fromIndex, cancellationToken).ConfigureAwait(false))
        {
            T value;
            try
            {
                value = serializer.Deserialize(entry.Payload);
            }
            catch (Exception e)
            {
                throw new PayloadDeserializationException(entry.Index, typeof(T), entry.Payload.Length, e);
            }
            yield return new LearnerEntry<T>(entry.Index, entry.Epoch, entry.Timestamp, entry.Key, value);
        }
    }

    /// <summary>Whether a truncation queued after the entry takes it back.</summary>
    private bool Voided(ulong index)
    {
        foreach (ulong after in _truncations)
            if (index > after) return true;
        return false;
    }

    /// <summary>
    /// Tells the relay the application has processed everything up to <paramref name="index"/> (shown as the
    /// learner's delivered index in relay status). Cheap to call per entry: confirms are coalesced.
    /// </summary>
    public void Confirm(ulong index)
    {
        ulong seen;
        do
        {
            seen = Interlocked.Read(ref _confirmRequested);
            if (index <= seen) return;
        } while (Interlocked.CompareExchange(ref _confirmRequested, index, seen) != seen);
        if (_options.ConfirmInterval == TimeSpan.Zero)
        {
            SendConfirm(_current);
            return;
        }
        if (Interlocked.Exchange(ref _confirmScheduled, 1) == 0)
            _ = FlushConfirmLaterAsync();
    }

    private async Task FlushConfirmLaterAsync()
    {
        try
        {
            await Task.Delay(_options.ConfirmInterval, _disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Volatile.Write(ref _confirmScheduled, 0);
        SendConfirm(_current);
    }

    private void SendConfirm(FramedConnection? connection)
    {
        ulong index = Interlocked.Read(ref _confirmRequested);
        if (connection is null || index == 0) return;
        if (Interlocked.Exchange(ref _confirmSent, index) >= index) return;
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new Codec.Frames.Confirm(index).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Confirm);
        connection.TrySend(frame);
    }

    /// <summary>
    /// Drops the connection once the node has sent nothing for <paramref name="timeout"/> though it heartbeats: a hung
    /// node (stopped, or stuck) whose kernel keeps the connection up. The read then fails and the client resumes elsewhere.
    /// </summary>
    /// <returns>Whether it dropped the connection.</returns>
    private static async Task<bool> WatchSilenceAsync(FramedConnection connection, TimeSpan timeout, CancellationToken ct)
    {
        long limit = (long)timeout.TotalMilliseconds;
        try
        {
            while (true)
            {
                await Task.Delay(timeout / 4, ct).ConfigureAwait(false);
                long silent = Environment.TickCount64 - connection.LastReceivedMillis;
                if (silent <= limit) continue;
                connection.Abort(CodecError.Timeout, $"nothing from the node for {silent} ms though it heartbeats every second (hung?); resuming elsewhere");
                return true;
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Connects, subscribes, reads, reconnects; completes the channel when done (with the reason when it fails).</summary>
    private async Task PumpAsync(ulong fromIndex, ChannelWriter<DecodedFrame> writer, EntryBudget buffer, CancellationToken ct)
    {
        // A snapshot asked for and not begun yet; once begun, the snapshot being received (0: none) and its next entry.
        bool wantSnapshot = fromIndex == SubscribeFrom.Snapshot;
        var snapshot = new SnapshotProgress();
        ulong next = wantSnapshot ? 1 : fromIndex;
        // The last entry received, named in each Subscribe so a node that took it back meanwhile says so.
        ulong lastIndex = 0, lastEpoch = 0;
        // Per endpoint: the oldest index it reported after answering SnapshotRequired for `next`; 0 when it did not.
        var snapshotOldest = new ulong[_dialer.Count];
        ulong snapshotFor = next;
        int idleRounds = 0;
        // What the node said when it closed the last connection: it may name where to go instead.
        string? closedWith = null;
        // The endpoint that just went silent on us: left out of the next round's first pass.
        int hung = -1;
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                if (snapshotFor != next)
                {
                    Array.Clear(snapshotOldest);
                    snapshotFor = next;
                }
                var (connection, endpoint) = TakeReady() ?? await ConnectRoundsAsync(snapshotOldest, wantSnapshot || snapshot.Through != 0 ? SubscribeFrom.Snapshot : next, closedWith, hung, ct).ConfigureAwait(false);
                closedWith = null;
                hung = -1;
                string name = _dialer.Name(endpoint);
                bool progressed = false, snapshotRequired = false;
                using var connectionDone = new CancellationTokenSource();
                var heartbeats = ClientHeartbeats.SendWhileOpenAsync(connection, _options.HeartbeatInterval, connectionDone.Token);
                var silence = (connection.PeerCapabilities & Capabilities.LearnerHeartbeats) != 0 && _options.SilenceTimeout > TimeSpan.Zero
                    ? WatchSilenceAsync(connection, _options.SilenceTimeout, connectionDone.Token) : Task.FromResult(false);
                try
                {
                    SendSubscribe(connection, next, lastIndex, lastEpoch, wantSnapshot, snapshot);
                    _current = connection;
                    Interlocked.Exchange(ref _confirmSent, 0);
                    SendConfirm(connection);
                    LearnerClientLog.Subscribed(_logger, name, next);
                    while (true)
                    {
                        var (type, bytes, length) = await connection.ReadOneFrameAsync(_allocate, ct).ConfigureAwait(false);
                        var payload = new ReadOnlyMemory<byte>(bytes, 0, length);
                        if (type == FrameType.SnapshotChunk)
                        {
                            var frame = DecodeSnapshotChunk(payload, ref snapshot, _options.ReuseBuffers ? bytes : null, out ulong? ended);
                            if (ended is { } through)
                            {
                                LearnerClientLog.SnapshotReceived(_logger, name, through);
                                next = through + 1;
                                (lastIndex, lastEpoch) = (0, 0); // a snapshot's state is committed: nothing to compare
                                wantSnapshot = false;
                            }
                            buffer.Take(frame.Count);
                            writer.TryWrite(frame);
                            await buffer.WaitForRoomAsync(ct).ConfigureAwait(false);
                            progressed = true;
                        }
                        else if (type == FrameType.Deliver)
                        {
                            if (snapshot.Through != 0 || wantSnapshot)
                                throw new CodecException(CodecError.Protocol, "Deliver in the middle of a snapshot transfer");
                            var frame = Decode(payload, next, _options.ReuseBuffers ? bytes : null, out ulong through);
                            if (frame.Count > 0)
                            {
                                var last = frame.Entries[frame.Count - 1];
                                next = last.Index + 1;
                                (lastIndex, lastEpoch) = (last.Index, last.Epoch);
                                buffer.Take(frame.Count);
                                writer.TryWrite(frame);
                                await buffer.WaitForRoomAsync(ct).ConfigureAwait(false);
                            }
                            else
                            {
                                frame.ReturnBuffers();
                            }
                            if (through + 1 > next) next = through + 1;
                            progressed = true;
                        }
                        else if (type == FrameType.Truncated)
                        {
                            ulong after = Codec.Frames.Truncated.Read(new ReadOnlySequence<byte>(payload)).After;
                            LearnerClientLog.Truncated(_logger, name, after, next);
                            if (after + 1 < next) next = after + 1;
                            if (lastIndex > after) (lastIndex, lastEpoch) = (0, 0);
                            // Queued before the marker, so entries already buffered above `after` are voided before they are handed over.
                            _truncations.Enqueue(after);
                            writer.TryWrite(DecodedFrame.Truncation(after));
                        }
                        else if (type == FrameType.SnapshotRequired)
                        {
                            var required = SnapshotRequired.Read(new ReadOnlySequence<byte>(payload));
                            snapshotOldest[endpoint] = Math.Max(1, required.OldestIndex);
                            snapshotRequired = true;
                            LearnerClientLog.SnapshotRequired(_logger, name, next, required.OldestIndex);
                            break;
                        }
                        else if (type == FrameType.Error)
                        {
                            var error = ErrorFrame.Read(new ReadOnlySequence<byte>(payload));
                            // A token refused (at Subscribe, or expired or revoked later) is refused everywhere.
                            if (RefusalRound.IsFinalAtOnce(error.Code)) throw new ClientRefusedException(name, error.Code, error.Message);
                            LearnerClientLog.ClosedByRelay(_logger, name, error.Code, error.Message, next);
                            closedWith = error.Message;
                            _options.Disconnected?.Invoke(error.Code, error.Message);
                            break;
                        }
                        else if (type != FrameType.Heartbeat)
                        {
                            throw new CodecException(CodecError.Protocol, $"unexpected {type} frame from a relay");
                        }
                    }
                }
                catch (Exception e) when (!ct.IsCancellationRequested && e is CodecException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
                {
                    // Dropped here (a silent node): our reason, not the read's.
                    string why = connection.CloseReason?.Message ?? e.Message;
                    LearnerClientLog.Disconnected(_logger, name, why, next);
                    _options.Disconnected?.Invoke(null, why);
                }
                finally
                {
                    _current = null;
                    connectionDone.Cancel();
                    await heartbeats.ConfigureAwait(false);
                    if (await silence.ConfigureAwait(false)) hung = endpoint;
                    await connection.DisposeAsync().ConfigureAwait(false);
                }
                // A connection that delivered nothing counts as a failure, so a relay that keeps dropping
                // us at once is retried with back-off rather than in a tight loop.
                if (progressed || snapshotRequired) idleRounds = 0;
                else await Task.Delay(Backoff(++idleRounds), ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            writer.TryComplete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
        }
    }

    private (FramedConnection, int)? TakeReady()
    {
        var ready = _ready;
        _ready = null;
        return ready;
    }

    /// <summary>
    /// Tries the endpoints in order (one that a refusal, or <paramref name="closedWith"/>, names first), skipping those
    /// that said they no longer hold <paramref name="next"/>; backs off between failed rounds. When a round fails and
    /// some endpoint said SnapshotRequired, no reachable endpoint holds the index: throws
    /// <see cref="SnapshotRequiredException"/>. A final refusal (see <see cref="RefusalRound"/>) throws
    /// <see cref="ClientRefusedException"/>.
    /// </summary>
    private async Task<(FramedConnection, int)> ConnectRoundsAsync(ulong[] snapshotOldest, ulong next, string? closedWith, int hung, CancellationToken ct)
    {
        for (int round = 1; ; round++)
        {
            ulong oldest = ulong.MaxValue;
            var refusals = new RefusalRound();
            var endpoints = new EndpointRound(_dialer);
            if (round == 1)
            {
                endpoints.Follow(closedWith);
                endpoints.Skip(hung);
            }
            while (endpoints.TryNext(out int i))
            {
                if (snapshotOldest[i] != 0)
                {
                    oldest = Math.Min(oldest, snapshotOldest[i]);
                    continue;
                }
                try
                {
                    return (await DialAsync(i, ct).ConfigureAwait(false), i);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    string name = _dialer.Name(i);
                    LearnerClientLog.ConnectFailed(_logger, name, e.Message);
                    refusals.Failed(name, e);
                    FollowHint(endpoints, name, e);
                }
            }
            if (oldest != ulong.MaxValue)
                throw next == SubscribeFrom.Snapshot ? SnapshotRequiredException.NoSnapshot(oldest) : new SnapshotRequiredException(next, oldest);
            if (refusals.EveryEndpointRefused is { } refused) throw refused;
            var delay = Backoff(round);
            LearnerClientLog.Backoff(_logger, delay);
            await Task.Delay(delay, ct).ConfigureAwait(false);
        }
    }

    private TimeSpan Backoff(int failures) => _options.ReconnectDelay(failures);

    /// <summary>A node that refused as full or draining may name others of its datacenter: the first this client knows goes next.</summary>
    private void FollowHint(EndpointRound endpoints, string refusedBy, Exception failure)
    {
        if (failure is HandshakeRefusedException refused && endpoints.Follow(refused.Detail) is { } next)
            LearnerClientLog.Redirected(_logger, refusedBy, next);
    }

    private async Task<FramedConnection> DialAsync(int endpoint, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        return await _dialer.DialAsync(endpoint, stop.Token).ConfigureAwait(false);
    }

    private void SendSubscribe(FramedConnection connection, ulong next, ulong lastIndex, ulong lastEpoch, bool wantSnapshot, SnapshotProgress snapshot)
    {
        var prefix = _options.KeyPrefix is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(_options.KeyPrefix);
        var flags = Interlocked.Read(ref _confirmRequested) > 0 ? SubscribeFlags.Confirms : SubscribeFlags.None;
        var subscribe = snapshot.Through != 0
            ? new Subscribe(snapshot.Next, prefix, flags | SubscribeFlags.Snapshot, 0, 0, snapshot.Through) // resume the transfer
            : wantSnapshot ? new Subscribe(1, prefix, flags | SubscribeFlags.Snapshot)
            : new Subscribe(next, prefix, flags, lastIndex, lastEpoch);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        subscribe.Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Subscribe);
        connection.TrySend(frame);
    }

    /// <summary>
    /// Decodes a Deliver frame: its entries at or after <paramref name="next"/> (Key and Payload slice
    /// <paramref name="payload"/>), and the frame's <c>through</c>. With <paramref name="pooledPayload"/> (the pooled
    /// array <paramref name="payload"/> lies in) the entries' array comes from the pool too, and the frame gives both
    /// back. A frame that starts after <paramref name="next"/> would leave a gap: refused.
    /// </summary>
    internal static DecodedFrame Decode(ReadOnlyMemory<byte> payload, ulong next, byte[]? pooledPayload, out ulong through)
    {
        var reader = DeliverFrame.Read(new ReadOnlySequence<byte>(payload), out ulong first, out ulong count, out through);
        if (first > next)
            throw new CodecException(CodecError.Protocol, $"Deliver starts at {first} but {next} is next: that would be a gap");
        bool pooled = pooledPayload is not null;
        if (count == 0) return new DecodedFrame([], 0, false, pooledPayload);
        // The count was checked against the frame's bytes; sized from it, the array needs no copy (a list did,
        // and copying entries, which hold references, was a tenth of a busy learner's CPU).
        int size = (int)Math.Min(count, MaxEntriesPresized);
        var entries = pooled ? ArrayPool<LearnerEntry>.Shared.Rent(size) : new LearnerEntry[size];
        int n = 0;
        while (reader.TryNext(out var e))
        {
            if (e.Index < next) continue; // already handed over before a reconnect
            if (n == entries.Length)
            {
                var larger = pooled ? ArrayPool<LearnerEntry>.Shared.Rent(n * 2) : new LearnerEntry[n * 2];
                entries.AsSpan(0, n).CopyTo(larger);
                if (pooled) ArrayPool<LearnerEntry>.Shared.Return(entries, clearArray: true);
                entries = larger;
            }
            entries[n++] = new LearnerEntry(e.Index, e.Epoch, LearnerEntry.FromMicros(e.TimestampMicros),
                e.Key.IsEmpty ? ReadOnlyMemory<byte>.Empty : e.Key.First, e.Payload.IsEmpty ? ReadOnlyMemory<byte>.Empty : e.Payload.First,
                e.IsTombstone ? LearnerEntryFlags.Tombstone : LearnerEntryFlags.None);
        }
        return new DecodedFrame(entries, n, pooled, pooledPayload);
    }

    /// <summary>The snapshot being received: its index (0: none) and the next of its entries this client needs.</summary>
    internal struct SnapshotProgress
    {
        public ulong Through;
        public ulong Next;
    }

    /// <summary>
    /// Decodes a SnapshotChunk: a begin marker when it starts a snapshot, the entries this client does not have yet
    /// (marked <see cref="LearnerEntryFlags.Snapshot"/>), an end marker when it is the last; <paramref name="ended"/> is
    /// then the snapshot's index. A chunk of a snapshot that was never begun is refused.
    /// </summary>
    internal static DecodedFrame DecodeSnapshotChunk(ReadOnlyMemory<byte> payload, ref SnapshotProgress progress, byte[]? pooledPayload, out ulong? ended)
    {
        var reader = SnapshotChunkFrame.Read(new ReadOnlySequence<byte>(payload), out ulong through, out var flags, out _, out _, out ulong count);
        var entries = new List<LearnerEntry>((int)Math.Min(count, MaxEntriesPresized) + 2);
        if ((flags & SnapshotChunkFlags.Begin) != 0)
        {
            progress = new SnapshotProgress { Through = through, Next = 1 };
            entries.Add(Marker(through, LearnerEntryFlags.SnapshotBegin));
        }
        else if (progress.Through == 0 || progress.Through != through)
        {
            throw new CodecException(CodecError.Protocol, $"a chunk of the snapshot at {through} without its beginning");
        }
        while (reader.TryNext(out var e))
        {
            if (e.Index > through) throw new CodecException(CodecError.Protocol, $"snapshot entry {e.Index} is past the snapshot's index {through}");
            if (e.Index < progress.Next) continue; // sent again after a resume
            entries.Add(new LearnerEntry(e.Index, e.Epoch, LearnerEntry.FromMicros(e.TimestampMicros),
                e.Key.IsEmpty ? ReadOnlyMemory<byte>.Empty : e.Key.First, e.Payload.IsEmpty ? ReadOnlyMemory<byte>.Empty : e.Payload.First,
                LearnerEntryFlags.Snapshot | (e.IsTombstone ? LearnerEntryFlags.Tombstone : LearnerEntryFlags.None)));
            progress.Next = e.Index + 1;
        }
        ended = null;
        if ((flags & SnapshotChunkFlags.End) != 0)
        {
            entries.Add(Marker(through, LearnerEntryFlags.SnapshotEnd));
            progress = default;
            ended = through;
        }
        return new DecodedFrame(entries.ToArray(), entries.Count, false, pooledPayload);
    }

    private static LearnerEntry Marker(ulong through, LearnerEntryFlags which) =>
        new(through, 0, DateTimeOffset.UnixEpoch, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty, LearnerEntryFlags.Snapshot | which);

    /// <summary>One Deliver frame's entries on their way to the enumerator, with the pooled arrays to give back after.</summary>
    internal readonly record struct DecodedFrame(LearnerEntry[] Entries, int Count, bool PooledEntries, byte[]? Pooled)
    {
        /// <summary>Not entries: the node took back what it sent above <see cref="TruncatedAfter"/>.</summary>
        public bool IsTruncation { get; private init; }
        public ulong TruncatedAfter { get; private init; }

        public static DecodedFrame Truncation(ulong after) => new([], 0, false, null) { IsTruncation = true, TruncatedAfter = after };

        public void ReturnBuffers()
        {
            if (PooledEntries) ArrayPool<LearnerEntry>.Shared.Return(Entries, clearArray: true);
            if (Pooled is not null) ArrayPool<byte>.Shared.Return(Pooled);
        }
    }

    private const int MaxEntriesPresized = 1 << 16;

    /// <summary>Ends the subscription (its enumeration completes) and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested) return;
        _disposed.Cancel();
        _dialer.Dispose();
        var ready = TakeReady();
        if (ready is { } r) await r.Item1.DisposeAsync().ConfigureAwait(false);
        _current?.Abort(CodecError.Shutdown, "learner client disposed");
    }

    /// <inheritdoc cref="DisposeAsync"/>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Entries handed to the enumerator and not yet consumed. The socket reader stops once
    /// <see cref="LearnerClientOptions.BufferedEntries"/> are waiting (whole frames, so it may pass the bound by
    /// one frame) and goes on when the enumerator has brought them under half.
    /// </summary>
    private sealed class EntryBudget(int limit)
    {
        private readonly SemaphoreSlim _room = new(0);
        private long _buffered;
        private int _readerWaiting;

        public long Buffered => Volatile.Read(ref _buffered);

        private readonly TaskCompletionSource _firstWait = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task FirstWait => _firstWait.Task;

        public void Take(int entries) => Interlocked.Add(ref _buffered, entries);

        public void Release(int entries)
        {
            long left = Interlocked.Add(ref _buffered, -entries);
            if (left <= limit / 2 && Interlocked.Exchange(ref _readerWaiting, 0) == 1) _room.Release();
        }

        public async ValueTask WaitForRoomAsync(CancellationToken ct)
        {
            while (Volatile.Read(ref _buffered) >= limit)
            {
                Volatile.Write(ref _readerWaiting, 1);
                // Re-checked after raising the flag: the enumerator may have drained in between (a spare wake-up
                // that may follow is harmless, the loop checks again).
                if (Volatile.Read(ref _buffered) <= limit / 2)
                {
                    Volatile.Write(ref _readerWaiting, 0);
                    return;
                }
                _firstWait.TrySetResult();
                await _room.WaitAsync(ct).ConfigureAwait(false);
            }
        }
    }
}
