using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Transport;

public sealed record ConnectionOptions
{
    /// <summary>Largest frame payload accepted, in bytes. Default 16 MiB.</summary>
    public int MaxFrameBytes { get; init; } = 16 << 20;

    /// <summary>Bytes queued for sending before the connection is cut as a slow consumer. Default 64 MiB.</summary>
    public long MaxQueuedBytes { get; init; } = 64L << 20;

    /// <summary>Time allowed for the handshake (TLS and Hello together). Default 5 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A listener closes a connection that has sent nothing for this long. Default 60 s.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A listener closes a connection whose frame, once its first bytes arrived, is not complete this much later (see
    /// <see cref="FramedConnection.PartialFrameSinceMillis"/>): any byte resets the idle timer, so without this a peer
    /// sending a byte at a time could hold a connection forever. Default 10 s.
    /// </summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Open connections (handshaking included) one listening port takes. Default 10000.</summary>
    public int MaxConnectionsPerPort { get; init; } = 10_000;

    /// <summary>Open connections one remote IP address may hold on one listening port. Default 1000.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 1_000;

    /// <summary>
    /// After a close, how long the peer has to read what is still queued (the closing Error frame last) before
    /// the socket is aborted and the queue dropped, so a peer that stopped reading cannot hold its backlog. Default 5 s.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Subscribe requests one learner connection may send per second. Default 10.</summary>
    public int MaxSubscribesPerSecond { get; init; } = 10;

    public static ConnectionOptions Default { get; } = new();
}

/// <summary>
/// A framed TCP connection: one read loop over a pipe; frames queued for sending are written at once by the
/// caller with non-blocking sends while the socket takes them, else by a write loop with gathered sends.
/// </summary>
public sealed partial class FramedConnection : IAsyncDisposable
{
    private static int s_nextId;

    private readonly Socket _socket;
    private readonly Stream _stream;
    // Set when the stream is TLS: writes go through it instead of gathered socket sends.
    private readonly bool _secure;
    private long _lastReceivedMillis = Environment.TickCount64;
    private long _partialFrameSinceMillis;
    private long _partialFrameBytes;
    private readonly PipeReader _input;
    private readonly ConnectionOptions _options;
    private readonly ConcurrentQueue<FrameBuffer> _sendQueue = new();
    private readonly SemaphoreSlim _sendSignal = new(0);
    // 1 while a wake-up of the write loop is pending: producers signal the semaphore only on the 0 -> 1 step,
    // so a busy writer costs a fan-out one interlocked exchange per frame, not a semaphore release.
    private int _wakePending;
    private readonly CancellationTokenSource _closed = new();
    private long _queuedBytes;
    private int _closing;
    private Task? _writeLoop;
    private Timer? _closeDeadline;

    public int Id { get; } = Interlocked.Increment(ref s_nextId);
    public EndPoint? RemoteEndPoint { get; }
    public long QueuedBytes => Volatile.Read(ref _queuedBytes);
    public long BytesSent;
    public long BytesReceived;

    /// <summary>Why the connection closed, once it has.</summary>
    public (CodecError Reason, string Message)? CloseReason { get; private set; }

    public CancellationToken Closed => _closed.Token;

    /// <summary><see cref="Environment.TickCount64"/> when bytes last arrived (or the connection opened).</summary>
    public long LastReceivedMillis => Interlocked.Read(ref _lastReceivedMillis);

    /// <summary>What both sides of the handshake support (the Welcome's capabilities), on the dialing side.</summary>
    public Capabilities PeerCapabilities { get; internal set; }

    /// <summary>
    /// The protocol version the handshake chose (either side); 0 before it. <see cref="ReadLoopAsync(Func{ValueTask}?, Action{Frame, bool})"/>
    /// refuses frame types newer than it (before a handshake, newer than <see cref="ProtocolVersion.LocalMax"/>).
    /// </summary>
    public ushort Version { get; internal set; }

    /// <summary>
    /// <see cref="Environment.TickCount64"/> when the first bytes of a frame that has not arrived whole were read by
    /// <see cref="ReadLoopAsync"/>, or 0 when no frame is partly read. The clock stops while the loop itself holds
    /// off reading (back-pressure): only the peer's slowness counts.
    /// </summary>
    public long PartialFrameSinceMillis => Interlocked.Read(ref _partialFrameSinceMillis);

