using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.ComponentModel;
using System.Security.Authentication;
using GeoRelay.Server.Security;
using GeoRelay.Engines;
using GeoRelay.Transport;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Drives one sans-IO engine over real sockets: accept loops, dials, a read loop per connection,
/// and a tick timer that sleeps until the engine's next deadline. Every engine call happens under one lock, followed by running its commands.
/// </summary>
public sealed partial class EngineHost : IEngineEnvironment, IAsyncDisposable
{
    private IEngine _engine = null!;
    private readonly Func<string, EndPoint?> _resolve;
    private readonly ConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<int, (FramedConnection Connection, PeerInfo Peer)> _connections = new();
    private readonly List<Socket> _listeners = new();
    private readonly List<Task> _loops = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TimeSpan _tick;
    private readonly HostSecurity _security;
    private readonly ConnectionCounts _counts;
    private readonly Dictionary<int, ConnectionGuard> _guards = new();

    public EngineHost(Func<string, EndPoint?> resolveNode, ConnectionOptions options, ILogger? logger = null, TimeSpan? tick = null,
        HostSecurity? security = null)
    {
        _resolve = resolveNode;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _tick = tick ?? TimeSpan.FromMilliseconds(1);
        _security = security ?? HostSecurity.None;
        _counts = new ConnectionCounts(options.MaxConnectionsPerPort, options.MaxConnectionsPerAddress);
    }

    /// <summary>Connections refused or cut by a limit, a failed TLS handshake or authentication, by reason.</summary>
    public RefusalCounters Refusals { get; } = new();

    /// <summary>Connections accepted and not yet closed (handshaking included), on one port.</summary>
    public int OpenConnections(PortKind port) => _counts.OnPort(port);

    /// <summary>Connects the engine (it needs this host as its environment, so it comes after construction).</summary>
    public void Attach(IEngine engine) => _engine = engine;

    /// <summary>Runs after every batch of engine commands, under the engine's lock (watermark waiters hook in here).</summary>
    public Action? AfterDrain { get; set; }

    /// <summary>When set, publish-port connections stop reading while it returns false (TCP back-pressure).</summary>
    public Func<bool>? PublishCapacity { get; set; }

