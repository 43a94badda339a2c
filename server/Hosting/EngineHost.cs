using System.Net;
using GeoRelay.Codec;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Storage;
using GeoRelay.Transport;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Drives one sans-IO engine over real sockets. <see cref="ConnectionAcceptor"/> listens and applies the connection
/// limits, <see cref="ConnectionAdmission"/> runs TLS, tokens and the handshake, <see cref="PeerDialer"/> dials,
/// <see cref="ConnectionReader"/> feeds each connection's frames to the engine, <see cref="EngineLoop"/> makes every
/// engine call (under one lock, each followed by running its commands) and ticks it, and <see cref="SyncThread"/> runs
/// its fsync off that lock.
/// </summary>
/// <remarks>
/// When the engine's disk fails (<see cref="DiskFailedException"/> from a write or fsync of its log) the engine is
/// stopped for good, the host stops listening and closes every connection, and <see cref="Failed"/> completes: a
/// daemon exits on it, an in-process owner sees <see cref="Failure"/>.
/// </remarks>
public sealed class EngineHost : IEngineEnvironment, IAsyncDisposable
{
    // The engine's lock: every engine call, and the state its commands touch (the connection table, the pending
    // sync, the publish waiter), is guarded by this one object, shared by the parts below.
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = new();
    private readonly ILogger _logger;
    private readonly HostSecurity _security;
    private readonly ConnectionTable _connections;
    private readonly PublishBackPressure _publish;
    private readonly SyncThread _sync;
    private readonly EngineLoop _loop;
    private readonly PeerDialer _dialer;
    private readonly ConnectionAcceptor _acceptor;
    private readonly PosixSignalRegistration? _hangUp;