    /// <summary>Bytes of the partly read frame received so far (for the message when it is cut).</summary>
    public long PartialFrameBytes => Interlocked.Read(ref _partialFrameBytes);

    /// <summary>A connection over <paramref name="socket"/>; with <paramref name="secureStream"/> (an authenticated SslStream over it) every byte goes through that.</summary>
    public FramedConnection(Socket socket, ConnectionOptions options, Stream? secureStream = null)
    {
        _socket = socket;
        _socket.NoDelay = true;
        _options = options;
        RemoteEndPoint = socket.RemoteEndPoint;
        _secure = secureStream is not null;
        _stream = secureStream ?? new NetworkStream(socket, ownsSocket: false);
        // Synchronous sends return WouldBlock instead of waiting (async reads and sends are unaffected). After the
        // NetworkStream: its constructor refuses a non-blocking socket.
        if (!_secure) _socket.Blocking = false;
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
    }

    public static async Task<FramedConnection> ConnectAsync(EndPoint endPoint, ConnectionOptions options, CancellationToken ct)
    {
        var socket = new Socket(endPoint.AddressFamily == AddressFamily.Unspecified ? AddressFamily.InterNetwork : endPoint.AddressFamily,
            SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            return new FramedConnection(socket, options);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects and authenticates TLS as a client; the handshake timeout bounds both (via <paramref name="ct"/>).</summary>
    public static async Task<FramedConnection> ConnectTlsAsync(EndPoint endPoint, ConnectionOptions options,
        System.Net.Security.SslClientAuthenticationOptions tls, CancellationToken ct)
    {
        var socket = new Socket(endPoint.AddressFamily == AddressFamily.Unspecified ? AddressFamily.InterNetwork : endPoint.AddressFamily,
            SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            return await SecureAsync(socket, options, tls, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Runs the TLS client handshake over a connected socket and wraps it (the socket is not disposed on failure).</summary>
    public static async Task<FramedConnection> SecureAsync(Socket socket, ConnectionOptions options,
        System.Net.Security.SslClientAuthenticationOptions tls, CancellationToken ct)
    {
        var stream = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await stream.AuthenticateAsClientAsync(tls, ct).ConfigureAwait(false);
            return new FramedConnection(socket, options, stream);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public void StartWriting() => _writeLoop ??= Task.Run(WriteLoopAsync);

    /// <summary>
    /// Queues a frame buffer (the caller's reference moves to the connection). Past the queue bound the
    /// connection is cut with SlowConsumer and false is returned.
    /// </summary>
    public bool TrySend(FrameBuffer buffer)
    {
        if (_closing != 0)
        {
            buffer.Release();
            return false;
        }
        long queued = Interlocked.Add(ref _queuedBytes, buffer.Length);
        if (queued > _options.MaxQueuedBytes)
        {
            Interlocked.Add(ref _queuedBytes, -buffer.Length);
            buffer.Release();
            Abort(CodecError.SlowConsumer, $"more than {_options.MaxQueuedBytes} bytes queued and unread");
            return false;
        }
        _sendQueue.Enqueue(buffer);
        // Write now when nobody else is: a hand-off to the write loop costs a thread wake-up per frame, which on a
        // busy machine is most of a frame's latency (and, for a relay, of its CPU across hundreds of learners).
        if (!_secure && TryClaimWriter())
        {
            bool leftOver = WriteInline();
            ReleaseWriter();
            if (leftOver || !_sendQueue.IsEmpty || _closing != 0) WakeWriter();
            return true;
        }
        WakeWriter();
        return true;
    }

    private void WakeWriter()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0) _sendSignal.Release();
    }

    // 1 while the write loop or an inline sender owns the send side. A compare-and-swap, not a lock: every frame a
    // fan-out queues claims it, and a contended Monitor spun and slept on it (a quarter of a busy relay's CPU).
    private int _writing;
    private FrameBuffer? _head; // a frame an inline send wrote only part of, and how much: the write loop finishes it
    private int _headSent;

    private bool TryClaimWriter() => Interlocked.CompareExchange(ref _writing, 1, 0) == 0;

    // A full fence: the caller looks at the queue next, and must not see it as it was before the release.
    private void ReleaseWriter() => Interlocked.Exchange(ref _writing, 0);

    /// <summary>Sends queued frames without blocking; true when the socket would block (or failed) and the write loop must go on.</summary>
    private bool WriteInline()
    {
        if (_head is not null) return true;
        while (_sendQueue.TryDequeue(out var buffer))
        {
            var bytes = buffer.Memory.Span;
            int sent = 0;
            while (sent < bytes.Length)
            {
                int n = _socket.Send(bytes[sent..], SocketFlags.None, out var error);
                if (error != SocketError.Success)
                {
                    // Would block, or failed: the write loop finishes the frame (and meets a failure itself).
                    (_head, _headSent) = (buffer, sent);
                    return true;
                }
                sent += n;
            }
            Written(buffer.Length);
            buffer.Release();
        }
        return false;
    }

    private void Written(long bytes)
    {
        if (Interlocked.Add(ref _queuedBytes, -bytes) == 0) Interlocked.Exchange(ref _drained, null)?.TrySetResult();
        Interlocked.Add(ref BytesSent, bytes);
    }

    /// <summary>
    /// Sends an Error frame (best effort) after what is queued, then closes; aborts if the peer has not read it
    /// all within <see cref="ConnectionOptions.CloseTimeout"/>.
    /// </summary>
    public void Close(CodecError reason, string message)
    {
        if (CloseReason is null) CloseReason = (reason, message);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new ErrorFrame(reason, message).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Error);
        if (!TrySend(frame)) return;
        if (Interlocked.CompareExchange(ref _closing, 1, 0) != 0) return;
        _sendSignal.Release();
        if (_writeLoop is not null)
            _closeDeadline = new Timer(static state => ((FramedConnection)state!).AbortUnread(), this, _options.CloseTimeout, Timeout.InfiniteTimeSpan);
    }

    private void AbortUnread()
    {
        if (_writeLoop is null || _writeLoop.IsCompleted) return;
        long unread = QueuedBytes;
        var (reason, message) = CloseReason ?? (CodecError.Timeout, "closing");
        CloseReason = (reason, $"{message}; {unread} bytes still unread {_options.CloseTimeout.TotalMilliseconds:0} ms after the close, aborted");
        Abort(reason, message);
    }

    /// <summary>Closes now, dropping what is queued.</summary>
    public void Abort(CodecError reason, string message)
    {
        if (CloseReason is null) CloseReason = (reason, message);
        Interlocked.Exchange(ref _closing, 2);
        _closeDeadline?.Dispose();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        _closed.Cancel();
        _sendSignal.Release();
    }

    private async Task WriteLoopAsync()
    {
        var segments = new List<ArraySegment<byte>>(64);
        var inFlight = new List<FrameBuffer>(64);
        try
        {
            while (true)
            {
                await _sendSignal.WaitAsync().ConfigureAwait(false);
                // Cleared before draining: a frame queued from here on signals again.
                Interlocked.Exchange(ref _wakePending, 0);
                if (_closing == 2) break;
                // An inline sender holds the send side; it wakes the loop again when it leaves work or sees a close.
                if (!TryClaimWriter()) continue;
                try
                {
                    await FinishHeadAsync().ConfigureAwait(false);
                    await SendQueuedAsync(segments, inFlight).ConfigureAwait(false);
                }
                finally
                {
                    ReleaseWriter();
                }
                if (_closing == 1 && _sendQueue.IsEmpty) break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or NotSupportedException)
        {
            CloseReason ??= (CodecError.Protocol, "send failed: " + e.Message);
        }
        finally
        {
            // Nothing is sent after this: later TrySend calls release their buffer at once.
            Interlocked.Exchange(ref _closing, 2);
            _closeDeadline?.Dispose();
            ReleaseQueued(inFlight);
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
            _closed.Cancel();
            Interlocked.Exchange(ref _drained, null)?.TrySetResult();
        }
    }

    /// <summary>Finishes the frame an inline send left half written.</summary>
    private async Task FinishHeadAsync()
    {
        if (_head is not { } head) return;
        while (_headSent < head.Length)
            _headSent += await _socket.SendAsync(head.Memory[_headSent..], SocketFlags.None).ConfigureAwait(false);
        _head = null;
        Written(head.Length);
        head.Release();
    }

    /// <summary>Sends until the queue is empty, gathering up to 256 frames or 1 MiB into one socket send.</summary>
    private async Task SendQueuedAsync(List<ArraySegment<byte>> segments, List<FrameBuffer> inFlight)
    {
        while (_closing != 2)
        {
            long bytes = 0;
            while (inFlight.Count < 256 && bytes < 1 << 20 && _sendQueue.TryDequeue(out var buffer))
            {
                inFlight.Add(buffer);
                if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(buffer.Memory, out var segment))
                    segments.Add(segment);
                bytes += buffer.Length;
            }
            if (inFlight.Count == 0) return;
            if (_secure)
            {
                foreach (var segment in segments) await _stream.WriteAsync(segment.AsMemory()).ConfigureAwait(false);
                await _stream.FlushAsync().ConfigureAwait(false);
            }
            else
            {
                await _socket.SendAsync(segments, SocketFlags.None).ConfigureAwait(false);
            }
            Written(bytes);
            foreach (var b in inFlight) b.Release();
            segments.Clear();
            inFlight.Clear();
        }
    }

    /// <summary>Drops what was taken for a send that did not complete and what is still queued, and uncounts it.</summary>
    private void ReleaseQueued(List<FrameBuffer> inFlight)
    {
        long dropped = 0;
        foreach (var b in inFlight)
        {
            dropped += b.Length;
            b.Release();
        }
        inFlight.Clear();
        if (Interlocked.Exchange(ref _head, null) is { } head)
        {
            dropped += head.Length;
            head.Release();
        }
        while (_sendQueue.TryDequeue(out var b))
        {
            dropped += b.Length;
            b.Release();
        }
        Interlocked.Add(ref _queuedBytes, -dropped);
    }

    private TaskCompletionSource? _drained;

    /// <summary>Completes once everything queued so far has been written to the socket, or the connection has closed.</summary>
    public Task WhenDrainedAsync()
    {
        if (QueuedBytes == 0 || _closed.IsCancellationRequested) return Task.CompletedTask;
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var current = Interlocked.CompareExchange(ref _drained, waiter, null) ?? waiter;
        // The write loop may have emptied the queue between the check and the registration.
        if (QueuedBytes == 0 || _closed.IsCancellationRequested) current.TrySetResult();
        return current.Task;
    }

    /// <summary>Reads one frame (a client's way, or during the handshake); its payload is copied out.</summary>
    public async Task<(FrameType Type, byte[] Payload)> ReadOneFrameAsync(CancellationToken ct)
    {
        var (type, payload, _) = await ReadOneFrameAsync(static length => GC.AllocateUninitializedArray<byte>(length), ct).ConfigureAwait(false);
        return (type, payload);
    }

    /// <summary>
    /// As <see cref="ReadOneFrameAsync(CancellationToken)"/>, copying the payload into an array from
    /// <paramref name="allocate"/> (asked for at least the payload's length, which the frame reader has already
    /// checked against the frame limit); returns the array and the payload's length in it.
    /// </summary>
    /// <remarks>Pooled: a learner reads every frame through this, so no Task is allocated per frame.</remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(FrameType Type, byte[] Buffer, int Length)> ReadOneFrameAsync(Func<int, byte[]> allocate, CancellationToken ct)
    {
        while (true)
        {
            var result = await _input.ReadAsync(ct).ConfigureAwait(false);
            Interlocked.Exchange(ref _lastReceivedMillis, Environment.TickCount64);
            var buffer = result.Buffer;
            if (FrameReader.TryRead(ref buffer, _options.MaxFrameBytes, out var frame))
            {
                int length = (int)frame.Payload.Length;
                var copy = allocate(length);
                frame.Payload.CopyTo(copy);
                Interlocked.Add(ref BytesReceived, FrameHeader.Size + length);
                _input.AdvanceTo(buffer.Start);
                return (frame.Type, copy, length);
            }
            if (result.IsCompleted)
                throw CodecException.Truncated("connection closed during the handshake; frame");
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>
    /// Calls <paramref name="onFrame"/> for every frame until the peer closes or something is wrong.
    /// The frame's payload is only valid during the call. Bad input closes the connection with its reason.
    /// </summary>
    public Task ReadLoopAsync(Func<ValueTask>? beforeRead, Action<Frame> onFrame) =>
        ReadLoopAsync(beforeRead, (frame, _) => onFrame(frame));

    /// <summary>
    /// As <see cref="ReadLoopAsync(Func{ValueTask}?, Action{Frame})"/>, telling <paramref name="onFrame"/> whether another
    /// whole frame follows in the bytes already read: a receiver can act once on a burst (natural batching).
    /// </summary>
    public async Task ReadLoopAsync(Func<ValueTask>? beforeRead, Action<Frame, bool> onFrame)
    {
        try
        {
            while (true)
            {
                if (beforeRead is not null) await HoldOffAsync(beforeRead()).ConfigureAwait(false);
                var result = await _input.ReadAsync(_closed.Token).ConfigureAwait(false);
                Interlocked.Exchange(ref _lastReceivedMillis, Environment.TickCount64);
                var buffer = result.Buffer;
                long before = buffer.Length;
                int frames = 0;
                ushort version = Version != 0 ? Version : ProtocolVersion.LocalMax;
                if (FrameReader.TryRead(ref buffer, _options.MaxFrameBytes, version, out var frame))
                {
                    while (true)
                    {
                        // Look one frame ahead; a bad one is reported only after the good frame before it is handled.
                        bool more;
                        Frame next = default;
                        CodecException? bad = null;
                        try { more = FrameReader.TryRead(ref buffer, _options.MaxFrameBytes, version, out next); }
                        catch (CodecException e) { more = false; bad = e; }
                        onFrame(frame, more);
                        frames++;
                        if (bad is not null) throw bad;
                        if (!more) break;
                        frame = next;
                    }
                }
                Interlocked.Add(ref BytesReceived, before - buffer.Length);
                // A frame's clock starts with its first bytes: bytes left after a complete frame began in this read.
                if (buffer.Length == 0) Interlocked.Exchange(ref _partialFrameSinceMillis, 0);
                else if (frames > 0 || PartialFrameSinceMillis == 0) Interlocked.Exchange(ref _partialFrameSinceMillis, Environment.TickCount64);
                Interlocked.Exchange(ref _partialFrameBytes, buffer.Length);
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    // A frame cut short is the peer's fault only if we did not close first (a frame-timeout cut always leaves one).
                    if (buffer.Length > 0 && CloseReason is null)
                        throw CodecException.Truncated("connection closed inside a frame; frame");
                    CloseReason ??= (CodecError.None, "peer closed the connection");
                    break;
                }
            }
        }
        catch (CodecException e)
        {
            Close(e.Reason, e.Detail);
            throw;
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or NotSupportedException)
        {
            CloseReason ??= (CodecError.Protocol, "receive failed: " + e.Message);
        }
    }

    /// <summary>Waits while the caller holds off reading; a partly read frame's clock restarts afterwards.</summary>
    private async ValueTask HoldOffAsync(ValueTask wait)
    {
        if (wait.IsCompleted)
        {
            await wait.ConfigureAwait(false);
            return;
        }
        bool partial = Interlocked.Exchange(ref _partialFrameSinceMillis, 0) != 0;
        await wait.ConfigureAwait(false);
        if (partial) Interlocked.Exchange(ref _partialFrameSinceMillis, Environment.TickCount64);
    }

    public async ValueTask DisposeAsync()
    {
        if (_closing == 0) Interlocked.Exchange(ref _closing, 1);
        _sendSignal.Release();
        if (_writeLoop is not null)
        {
            try { await _writeLoop.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
            catch (TimeoutException) { }
        }
        _closed.Cancel();
        _closeDeadline?.Dispose();
        // A TrySend that raced the write loop's end may have queued after its last sweep.
        if (_writeLoop is null || _writeLoop.IsCompleted) ReleaseQueued([]);
        await _input.CompleteAsync().ConfigureAwait(false);
        _stream.Dispose();
        _socket.Dispose();
    }
}
