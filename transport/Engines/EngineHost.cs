using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Transport.Engines;

/// <summary>
/// Drives one sans-IO engine over real sockets: accept loops, dials, a read loop per connection,
/// and a tick timer. Every engine call happens under one lock, followed by running its commands.
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

    public EngineHost(Func<string, EndPoint?> resolveNode, ConnectionOptions options, ILogger? logger = null, TimeSpan? tick = null)
    {
        _resolve = resolveNode;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _tick = tick ?? TimeSpan.FromMilliseconds(1);
    }

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
            Drain();
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
        TransportLog.Listening(_logger, port.ToString(), bound);
        _loops.Add(Task.Run(() => AcceptLoopAsync(socket, port)));
        return bound;
    }

    public void Start() => _loops.Add(Task.Run(TickLoopAsync));

    private async Task TickLoopAsync()
    {
        using var timer = new PeriodicTimer(_tick);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                lock (_gate)
                {
                    _engine.OnTick();
                    Drain();
                }
            }
        }
        catch (OperationCanceledException) { }
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
        var connection = new FramedConnection(socket, _options);
        connection.StartWriting();
        Hello hello;
        try
        {
            Hello local;
            lock (_gate) local = _engine.LocalHello;
            (hello, _) = await Handshake.AcceptAsync(connection, local, h =>
            {
                lock (_gate) return _engine.CheckPeer(h, port);
            }, _options.HandshakeTimeout, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CodecException or OperationCanceledException or IOException or SocketException)
        {
            var (reason, message) = e is CodecException ce ? (ce.Reason, ce.Message) : (CodecError.Protocol, e.Message);
            TransportLog.Refused(_logger, connection.RemoteEndPoint, reason, message);
            await connection.DisposeAsync().ConfigureAwait(false);
            return;
        }
        await RunConnectionAsync(connection, new PeerInfo(hello.NodeId, hello.Kind, hello.Epoch, port)).ConfigureAwait(false);
    }

    private async Task DialAsync(string nodeId)
    {
        var endPoint = _resolve(nodeId);
        if (endPoint is null)
        {
            lock (_gate)
            {
                _engine.OnDialFailed(nodeId, "no address for node");
                Drain();
            }
            return;
        }
        FramedConnection? connection = null;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            cts.CancelAfter(_options.HandshakeTimeout);
            connection = await FramedConnection.ConnectAsync(endPoint, _options, cts.Token).ConfigureAwait(false);
            connection.StartWriting();
            Hello local;
            lock (_gate) local = _engine.LocalHello;
            var welcome = await Handshake.DialAsync(connection, local, _options.HandshakeTimeout, cts.Token).ConfigureAwait(false);
            if (welcome.NodeId != nodeId)
                throw new CodecException(CodecError.UnknownNode, $"dialed {nodeId} at {endPoint} but {welcome.NodeId} answered");
            await RunConnectionAsync(connection, new PeerInfo(welcome.NodeId, welcome.Kind, welcome.Epoch, PortKind.Outbound)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CodecException or HandshakeRefusedException or OperationCanceledException or IOException or SocketException)
        {
            if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
            if (_stopping.IsCancellationRequested) return;
            TransportLog.DialFailed(_logger, nodeId, endPoint.ToString() ?? "", e.Message);
            lock (_gate)
            {
                _engine.OnDialFailed(nodeId, e.Message);
                Drain();
            }
        }
    }

    private async Task RunConnectionAsync(FramedConnection connection, PeerInfo peer)
    {
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested) { connection.Abort(CodecError.Shutdown, "stopping"); return; }
            _connections[connection.Id] = (connection, peer);
            _engine.OnConnected(connection.Id, peer);
            Drain();
        }
        TransportLog.Connected(_logger, peer.NodeId, peer.Kind.ToString(), connection.RemoteEndPoint);
        try
        {
            await connection.ReadLoopAsync(peer.Port == PortKind.Publish ? WaitForPublishCapacity : null, frame =>
            {
                lock (_gate)
                {
                    try
                    {
                        _engine.OnFrame(connection.Id, frame);
                    }
                    finally
                    {
                        Drain();
                    }
                }
            }).ConfigureAwait(false);
        }
        catch (CodecException e)
        {
            TransportLog.BadFrame(_logger, peer.NodeId, connection.RemoteEndPoint, e.Reason, e.Message);
        }
        catch (Exception e)
        {
            TransportLog.EngineFailed(_logger, peer.NodeId, e);
            connection.Close(CodecError.Protocol, "internal error");
        }
        lock (_gate)
        {
            _connections.Remove(connection.Id);
            RecordClosedTraffic(connection, peer);
            _engine.OnDisconnected(connection.Id);
            Drain();
        }
        var reason = connection.CloseReason;
        TransportLog.Disconnected(_logger, peer.NodeId, connection.RemoteEndPoint, reason is null ? "closed" : $"{reason.Value.Reason}: {reason.Value.Message}");
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
    }
}