    public EngineHost(Func<string, EndPoint?> resolveNode, ConnectionOptions options, ILogger? logger = null, TimeSpan? tick = null,
        HostSecurity? security = null)
    {
        _logger = logger ?? NullLogger.Instance;
        _security = security ?? HostSecurity.None;
        var stopping = _stopping.Token;
        _connections = new ConnectionTable(_gate, options, _security.Tokens, Refusals, _logger);
        _publish = new PublishBackPressure(_gate, stopping);
        _sync = new SyncThread(_gate, OnSynced, OnSyncFailed, stopping);
        _loop = new EngineLoop(_gate, _connections, _publish, _sync, DialAsync, tick ?? TimeSpan.FromMilliseconds(1), _logger, stopping);
        var reader = new ConnectionReader(_loop, _publish, Refusals, _logger);
        _dialer = new PeerDialer(resolveNode, options, _security, _loop, reader, _logger, stopping);
        var admission = new ConnectionAdmission(options, _security, Blacklist, _loop, Refusals, _logger, stopping);
        _acceptor = new ConnectionAcceptor(options, _security, admission, reader, Refusals, _logger, stopping);
        _ = _loop.Failed.ContinueWith(_ => StopAfterDiskFailure(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        // SIGHUP re-reads the token keys and revocations, as daemons do; it would otherwise end the process.
        if (_security.Tokens is not null)
            _hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context => { context.Cancel = true; ReloadTokens(); });
    }

    /// <summary>
    /// Re-reads the token keys and revocations (what SIGHUP does); connections whose token is no longer good are cut at
    /// the next sweep, within 100 ms. Returns what happened (also logged).
    /// </summary>
    public TokenReload ReloadTokens()
    {
        if (_security.Tokens is not { } tokens) return new(false, "this node checks no tokens");
        var reload = tokens.Reload();
        if (reload.Reloaded) EngineHostLog.TokensReloaded(_logger, reload.Message);
        else EngineHostLog.TokenReloadFailed(_logger, reload.Message);
        return reload;
    }

    // The loop hands dials and syncs out, and the dialer and the sync thread call back into the loop: these close the circle.
    private Task DialAsync(string nodeId, GeoRelay.Codec.Frames.NodeKind dialAs) => _dialer.DialAsync(nodeId, dialAs);
    private bool OnSynced() => _loop.OnSynced();
    private void OnSyncFailed(DiskFailedException e) => _loop.ReportDiskFailure(e);

    /// <summary>The node takes no further part: no new connections, no timers or syncs, every connection closed.</summary>
    private void StopAfterDiskFailure()
    {
        _stopping.Cancel();
        _acceptor.StopListening();
        foreach (var c in _connections.All()) c.Close(CodecError.Shutdown, "node stopped: its disk failed");
    }

    /// <summary>Completes with the disk failure that stopped this node (never, while it works).</summary>
    public Task<DiskFailedException> Failed => _loop.Failed;

    /// <summary>The disk failure that stopped this node; null while it works.</summary>
    public DiskFailedException? Failure => _loop.Failure;

    /// <summary>Runs under the engine's lock when the disk fails, before <see cref="Failed"/> completes.</summary>
    public Action<DiskFailedException>? OnDiskFailed
    {
        get => _loop.OnDiskFailed;
        set => _loop.OnDiskFailed = value;
    }

    /// <summary>A disk failure the node met outside an engine call (its own last flush): stops it as one inside would.</summary>
    public void ReportDiskFailure(DiskFailedException failure) => _loop.ReportDiskFailure(failure);

    /// <summary>Connections refused or cut by a limit, a failed TLS handshake or authentication, by reason.</summary>
    public RefusalCounters Refusals { get; } = new();

    /// <summary>TLS material and token keys this host enforces (the admin endpoint serves and checks with the same).</summary>
    public HostSecurity Security => _security;

    /// <summary>Addresses refused on the learner and publish ports; <see cref="CutBlacklisted"/> cuts those already connected.</summary>
    public AddressBlacklist Blacklist { get; } = new();

    /// <summary>Cuts every learner and publish connection from an address the blacklist now covers; returns how many.</summary>
    public int CutBlacklisted() => _connections.CutBlacklisted(Blacklist);

    /// <summary>
    /// Cuts one learner connection, telling it <paramref name="message"/> (the SDK reconnects and resumes at its next index);
    /// false when there is no such open learner connection.
    /// </summary>
    public bool DisconnectLearner(int connection, string message) => _connections.CutLearner(connection, message);

    /// <summary>The remote address of an open connection, or null; call inside <see cref="Invoke{T}"/> to match an engine's view.</summary>
    public EndPoint? RemoteOf(int connection)
    {
        lock (_gate) return _connections.RemoteOf(connection);
    }

    /// <summary>Connections accepted and not yet closed (handshaking included), on one port.</summary>
    public int OpenConnections(PortKind port) => _acceptor.OpenConnections(port);

    /// <summary>Connects the engine (it needs this host as its environment, so it comes after construction).</summary>
    public void Attach(IEngine engine) => _loop.Attach(engine);

    /// <summary>Runs after every batch of engine commands, under the engine's lock (watermark waiters hook in here).</summary>
    public Action? AfterDrain
    {
        get => _loop.AfterDrain;
        set => _loop.AfterDrain = value;
    }

    /// <summary>When set, publish-port connections stop reading while it returns false (TCP back-pressure).</summary>
    public Func<bool>? PublishCapacity
    {
        get => _publish.Capacity;
        set => _publish.Capacity = value;
    }

    public long NowMicros => _loop.NowMicros;

    public long QueuedBytes(int connection) => _connections.QueuedBytes(connection);

    public int ConnectionCount => _connections.Count;

    /// <summary>Snapshot of live connections, for status pages.</summary>
    public List<(PeerInfo Peer, EndPoint? Remote, long BytesSent, long BytesReceived, long Queued)> Connections() => _connections.Snapshot();

    /// <summary>
    /// Learners and publishers come and go by the thousand under changing ids, so they are summed
    /// under one key each; peers (leader, relays, members) are counted by node id.
    /// </summary>
    public static string TrafficKey(in PeerInfo peer) => peer.Port switch
    {
        PortKind.Learner => "learners",
        PortKind.Publish => "publishers",
        _ => peer.NodeId,
    };

    /// <summary>Per peer key: open connections, and bytes sent and received over closed and open connections alike (monotonic).</summary>
    public List<PeerTraffic> Traffic() => _connections.Traffic();

    /// <summary>Runs <paramref name="action"/> against the engine under its lock, then its commands.</summary>
    public T Invoke<T>(Func<IEngine, T> action) => _loop.Invoke(action);

    /// <inheritdoc cref="EngineLoop.InvokeHandingOffTick{T}"/>
    public T InvokeHandingOffTick<T>(Func<IEngine, T> action) => _loop.InvokeHandingOffTick(action);

    public EndPoint Listen(EndPoint endPoint, PortKind port)
    {
        var (bound, acceptLoop) = _acceptor.Listen(endPoint, port);
        _loops.Add(acceptLoop);
        return bound;
    }

    public void Start()
    {
        _loops.Add(Task.Run(_loop.TickLoopAsync));
        _loops.Add(_sync.Start());
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _hangUp?.Dispose();
        _acceptor.StopListening();
        foreach (var c in _connections.All()) c.Close(CodecError.Shutdown, "node is stopping");
        try { await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        // The host owns the key and certificates it was given: clear them.
        _security.Tokens?.Dispose();
        _security.Tls?.Dispose();
        EngineHostLog.RuntimeSummary(_logger, GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            (long)GC.GetTotalPauseDuration().TotalMilliseconds, (long)Environment.CpuUsage.TotalTime.TotalMilliseconds);
    }
}
