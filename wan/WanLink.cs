using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Wan.Internal;
using HdrHistogram;

namespace GeoRelay.Wan;

/// <summary>
/// An emulated WAN link in user space (this kernel has no netem): a TCP forwarder that listens on one endpoint
/// and forwards every connection to a target, adding one-way delay and jitter to every byte in order, capping
/// bandwidth with a token bucket, holding at most a bounded number of bytes per connection and direction (then
/// back-pressure), cutting and healing on command, and counting bytes each way. "Forward" is from the side that
/// dials the link to the target.
/// <code>
/// await using var link = WanLink.Start(new IPEndPoint(IPAddress.Loopback, 0), target,
///     new WanLinkOptions { OneWayDelay = TimeSpan.FromMilliseconds(40) });
/// // dial link.ListenEndPoint instead of target; link.Cut(); link.Heal(); link.Counters
/// </code>
/// </summary>
public sealed class WanLink : IAsyncDisposable
{
    private readonly List<(Socket Listener, IPEndPoint Target, Task AcceptLoop)> _routes = new();
    private readonly WanLinkOptions _options;
    private readonly WanDirection _forward, _reverse;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<int, Connection> _connections = new();
    private readonly object _cutGate = new();
    private TaskCompletionSource _healed = NewHealSignal();
    private volatile bool _blackholed, _reset;
    private int _nextConnection, _accepted;

    /// <summary>Name for logs and reports.</summary>
    public string Name { get; }

    /// <summary>Where to dial instead of the target (of the first route).</summary>
    public IPEndPoint ListenEndPoint { get; }

    public IPEndPoint Target { get; }
    public WanLinkOptions Options => _options;
    public bool IsCut => _blackholed || _reset;

    /// <summary>Bytes and chunks (socket reads delivered as one write, roughly one per message a sender flushes) each way, and connection counts.</summary>
    public WanLinkCounters Counters => new(_forward.Counters, _reverse.Counters, Volatile.Read(ref _accepted), _connections.Count);

    /// <summary>How late the link delivered against the due time, µs, each way: the emulator's own timing error (copies, as of now).</summary>
    public (HistogramBase Forward, HistogramBase Reverse) Lateness => (_forward.Lateness, _reverse.Lateness);

    private WanLink(IPEndPoint listen, IPEndPoint target, WanLinkOptions options, string name)
    {
        _options = options;
        Name = name;
        var random = options.Seed is int seed ? new Random(seed) : new Random();
        _forward = new WanDirection(options, new Random(random.Next()));
        _reverse = new WanDirection(options, new Random(random.Next()));
        ListenEndPoint = AddRoute(listen, target);
        Target = target;
    }

    /// <summary>Starts listening on <paramref name="listen"/> (port 0: a free one) and forwarding to <paramref name="target"/>.</summary>
    public static WanLink Start(IPEndPoint listen, IPEndPoint target, WanLinkOptions? options = null, string? name = null)
    {
        options ??= WanLinkOptions.Default;
        options.Validate();
        return new WanLink(listen, target, options, name ?? $"{listen}->{target}");
    }

    /// <summary>
    /// Another listen endpoint on the same link, forwarding to another target: several nodes behind one WAN path
    /// share its delay, bandwidth and counters. Returns the endpoint to dial.
    /// </summary>
    public IPEndPoint AddRoute(IPEndPoint listen, IPEndPoint target)
    {
        var listener = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(listen);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        lock (_routes) _routes.Add((listener, target, Task.Run(() => AcceptLoopAsync(listener, target))));
        return (IPEndPoint)listener.LocalEndPoint!;
    }

    /// <summary>Cuts the link; see <see cref="WanCutMode"/>.</summary>
    public void Cut(WanCutMode mode = WanCutMode.Blackhole)
    {
        lock (_cutGate)
        {
            if (mode == WanCutMode.Reset)
            {
                _reset = true;
                foreach (var connection in _connections.Values) connection.Abort();
            }
            else _blackholed = true;
        }
    }

    /// <summary>Ends a cut: held connections are dialled onward and held bytes flow on.</summary>
    public void Heal()
    {
        TaskCompletionSource healed;
        lock (_cutGate)
        {
            _reset = false;
            _blackholed = false;
            healed = _healed;
            _healed = NewHealSignal();
        }
        healed.TrySetResult();
        foreach (var connection in _connections.Values) connection.Kick();
    }

    private static TaskCompletionSource NewHealSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task AcceptLoopAsync(Socket listener, IPEndPoint target)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            Interlocked.Increment(ref _accepted);
            _ = Task.Run(() => ServeAsync(client, target));
        }
    }

    private async Task ServeAsync(Socket client, IPEndPoint targetEndPoint)
    {
        client.NoDelay = true;
        var target = new Socket(targetEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connection = new Connection(client, target);
        int id = Interlocked.Increment(ref _nextConnection);
        _connections[id] = connection;
        try
        {
            Task healed;
            lock (_cutGate)
            {
                if (_reset) return;
                healed = _blackholed ? _healed.Task : Task.CompletedTask;
            }
            await healed.WaitAsync(_stop.Token);
            if (_reset) return;
            // The SYN crosses the link before the far side sees a connection.
            if (_options.OneWayDelay > TimeSpan.Zero) await Task.Delay(_options.OneWayDelay, _stop.Token);
            await target.ConnectAsync(targetEndPoint, _stop.Token);
            var forward = new WanPump(client, target, _forward, _options, () => _blackholed, connection.Abort);
            var reverse = new WanPump(target, client, _reverse, _options, () => _blackholed, connection.Abort);
            connection.Pumps = [forward, reverse];
            using var abort = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, connection.Aborted);
            await Task.WhenAll(forward.RunAsync(abort.Token), reverse.RunAsync(abort.Token));
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // A peer went away, the link was cut or disposed: the other side sees its connection end.
        }
        finally
        {
            _connections.TryRemove(id, out _);
            connection.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        List<Task> loops;
        lock (_routes)
        {
            foreach (var route in _routes) route.Listener.Dispose();
            loops = _routes.Select(r => r.AcceptLoop).ToList();
        }
        foreach (var connection in _connections.Values) connection.Abort();
        await Task.WhenAll(loops);
        _stop.Dispose();
    }

    private sealed class Connection(Socket client, Socket target)
    {
        private readonly CancellationTokenSource _aborted = new();
        public WanPump[] Pumps { get; set; } = [];
        public CancellationToken Aborted => _aborted.Token;

        public void Kick()
        {
            foreach (var pump in Pumps) pump.Kick();
        }

        /// <summary>Closes both sides with RST, as a dropped path looks to a peer that tries to use it.</summary>
        public void Abort()
        {
            try { _aborted.Cancel(); } catch (ObjectDisposedException) { }
            foreach (var socket in new[] { client, target })
            {
                try { socket.LingerState = new LingerOption(true, 0); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                socket.Dispose();
            }
        }
    }
}
