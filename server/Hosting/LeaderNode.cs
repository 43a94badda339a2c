using GeoRelay.Leader;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Engines;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>What an in-process append gives back: the index, and tasks for each level of safety.</summary>
public readonly record struct AppendResult(ulong Index, Task Accepted, Task Committed);

/// <summary>The leader engine on real sockets, with the in-process publish API.</summary>
public sealed class LeaderNode : IAsyncDisposable
{
    private readonly EngineHost _host;
    private readonly IEntryLog _log;

    /// <summary>The node's log (a <see cref="KeyedLog"/> with keyed compaction).</summary>
    public IEntryLog Log => _log;
    private readonly Queue<(ulong Index, TaskCompletionSource Done)> _accepted = new();
    private readonly Queue<(ulong Index, TaskCompletionSource Done)> _committed = new();
    private readonly Dictionary<string, Queue<(ulong Index, TaskCompletionSource Done)>> _delivered = new();
    // Both touched only under the engine lock.
    private TaskCompletionSource _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _capacityWaited;

    private readonly ILogger _logger;
    private readonly CatchUpProgress _catchUp;
    private readonly string[] _datacenterNames;
    private long _lastCatchUpCheckMicros;
    private volatile bool _draining;

    public LeaderEngine Engine { get; }
    public EngineHost Host => _host;
    public TopologyConfig Topology { get; }
    public System.Net.EndPoint? PublishEndPoint { get; }

    /// <summary>Per-datacenter ack latency samples (metrics subscribe to it).</summary>
    public AckLatencyTracker AckLatency { get; }

    /// <summary>Set once <see cref="DrainAsync"/> began: publishes are refused from then on.</summary>
    public bool Draining => _draining;

    public LeaderNode(TopologyConfig topology, ulong epoch, string dataDirectory, LeaderOptions? options, ILoggerFactory loggers)
    {
        Topology = topology;
        var logger = _logger = loggers.CreateLogger("georelay.leader");
        _log = NodeSetup.OpenLog(topology, dataDirectory, topology.Defaults.Fsync,
            progress => logger.LogInformation("Recovery: {Progress}", progress));
        _host = new EngineHost(NodeSetup.Resolver(topology), NodeSetup.Connections(topology, topology.Defaults.Window * 2), loggers.CreateLogger("georelay.transport"),
            security: NodeSetup.Security(topology, topology.LeaderId));
        Engine = new LeaderEngine(topology, epoch, _log, _host, options, logger);
        _datacenterNames = new string[topology.Datacenters.Count];
        for (int i = 0; i < _datacenterNames.Length; i++) _datacenterNames[i] = topology.Datacenters[i].Name;
        AckLatency = new AckLatencyTracker(_datacenterNames);
        _catchUp = new CatchUpProgress(logger);
        _host.Attach(Engine);
        _host.AfterDrain = CompleteWaiters;
        _host.OnDiskFailed = FailWaiters;
        _host.PublishCapacity = () => !_draining && Engine.HasCapacity;
        if (topology.Leader.Publish is { } publish)
            PublishEndPoint = _host.Listen(publish.ToEndPoint(), PortKind.Publish);
        _host.Start();
    }

