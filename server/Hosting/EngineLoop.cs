using System.Diagnostics;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Storage;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Every call into the engine: events in under one lock (the gate, shared with the connection table, the sync thread
/// and publish back-pressure), each followed by running the engine's commands; and a timer loop that sleeps until the
/// engine's next deadline, which also runs the connection sweep.
/// </summary>
/// <remarks>
/// Fail-stop: the first <see cref="DiskFailedException"/> out of an engine call or its sync ends the engine's life.
/// The commands that call left are dropped (nothing it asked to send after the failure goes out, no ack above what
/// was durable before it), the engine is never called again, and <see cref="Failed"/> completes so the host closes
/// its connections and the daemon exits.
/// </remarks>
internal sealed class EngineLoop(object gate, ConnectionTable connections, PublishBackPressure publish, SyncThread sync,
    Func<string, NodeKind, Task> dial, TimeSpan tick, ILogger logger, CancellationToken stopping)
{
    private const long SweepMicros = 100_000;
    /// <summary>A timer this much later than asked for is logged: the process was not running.</summary>
    private const long LateTickMicros = 200_000;

    private IEngine _engine = null!;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    // Wakes the tick loop early when an event brought the engine's next tick forward.
    private readonly SemaphoreSlim _wake = new(0);
    private long _timerDueMicros; // when the tick loop next wakes; under gate
    private long _lastTimerTickMicros = long.MinValue / 2;
    private DiskFailedException? _failure; // under gate
    // Events on their way into the gate. While one is, a settle leaves the tick to it, so whatever arrived meanwhile
    // is flushed and sent as one batch (smart batching): a lone event ticks at once, a burst ticks once.
    private int _arriving;
    private int _deferredTicks; // under gate
    // A tick handed to the tick loop by an in-process call (see InvokeHandingOffTick); under gate.
    private bool _tickHandedOff;
    /// <summary>A settle defers its tick to the next event at most this many times in a row: a steady stream still sends.</summary>
    private const int MaxDeferredTicks = 64;
    private readonly TaskCompletionSource<DiskFailedException> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the disk failure that stopped the engine.</summary>
    public Task<DiskFailedException> Failed => _failed.Task;

    /// <summary>The disk failure that stopped the engine; null while it runs.</summary>
    public DiskFailedException? Failure
    {
        get { lock (gate) return _failure; }
    }

    /// <summary>Runs under the engine's lock when the disk failed (in-process waiters fail with it).</summary>
    public Action<DiskFailedException>? OnDiskFailed { get; set; }

    public long NowMicros => _clock.ElapsedTicks * 1_000_000 / Stopwatch.Frequency;

    public void Attach(IEngine engine) => _engine = engine;

    /// <summary>Runs after every batch of engine commands, under the engine's lock.</summary>
    public Action? AfterDrain { get; set; }

    /// <summary>
    /// Runs <paramref name="action"/> under the lock, then the engine's commands. After a disk failure the action still
    /// runs (status reads work; a write throws from the failed log) but no command is carried out.
    /// </summary>
    public T Invoke<T>(Func<IEngine, T> action) => Invoke(action, handOffTick: false);

    /// <summary>
    /// As <see cref="Invoke{T}"/>, but work the call leaves (a batch to send) is done by the tick loop, which wakes at
    /// once, not by the caller. For in-process publishers: calls made while the tick loop wakes up (and while it sends)
    /// leave together as one batch, as frames of one read do.
    /// </summary>
    public T InvokeHandingOffTick<T>(Func<IEngine, T> action) => Invoke(action, handOffTick: true);

    private T Invoke<T>(Func<IEngine, T> action, bool handOffTick)
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            T result;
            try
            {
                result = action(_engine);
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                throw;
            }
            Settle(handOffTick: handOffTick);
            return result;
        }
    }

    /// <summary>A disk failure outside any engine call (the sync thread's fsync, the node's own flush as it stops): stops the engine the same way.</summary>
    public void ReportDiskFailure(DiskFailedException e)
    {
        lock (gate) Fail(e);
    }

    public Hello LocalHello
    {
        get { lock (gate) return _engine.LocalHello; }
    }

    public CodecException? CheckPeer(in Hello hello, PortKind port)
    {
        lock (gate) return _engine.CheckPeer(hello, port);
    }

    /// <summary>Adds the connection to the table and tells the engine; false (and the connection aborted) once stopping.</summary>
    public bool OnConnected(FramedConnection connection, PeerInfo peer, ConnectionGuard? guard)
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            if (stopping.IsCancellationRequested || _failure is not null) { connection.Abort(CodecError.Shutdown, "stopping"); return false; }
            connections.Add(connection, peer, guard);
            try
            {
                _engine.OnConnected(connection.Id, peer);
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                return true;
            }
            Settle();
            return true;
        }
    }

    /// <param name="more">Another frame of the same read follows at once: the tick waits for it.</param>
    public void OnFrame(int connection, in Frame frame, bool more = false)
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            if (_failure is not null || stopping.IsCancellationRequested) return; // a stopped engine may have disposed its log
            try
            {
                _engine.OnFrame(connection, frame);
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                return;
            }
            catch
            {
                Settle();
                throw;
            }
            Settle(more);
        }
    }

    public void OnDisconnected(FramedConnection connection, PeerInfo peer)
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            connections.Remove(connection, peer);
            if (_failure is not null || stopping.IsCancellationRequested) return;
            try
            {
                _engine.OnDisconnected(connection.Id);
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                return;
            }
            Settle();
        }
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            if (_failure is not null || stopping.IsCancellationRequested) return;
            try
            {
                _engine.OnDialFailed(nodeId, reason);
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                return;
            }
            Settle();
        }
    }

    /// <summary>The sync thread's fsync ended; false once stopping, when the engine is no longer told.</summary>
    public bool OnSynced()
    {
        Interlocked.Increment(ref _arriving);
        lock (gate)
        {
            Interlocked.Decrement(ref _arriving);
            if (stopping.IsCancellationRequested || _failure is not null) return false;
            try
            {
                _engine.OnSynced();
            }
            catch (DiskFailedException e)
            {
                Fail(e);
                return false;
            }
            Settle();
            return _failure is null;
        }
    }

    /// <summary>
    /// Ticks the engine when its <see cref="IEngine.NextTickMicros"/> comes due, and sleeps until then (or until an
    /// event brings it forward): an idle node wakes only for its timers and the connection sweep. Timer ticks are
    /// at least the tick interval apart, so an engine that always has work is ticked at that rate, not in a spin.
    /// </summary>
    public async Task TickLoopAsync()
    {
        long minSpacing = (long)tick.TotalMicroseconds;
        long nextSweep = 0;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                long wait;
                lock (gate)
                {
                    if (_failure is not null) return;
                    long now = NowMicros;
                    long due = _engine.NextTickMicros;
                    if (due <= now && _tickHandedOff)
                    {
                        // An in-process call's tick: at once, not held to the timer's spacing.
                        _tickHandedOff = false;
                        _deferredTicks = 0;
                        if (!TryTick()) return;
                        Drain();
                        due = _engine.NextTickMicros;
                    }
                    else if (due <= now && now - _lastTimerTickMicros >= minSpacing)
                    {
                        _lastTimerTickMicros = now;
                        _deferredTicks = 0;
                        if (!TryTick()) return;
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
                    connections.SweepIdleAndExpired(Environment.TickCount64);
                    continue;
                }
                // Timed waits count whole milliseconds: round up, or a sub-millisecond wait would spin.
                if (wait <= 0) continue;
                long waitMillis = Math.Min(SweepMicros / 1000, (wait + 999) / 1000);
                long wakeAt = NowMicros + waitMillis * 1000;
                await _wake.WaitAsync((int)waitMillis, stopping).ConfigureAwait(false);
                // A timer that fires far too late means this process was not running (a GC pause, an overloaded
                // machine): peers may read the silence as a failure, so say so where the operator will look.
                long late = NowMicros - wakeAt;
                if (late > LateTickMicros) EngineHostLog.LateTick(logger, late / 1000);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// After an engine call (lock held): runs its commands, ticks it at once when that left work waiting (an entry
    /// is sent as soon as it is appended, not at the next timer), and wakes the tick loop if its timer moved closer.
    /// When another event is already on its way in (<paramref name="more"/> frames of the same read, or a thread
    /// waiting for the lock), the tick is left to that event's settle, so a burst leaves as one batch.
    /// </summary>
    private void Settle(bool more = false, bool handOffTick = false)
    {
        Drain();
        if (_failure is not null) return;
        long due = _engine.NextTickMicros;
        if (due <= NowMicros && handOffTick)
        {
            _tickHandedOff = true;
            if (_wake.CurrentCount == 0) _wake.Release();
            return;
        }
        if (due <= NowMicros)
        {
            if ((more || Volatile.Read(ref _arriving) > 0) && _deferredTicks < MaxDeferredTicks)
            {
                _deferredTicks++;
                return;
            }
            _deferredTicks = 0;
            if (!TryTick()) return;
            Drain();
            due = _engine.NextTickMicros;
        }
        if (due < _timerDueMicros && _wake.CurrentCount == 0) _wake.Release();
    }

    /// <summary>Ticks the engine (lock held); false when its disk failed.</summary>
    private bool TryTick()
    {
        try
        {
            _engine.OnTick();
            return true;
        }
        catch (DiskFailedException e)
        {
            Fail(e);
            return false;
        }
    }

    /// <summary>
    /// Stops the engine for good (lock held): drops the commands the failing call left, so nothing it asked after the
    /// failure is sent, logs the one line that says which file and which error, and tells the host.
    /// </summary>
    private void Fail(DiskFailedException e)
    {
        if (_failure is not null) return;
        _failure = e;
        DropCommands();
        EngineHostLog.DiskFailed(logger, e.Operation, e.Path ?? "the log", e.Error);
        OnDiskFailed?.Invoke(e);
        _failed.TrySetResult(e);
    }

    private void DropCommands()
    {
        var outbox = _engine.Outbox;
        foreach (var command in outbox) command.Buffer?.Release();
        outbox.Clear();
    }

    /// <summary>Runs the engine's commands; called with the lock held. After a disk failure it drops them instead.</summary>
    private void Drain()
    {
        if (_failure is not null)
        {
            DropCommands();
            return;
        }
        var outbox = _engine.Outbox;
        for (int i = 0; i < outbox.Count; i++)
        {
            var command = outbox[i];
            switch (command.Kind)
            {
                case CommandKind.Send:
                    if (connections.Find(command.Connection) is { } target)
                        target.TrySend(command.Buffer!);
                    else
                        command.Buffer!.Release();
                    break;
                case CommandKind.Close:
                    connections.Find(command.Connection)?.Close(command.Reason, command.Text ?? "");
                    break;
                case CommandKind.Dial:
                    if (!stopping.IsCancellationRequested)
                        _ = Task.Run(() => dial(command.Text!, command.DialAs));
                    break;
                case CommandKind.Sync:
                    sync.Request(command.Work!);
                    break;
            }
        }
        outbox.Clear();
        AfterDrain?.Invoke();
        publish.ResumeIfRoom();
    }
}