    private TaskCompletionSource _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ValueTask WaitForPublishCapacity()
    {
        lock (_gate)
        {
            if (PublishCapacity is null || PublishCapacity()) return ValueTask.CompletedTask;
            if (_capacity.Task.IsCompleted) _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);
            return new ValueTask(_capacity.Task.WaitAsync(_stopping.Token));
        }
    }

    public long NowMicros => _clock.ElapsedTicks * 1_000_000 / Stopwatch.Frequency;

    public long QueuedBytes(int connection) =>
        _connections.TryGetValue(connection, out var c) ? c.Connection.QueuedBytes : 0;

    public int ConnectionCount
    {
        get { lock (_gate) return _connections.Count; }
    }

    /// <summary>Snapshot of live connections, for status pages.</summary>
    public List<(PeerInfo Peer, EndPoint? Remote, long BytesSent, long BytesReceived, long Queued)> Connections()
    {
        lock (_gate)
        {
            var list = new List<(PeerInfo, EndPoint?, long, long, long)>(_connections.Count);
            foreach (var (_, (c, p)) in _connections)
                list.Add((p, c.RemoteEndPoint, Interlocked.Read(ref c.BytesSent), Interlocked.Read(ref c.BytesReceived), c.QueuedBytes));
            return list;
        }
    }

    /// <summary>Runs <paramref name="action"/> against the engine under its lock, then its commands.</summary>
    public T Invoke<T>(Func<IEngine, T> action)
    {
        lock (_gate)
        {
            var result = action(_engine);
            Settle();
            return result;
        }
    }

    public EndPoint Listen(EndPoint endPoint, PortKind port)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(endPoint);
        socket.Listen(1024);
        _listeners.Add(socket);
        var bound = socket.LocalEndPoint!;
        EngineHostLog.Listening(_logger, port.ToString(), bound);
        _loops.Add(Task.Run(() => AcceptLoopAsync(socket, port)));
        return bound;
    }

    public void Start()
    {
        _loops.Add(Task.Run(TickLoopAsync));
        var syncStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() => SyncLoop(syncStopped)) { IsBackground = true, Name = "georelay-sync" }.Start();
        _loops.Add(syncStopped.Task);
    }

    // The engine's group fsync runs on a thread of its own, never under the engine's lock: a member kept reading
    // and appending while the disk synced, instead of every frame waiting out the previous frame's fsync.
    private readonly SemaphoreSlim _syncRequested = new(0);
    private Action? _pendingSync; // under _gate

    private void SyncLoop(TaskCompletionSource stopped)
    {
        try
        {
            while (true)
            {
                _syncRequested.Wait(_stopping.Token);
                Action? flush;
                lock (_gate) (flush, _pendingSync) = (_pendingSync, null);
                if (flush is null) continue;
                try
                {
                    flush();
                }
                catch (Exception e)
                {
                    // Stopping closed the log under us: the stop flushes it itself.
                    if (_stopping.IsCancellationRequested) break;
                    // The engine stays waiting for this sync, so it acks nothing the disk may have lost.
                    EngineHostLog.SyncFailed(_logger, e);
                    continue;
                }
                lock (_gate)
                {
                    if (_stopping.IsCancellationRequested) break;
                    _engine.OnSynced();
                    Settle();
                }
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            stopped.TrySetResult();
        }
    }

    private const long SweepMicros = 100_000;
    // Wakes the tick loop early when an event brought the engine's next tick forward.
    private readonly SemaphoreSlim _wake = new(0);
    private long _timerDueMicros; // when the tick loop next wakes; under _gate
    private long _lastTimerTickMicros = long.MinValue / 2;

    /// <summary>A timer this much later than asked for is logged: the process was not running.</summary>
    private const long LateTickMicros = 200_000;

    /// <summary>
    /// Ticks the engine when its <see cref="IEngine.NextTickMicros"/> comes due, and sleeps until then (or until an
    /// event brings it forward): an idle node wakes only for its timers and the connection sweep. Timer ticks are
    /// at least the tick interval apart, so an engine that always has work is ticked at that rate, not in a spin.
    /// </summary>
    private async Task TickLoopAsync()
    {
        long minSpacing = (long)_tick.TotalMicroseconds;
        long nextSweep = 0;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                long wait;
                lock (_gate)
                {
                    long now = NowMicros;
                    long due = _engine.NextTickMicros;
                    if (due <= now && now - _lastTimerTickMicros >= minSpacing)
                    {
                        _lastTimerTickMicros = now;
                        _engine.OnTick();
                        Drain();
                        due = _engine.NextTickMicros;
                    }
                    due = Math.Min(Math.Max(due, _lastTimerTickMicros + minSpacing), nextSweep);
                    _timerDueMicros = due;
                    wait = due - NowMicros;
                }
                if (NowMicros >= nextSweep)
                {
                    nextSweep = NowMicros + SweepMicros;
                    SweepIdleAndExpired(Environment.TickCount64);
                    continue;
                }
                // Timed waits count whole milliseconds: round up, or a sub-millisecond wait would spin.
                if (wait <= 0) continue;
                long waitMillis = Math.Min(SweepMicros / 1000, (wait + 999) / 1000);
                long wakeAt = NowMicros + waitMillis * 1000;
                await _wake.WaitAsync((int)waitMillis, _stopping.Token).ConfigureAwait(false);
                // A timer that fires far too late means this process was not running (a GC pause, an overloaded
                // machine): peers may read the silence as a failure, so say so where the operator will look.
                long late = NowMicros - wakeAt;
                if (late > LateTickMicros) EngineHostLog.LateTick(_logger, late / 1000);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// After an engine call (lock held): runs its commands, ticks it at once when that left work waiting (an entry
    /// is sent as soon as it is appended, not at the next timer), and wakes the tick loop if its timer moved closer.
    /// </summary>
    private void Settle()
    {
        Drain();
        long due = _engine.NextTickMicros;
        if (due <= NowMicros)
        {
            _engine.OnTick();
            Drain();
            due = _engine.NextTickMicros;
        }
        if (due < _timerDueMicros && _wake.CurrentCount == 0) _wake.Release();
    }

    /// <summary>Cuts connections that sent nothing for the idle timeout, and token holders whose token expired.</summary>
    private void SweepIdleAndExpired(long nowMillis)
    {
        long idleMillis = (long)_options.IdleTimeout.TotalMilliseconds;
        var utcNow = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            foreach (var (id, (connection, peer)) in _connections)
            {
                if (connection.CloseReason is not null) continue;
                // Peers we dialed are watched by the engines' own failure detection.
                if (peer.Port != PortKind.Outbound && nowMillis - connection.LastReceivedMillis > idleMillis)
                    Cut(connection, peer, RefusalKind.IdleTimeout, CodecError.Timeout, $"nothing received for {idleMillis} ms");
                else if (_guards.TryGetValue(id, out var guard) && guard.Claims is { } claims && claims.Expires <= utcNow)
                    Cut(connection, peer, RefusalKind.TokenExpired, CodecError.Unauthorized, $"token for '{claims.Subject}' expired at {claims.Expires:u}");
            }
        }
    }

    private void Cut(FramedConnection connection, PeerInfo peer, RefusalKind kind, CodecError reason, string message)
    {
        Refusals.Add(kind);
        EngineHostLog.LimitBroken(_logger, peer.NodeId, connection.RemoteEndPoint, kind, message);
        connection.Close(reason, message);
    }

    private async Task AcceptLoopAsync(Socket listener, PortKind port)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested) return;
                continue;
            }
            _ = Task.Run(() => AcceptOneAsync(socket, port));
        }
    }

    private async Task AcceptOneAsync(Socket socket, PortKind port)
    {
        var remote = socket.RemoteEndPoint as IPEndPoint;
        var admitted = _counts.TryOpen(port, remote?.Address, out var full);
        if (admitted is null)
        {
            RefuseAtCapacity(socket, port, full);
            return;
        }
        try
        {
            await AcceptAdmittedAsync(socket, port).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing a client sends may take the daemon down or leak its socket: log, count, close.
            Refusals.Add(RefusalKind.BadFrame);
            EngineHostLog.AcceptFailed(_logger, socket.RemoteEndPoint, e);
            socket.Dispose();
        }
        finally
        {
            _counts.Close(port, admitted);
        }
    }

    /// <summary>Over a connection limit: a plain port gets an Error frame; TLS ports are just closed (no TLS spent on them).</summary>
    private void RefuseAtCapacity(Socket socket, PortKind port, RefusalKind full)
    {
        Refusals.Add(full);
        string message = full == RefusalKind.PortFull
            ? $"the {port} port already has {_options.MaxConnectionsPerPort} connections"
            : $"{(socket.RemoteEndPoint as IPEndPoint)?.Address} already has {_options.MaxConnectionsPerAddress} connections";
        EngineHostLog.Refused(_logger, socket.RemoteEndPoint, CodecError.LimitExceeded, message);
        try
        {
            if (!_security.UsesTls(port))
            {
                var frame = new System.Buffers.ArrayBufferWriter<byte>(128);
                var error = new System.Buffers.ArrayBufferWriter<byte>(96);
                new ErrorFrame(CodecError.LimitExceeded, message).Write(error);
                FrameWriter.Write(frame, FrameType.Error, FrameFlags.None, error.WrittenSpan);
                socket.Blocking = false;
                socket.Send(frame.WrittenSpan, SocketFlags.None, out _);
            }
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }

    private async Task AcceptAdmittedAsync(Socket socket, PortKind port)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(_options.HandshakeTimeout);
        string? certifiedNode = null;
        SslStream? tls = null;
        if (_security.UsesTls(port))
        {
            bool peerPort = port == PortKind.Peer;
            tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
            try
            {
                await tls.AuthenticateAsServerAsync(_security.Tls!.ServerOptions(requireClientCertificate: peerPort), deadline.Token).ConfigureAwait(false);
                if (peerPort)
                {
                    if (tls.RemoteCertificate is not System.Security.Cryptography.X509Certificates.X509Certificate2 cert)
                        throw new AuthenticationException("the peer presented no certificate");
                    certifiedNode = NodeTls.NodeIdOf(cert);
                }
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException or Win32Exception)
            {
                bool timedOut = e is OperationCanceledException && !_stopping.IsCancellationRequested;
                Refusals.Add(timedOut ? RefusalKind.HandshakeTimeout : RefusalKind.Tls);
                EngineHostLog.Refused(_logger, socket.RemoteEndPoint, timedOut ? CodecError.Timeout : CodecError.Unauthorized,
                    timedOut ? $"no TLS handshake within {_options.HandshakeTimeout.TotalMilliseconds:0} ms" : "TLS handshake failed: " + e.Message);
                await tls.DisposeAsync().ConfigureAwait(false);
                socket.Dispose();
                return;
            }
        }
        var connection = new FramedConnection(socket, _options, tls);
        connection.StartWriting();
        Hello hello;
        TokenClaims? claims = null;
        RefusalKind refusal = RefusalKind.HandshakeRefused;
        try
        {
            Hello local;
            lock (_gate) local = _engine.LocalHello;
            (hello, _) = await Handshake.AcceptAsync(connection, local, h =>
            {
                if (certifiedNode is not null && h.NodeId != certifiedNode)
                {
                    refusal = RefusalKind.Tls;
                    return new CodecException(CodecError.Unauthorized, $"certificate is for node '{certifiedNode}' but the handshake claims '{h.NodeId}'");
                }
                var scope = _security.RequiredScope(port);
                if (scope != TokenScopes.None)
                {
                    claims = _security.Tokens!.Verify(h.Auth.Span, DateTimeOffset.UtcNow, out string error);
                    if (claims is null || (claims.Scopes & scope) == 0)
                    {
                        refusal = RefusalKind.Unauthorized;
                        return new CodecException(CodecError.Unauthorized, claims is null ? error : $"token for '{claims.Subject}' does not allow {scope}");
                    }
                }
                lock (_gate) return _engine.CheckPeer(h, port);
            }, _options.HandshakeTimeout, deadline.Token).ConfigureAwait(false);
            ClearAuth(hello);
        }
        catch (Exception e) when (e is CodecException or OperationCanceledException or IOException or SocketException)
        {
            var (reason, message) = e is CodecException ce ? (ce.Reason, ce.Message) : (CodecError.Protocol, e.Message);
            if (e is OperationCanceledException && !_stopping.IsCancellationRequested)
            {
                (reason, message) = (CodecError.Timeout, $"no handshake within {_options.HandshakeTimeout.TotalMilliseconds:0} ms");
                connection.Close(reason, message); // tells a slow but honest client why
                refusal = RefusalKind.HandshakeTimeout;
            }
            else if (reason == CodecError.Timeout) refusal = RefusalKind.HandshakeTimeout;
            else if (reason == CodecError.TooLarge) refusal = RefusalKind.FrameTooLarge;
            Refusals.Add(refusal);
            EngineHostLog.Refused(_logger, connection.RemoteEndPoint, reason, message);
            await connection.DisposeAsync().ConfigureAwait(false);
            return;
        }
        var guard = new ConnectionGuard(port, claims, _options.MaxSubscribesPerSecond);
        await RunConnectionAsync(connection, new PeerInfo(hello.NodeId, hello.Kind, hello.Epoch, port), guard).ConfigureAwait(false);
    }

    /// <summary>The token has been checked: its bytes need not linger in memory.</summary>
    private static void ClearAuth(in Hello hello)
    {
        if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(hello.Auth, out var segment) && segment.Array is not null)
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(segment.AsSpan());
    }

    private async Task DialAsync(string nodeId)
    {
        var endPoint = _resolve(nodeId);
        if (endPoint is null)
        {
            lock (_gate)
            {
                _engine.OnDialFailed(nodeId, "no address for node");
                Settle();
            }
            return;
        }
        FramedConnection? connection = null;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            cts.CancelAfter(_options.HandshakeTimeout);
            connection = _security.Tls is { } tls
                ? await FramedConnection.ConnectTlsAsync(endPoint, _options, tls.ClientOptions(nodeId, expectedNodeId: nodeId), cts.Token).ConfigureAwait(false)
                : await FramedConnection.ConnectAsync(endPoint, _options, cts.Token).ConfigureAwait(false);
            connection.StartWriting();
            Hello local;
            lock (_gate) local = _engine.LocalHello;
            var welcome = await Handshake.DialAsync(connection, local, _options.HandshakeTimeout, cts.Token).ConfigureAwait(false);
            if (welcome.NodeId != nodeId)
                throw new CodecException(CodecError.UnknownNode, $"dialed {nodeId} at {endPoint} but {welcome.NodeId} answered");
            await RunConnectionAsync(connection, new PeerInfo(welcome.NodeId, welcome.Kind, welcome.Epoch, PortKind.Outbound), null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CodecException or HandshakeRefusedException or OperationCanceledException or IOException or SocketException or AuthenticationException)
        {
            if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
            if (_stopping.IsCancellationRequested) return;
            EngineHostLog.DialFailed(_logger, nodeId, endPoint.ToString() ?? "", e.Message);
            lock (_gate)
            {
                _engine.OnDialFailed(nodeId, e.Message);
                Settle();
            }
        }
    }

    private async Task RunConnectionAsync(FramedConnection connection, PeerInfo peer, ConnectionGuard? guard)
    {
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested) { connection.Abort(CodecError.Shutdown, "stopping"); return; }
            _connections[connection.Id] = (connection, peer);
            if (guard is not null) _guards[connection.Id] = guard;
            _engine.OnConnected(connection.Id, peer);
            Settle();
        }
        EngineHostLog.Connected(_logger, peer.NodeId, peer.Kind.ToString(), connection.RemoteEndPoint);
        bool guarded = false;
        try
        {
            await connection.ReadLoopAsync(peer.Port == PortKind.Publish ? WaitForPublishCapacity : null, frame =>
            {
                if (guard?.Check(frame, Environment.TickCount64) is { } refused)
                {
                    guarded = true;
                    Refusals.Add(refused.Kind);
                    EngineHostLog.LimitBroken(_logger, peer.NodeId, connection.RemoteEndPoint, refused.Kind, refused.Error.Message);
                    throw refused.Error;
                }
                lock (_gate)
                {
                    try
                    {
                        _engine.OnFrame(connection.Id, frame);
                    }
                    finally
                    {
                        Settle();
                    }
                }
            }).ConfigureAwait(false);
        }
        catch (CodecException e)
        {
            if (!guarded) Refusals.Add(e.Reason == CodecError.TooLarge ? RefusalKind.FrameTooLarge : RefusalKind.BadFrame);
            EngineHostLog.BadFrame(_logger, peer.NodeId, connection.RemoteEndPoint, e.Reason, e.Message);
        }
        catch (Exception e)
        {
            EngineHostLog.EngineFailed(_logger, peer.NodeId, e);
            connection.Close(CodecError.Protocol, "internal error");
        }
        lock (_gate)
        {
            _connections.Remove(connection.Id);
            RecordClosedTraffic(connection, peer);
            _guards.Remove(connection.Id);
            _engine.OnDisconnected(connection.Id);
            Settle();
        }
        var reason = connection.CloseReason;
        EngineHostLog.Disconnected(_logger, peer.NodeId, connection.RemoteEndPoint, reason is null ? "closed" : $"{reason.Value.Reason}: {reason.Value.Message}");
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Runs the engine's commands; called with the lock held.</summary>
    private void Drain()
    {
        var outbox = _engine.Outbox;
        for (int i = 0; i < outbox.Count; i++)
        {
            var command = outbox[i];
            switch (command.Kind)
            {
                case CommandKind.Send:
                    if (_connections.TryGetValue(command.Connection, out var target))
                        target.Connection.TrySend(command.Buffer!);
                    else
                        command.Buffer!.Release();
                    break;
                case CommandKind.Close:
                    if (_connections.TryGetValue(command.Connection, out var closing))
                        closing.Connection.Close(command.Reason, command.Text ?? "");
                    break;
                case CommandKind.Dial:
                    if (!_stopping.IsCancellationRequested)
                        _ = Task.Run(() => DialAsync(command.Text!));
                    break;
                case CommandKind.Sync:
                    _pendingSync = command.Work;
                    _syncRequested.Release();
                    break;
            }
        }
        outbox.Clear();
        AfterDrain?.Invoke();
        if (PublishCapacity is not null && !_capacity.Task.IsCompleted && PublishCapacity()) _capacity.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        foreach (var l in _listeners) l.Dispose();
        List<FramedConnection> open;
        lock (_gate)
        {
            open = new List<FramedConnection>();
            foreach (var (_, (c, _)) in _connections) open.Add(c);
        }
        foreach (var c in open) c.Close(CodecError.Shutdown, "node is stopping");
        try { await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        // The host owns the key and certificates it was given: clear them.
        _security.Tokens?.Dispose();
        _security.Tls?.Dispose();
        EngineHostLog.RuntimeSummary(_logger, GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            (long)GC.GetTotalPauseDuration().TotalMilliseconds, (long)Environment.CpuUsage.TotalTime.TotalMilliseconds);
    }
}