    /// <summary>Appends one entry once the window has room; the index is known, and the payload copied, when this returns.</summary>
    public async Task<AppendResult> AppendAsync(ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> key = default, CancellationToken ct = default)
    {
        while (true)
        {
            Task? wait = null;
            // The tick loop sends what this and the calls meanwhile appended, as one batch per datacenter.
            var result = _host.InvokeHandingOffTick(engine =>
            {
                var leader = (LeaderEngine)engine;
                if (_host.Failure is { } failure) throw DiskFailedException.Earlier(failure);
                if (_draining) throw new InvalidOperationException("the leader is draining and takes no more entries");
                if (!leader.HasCapacity)
                {
                    _capacityWaited = true;
                    wait = _capacity.Task;
                    return (AppendResult?)null;
                }
                ulong index = leader.Append(key, payload, WallClock.UnixMicros());
                var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var committed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _accepted.Enqueue((index, accepted));
                _committed.Enqueue((index, committed));
                return new AppendResult(index, accepted.Task, committed.Task);
            });
            if (result is { } r) return r;
            await wait!.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Completes when entry <paramref name="index"/> is durable on every reachable member of <paramref name="datacenter"/>.</summary>
    public Task DeliveredToAsync(string datacenter, ulong index) => _host.Invoke(engine =>
    {
        if (Engine.DeliveredTo(datacenter) >= index) return Task.CompletedTask;
        if (_host.Failure is { } failure) return Task.FromException(DiskFailedException.Earlier(failure));
        if (!_delivered.TryGetValue(datacenter, out var queue)) _delivered[datacenter] = queue = new();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        queue.Enqueue((index, done));
        return done.Task;
    });

    // Runs under the engine lock after every event.
    private void CompleteWaiters()
    {
        Release(_accepted, Engine.DurableIndex);
        Release(_committed, Engine.CommitIndex);
        foreach (var (dc, queue) in _delivered) Release(queue, Engine.DeliveredTo(dc));
        long now = _host.NowMicros;
        AckLatency.Observe(Engine, now);
        if (now - _lastCatchUpCheckMicros >= 250_000)
        {
            _lastCatchUpCheckMicros = now;
            foreach (var dc in _datacenterNames) _catchUp.Observe(dc, Engine.DeliveredTo(dc), Engine.DurableIndex, now);
        }
        // A fresh gate only when someone waited on the old one: no allocation per engine event.
        if (_capacityWaited && Engine.HasCapacity)
        {
            _capacityWaited = false;
            var open = _capacity;
            _capacity = new(TaskCreationOptions.RunContinuationsAsynchronously);
            open.TrySetResult();
        }
    }

    /// <summary>
    /// The first half of a clean stop: publishes pause (new ones are refused), what is appended becomes
    /// durable and is sent, then this waits, at most <paramref name="bound"/>, until every datacenter that
    /// has a live route acked all of it; the acks owed to publishers go out as the commit index moves.
    /// Returns whether everything was acked in time.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan bound)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (_host.Failure is not null) return false;
        (ulong, List<string>) started;
        try
        {
            started = _host.Invoke(e =>
            {
                _draining = true;
                Engine.FlushAndSend();
                var names = new List<string>();
                foreach (var s in Engine.Status())
                    if (s.Connected) names.Add(s.Name);
                return (Engine.DurableIndex, names);
            });
        }
        catch (DiskFailedException)
        {
            return false; // the drain's own flush failed: logged, and the node stops
        }
        var (durable, connected) = started;
        HostingLog.Draining(_logger, bound.TotalSeconds, connected.Count, durable);
        var waits = new List<Task>(connected.Count);
        foreach (var dc in connected) waits.Add(DeliveredToAsync(dc, durable));
        try
        {
            await Task.WhenAll(waits).WaitAsync(bound).ConfigureAwait(false);
            HostingLog.Drained(_logger, durable, _host.Invoke(_ => Engine.CommitIndex), clock.Elapsed.TotalSeconds);
            return true;
        }
        catch (DiskFailedException)
        {
            return false; // logged where it failed; the node stops
        }
        catch (TimeoutException)
        {
            var pending = new List<string>();
            for (int i = 0; i < waits.Count; i++)
                if (!waits[i].IsCompleted) pending.Add(connected[i]);
            HostingLog.DrainTimedOut(_logger, bound.TotalSeconds, string.Join(", ", pending), durable);
            return false;
        }
    }

    /// <summary>One line per datacenter with what it cost, as the node stops (tests and operators read it).</summary>
    private void LogSummary()
    {
        var connections = _host.Connections();
        foreach (var s in _host.Invoke(_ => Engine.Status()))
        {
            int open = 0;
            var dc = Topology.GetDatacenter(s.Name);
            foreach (var c in connections)
                if (Topology.Nodes.TryGetValue(c.Peer.NodeId, out var n) && n.Datacenter == s.Name) open++;
            _logger.LogInformation("Summary datacenter={Datacenter} route={Route} connections={Connections} batches={Batches} bytes_sent={BytesSent} entry_bytes={EntryBytes} failovers={Failovers} delivered={Delivered}",
                s.Name, s.Route.Replace(' ', ':'), open, s.Batches, s.BytesSent, s.EntryBytesSent, s.Failovers, s.Delivered);
        }
        _logger.LogInformation("Summary last={Last} commit={Commit}", Engine.LastIndex, Engine.CommitIndex);
    }

    /// <summary>The disk failed (engine lock held): nothing waiting becomes accepted, committed or delivered any more.</summary>
    private void FailWaiters(DiskFailedException failure)
    {
        FailAll(_accepted, failure);
        FailAll(_committed, failure);
        foreach (var (_, queue) in _delivered) FailAll(queue, failure);
        _capacity.TrySetException(failure);
    }

    private static void FailAll(Queue<(ulong Index, TaskCompletionSource Done)> queue, DiskFailedException failure)
    {
        while (queue.TryDequeue(out var w)) w.Done.TrySetException(failure);
    }

    private static void Release(Queue<(ulong Index, TaskCompletionSource Done)> queue, ulong mark)
    {
        // Waiters queue in index order, so the front is always the next to complete.
        while (queue.TryPeek(out var w) && w.Index <= mark)
        {
            queue.Dequeue();
            w.Done.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_host.Failure is null)
        {
            try { _host.Invoke(e => { ((LeaderEngine)e).FlushAndSend(); return 0; }); }
            catch (DiskFailedException) { } // logged, and the node counts as failed
        }
        LogSummary();
        _host.Invoke(e => ((LeaderEngine)e).Stopping = true);
        await _host.DisposeAsync().ConfigureAwait(false);
        _log.Dispose();
    }
}
