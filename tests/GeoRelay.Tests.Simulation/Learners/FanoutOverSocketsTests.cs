using System.Net;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using GeoRelay.Transport;
using GeoRelay.Engines;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Learners;

using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;
using GeoRelay.Server.Hosting;

/// <summary>The fan-out behind the real transport (EngineHost, FramedConnection) with real SDK clients.</summary>
[TestFixture]
public sealed class FanoutOverSocketsTests
{
    /// <summary>The smallest engine that owns a retention log and a learner fan-out, as the relay does.</summary>
    private sealed class LearnerPortEngine : IEngine
    {
        public LearnerPortEngine(IEngineEnvironment env, LearnerFanoutOptions? options = null, bool keyed = false)
        {
            if (keyed) Keyed = KeyedLog.Open(Log, null, KeyedCompactionOptions.Default with { Background = false, Fsync = false });
            Fanout = new LearnerFanout(Log, env, Outbox, options ?? LearnerFanoutOptions.Default) { KeyedSnapshots = Keyed is null ? null : Keyed.Snapshot };
        }

        /// <summary>Keyed compaction over <see cref="Log"/>, when asked for.</summary>
        public KeyedLog? Keyed { get; }

        /// <summary>Completes with the first learner connection the host reports gone.</summary>
        public TaskCompletionSource<int> FirstDisconnect { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public MemoryLog Log { get; } = new();
        public LearnerFanout Fanout { get; }
        public List<EngineCommand> Outbox { get; } = new();
        public Hello LocalHello { get; } = Hello.ForThisBuild("relay-test", NodeKind.Relay, 1, "", 0);

        public CodecException? CheckPeer(in Hello hello, PortKind port) =>
            hello.Kind == NodeKind.Learner && hello.TopologyHash == 0 ? null : new CodecException(CodecError.Protocol, "learners only");

        public void OnConnected(int connection, PeerInfo peer) => Fanout.OnConnected(connection, peer);
        public void OnDisconnected(int connection)
        {
            Fanout.OnDisconnected(connection);
            FirstDisconnect.TrySetResult(connection);
        }
        public void OnDialFailed(string nodeId, string reason) { }
        public void OnFrame(int connection, in Frame frame)
        {
            Fanout.OnFrame(connection, frame.Type, frame.Payload);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!_waiters[i].Condition()) continue;
                _waiters[i].Done.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }

        private readonly List<(Func<bool> Condition, TaskCompletionSource Done)> _waiters = new();

        /// <summary>Completes when <paramref name="condition"/> holds, checked after every frame the engine handles.</summary>
        public Task WaitUntilAsync(EngineHost host, Func<bool> condition, CancellationToken ct) => host.Invoke(_ =>
        {
            if (condition()) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((condition, done));
            return done.Task.WaitAsync(ct);
        });
        public void OnTick() => Fanout.OnTick();

        public void Append(int count, int padding = 0)
        {
            ulong first = Log.LastIndex + 1;
            for (ulong i = first; i < first + (ulong)count; i++)
                Log.Append(new LogEntry(i, 1, 0, i % 2 == 0 ? "even"u8.ToArray() : "odd"u8.ToArray(), Encoding.UTF8.GetBytes("entry-" + i + new string('.', padding))));
            Fanout.OnAppended(first, first + (ulong)count - 1);
        }
    }

    [Test]
    public async Task Learners_over_real_sockets_get_complete_ordered_streams_and_confirms_show_in_status()
    {
        await using var host = new EngineHost(_ => null, ConnectionOptions.Default);
        var engine = new LearnerPortEngine(host);
        host.Attach(engine);
        var endpoint = (IPEndPoint)host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        host.Invoke(_ => { engine.Append(500); return 0; }); // retained before anyone subscribes

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var options = LearnerClientOptions.Default with { Endpoints = [$"127.0.0.1:{endpoint.Port}"], BufferedEntries = 128 };
        const int Total = 3000;
        var runs = new List<Task<List<ulong>>>();
        for (int i = 0; i < 8; i++)
        {
            ulong from = i % 2 == 0 ? 1UL : 250UL;
            // Learner 6 reuses the client's buffers: each payload is checked before the next entry is asked for.
            var o = i == 7 ? options with { KeyPrefix = "even" } : options with { NodeId = "learner-" + i, ReuseBuffers = i == 6 };
            runs.Add(Task.Run(async () =>
            {
                await using var learner = await LearnerClient.ConnectAsync(o, deadline.Token);
                var got = new List<ulong>();
                await foreach (var e in learner.SubscribeAsync(from, deadline.Token))
                {
                    got.Add(e.Index);
                    Assert.That(Encoding.UTF8.GetString(e.Payload.Span), Is.EqualTo("entry-" + e.Index));
                    if (e.Index >= Total - 1)
                    {
                        learner.Confirm(e.Index);
                        // Stay subscribed until the relay shows the confirm (delivered) for this learner.
                        ulong confirmed = e.Index;
                        await engine.WaitUntilAsync(host, () => HasDelivered(engine.Fanout, o.NodeId, confirmed), deadline.Token);
                        break;
                    }
                }
                return got;
            }));
        }
        // Publish the rest while they stream (some still catching up).
        for (int n = 500; n < Total; n += 100)
        {
            host.Invoke(_ => { engine.Append(100); return 0; });
            await Task.Yield(); // let the learners' loops interleave with publishing
        }
        var results = await Task.WhenAll(runs).WaitAsync(deadline.Token);

        for (int i = 0; i < 7; i++)
        {
            ulong from = i % 2 == 0 ? 1UL : 250UL;
            var expected = new List<ulong>();
            for (ulong x = from; x <= Total - 1; x++) expected.Add(x);
            Assert.That(results[i], Is.EqualTo(expected), $"learner {i}");
        }
        var evens = new List<ulong>();
        for (ulong x = 250; x <= Total; x++) if (x % 2 == 0) evens.Add(x); // it stops at the first entry it gets at or past Total - 1
        Assert.That(results[7], Is.EqualTo(evens), "filtered learner");
        Assert.That(host.Invoke(_ => engine.Fanout.SlowConsumerCuts), Is.Zero);
    }

    [Test]
    public async Task A_snapshot_transfer_cut_midway_resumes_in_the_sdk_without_a_second_beginning()
    {
        await using var host = new EngineHost(_ => null, ConnectionOptions.Default);
        var engine = new LearnerPortEngine(host, LearnerFanoutOptions.Default with { MaxDeliverBytes = 1024, CatchUpFramesPerTick = 1 }, keyed: true);
        host.Attach(engine);
        var endpoint = (IPEndPoint)host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        // 400 keys, written three times over: the snapshot holds the third round, 400 entries in about 40 chunks.
        host.Invoke(_ =>
        {
            for (ulong i = 1; i <= 1200; i++)
                engine.Log.Append(new LogEntry(i, 1, 0, Encoding.UTF8.GetBytes($"key-{i % 400:D3}"), Encoding.UTF8.GetBytes($"value-{i}")));
            engine.Log.Flush();
            engine.Keyed!.ApplyRetention(DateTimeOffset.UtcNow, keepFrom: 1201);
            engine.Fanout.OnAppended(1, 1200);
            return 0;
        });

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = LearnerClientOptions.Default with { Endpoints = [$"127.0.0.1:{endpoint.Port}"], NodeId = "snapshot", BufferedEntries = 16 };
        await using var learner = await LearnerClient.ConnectAsync(options, deadline.Token);
        var snapshot = new List<ulong>();
        int begins = 0, cuts = 0;
        ulong through = 0;
        await foreach (var e in learner.SubscribeAsync(SubscribeFrom.Snapshot, deadline.Token))
        {
            if (e.IsSnapshotBegin) { begins++; snapshot.Clear(); continue; }
            if (e.IsSnapshotEnd) { through = e.Index; break; }
            snapshot.Add(e.Index);
            Assert.That(Encoding.UTF8.GetString(e.Payload.Span), Is.EqualTo($"value-{e.Index}"));
            if (snapshot.Count == 100 && cuts++ == 0)
                host.Invoke(_ => { engine.Fanout.Close(engine.Fanout.Status()[0].Connection, "cut by the test mid-transfer"); return 0; });
        }
        Assert.That(cuts, Is.EqualTo(1));
        Assert.That(begins, Is.EqualTo(1), "the reconnected client resumed the same snapshot: no second beginning");
        Assert.That(through, Is.EqualTo(1200UL));
        Assert.That(snapshot, Is.EqualTo(Enumerable.Range(801, 400).Select(i => (ulong)i)), "every live key's latest entry once, in index order");
    }

    [Test]
    public async Task A_learner_that_stops_reading_is_cut_and_its_connection_and_backlog_are_gone_within_the_close_timeout()
    {
        // The stalled learner does not read until the end. Its backlog bound is more than the kernel's socket buffers
        // can take, so when it is cut most of its backlog and the closing Error frame stay queued in the relay:
        // only the close deadline can take its connection away.
        long backlog = 2 * KernelSendBufferMax() + (1 << 20);
        await using var host = new EngineHost(_ => null, ConnectionOptions.Default with { CloseTimeout = TimeSpan.FromMilliseconds(300) });
        var engine = new LearnerPortEngine(host, LearnerFanoutOptions.Default with { MaxBacklogBytes = backlog, MaxDeliverBytes = 64 << 10 });
        host.Attach(engine);
        var endpoint = host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        long buffersBefore = FrameBuffer.InUse;

        await using var stalled = await StalledLearner.ConnectAsync(endpoint, "stalled", 1, TimeSpan.FromSeconds(30), deadline.Token);
        await engine.WaitUntilAsync(host, () => engine.Fanout.Status() is [{ State: LearnerState.Live }], deadline.Token);
        // 64 KiB per round: the socket buffers fill, then the relay's queue, then the learner is cut.
        int maxRounds = (int)(4 * backlog / (64 << 10));
        int rounds = 0;
        while (rounds++ < maxRounds && host.Invoke(_ => engine.Fanout.SlowConsumerCuts) == 0)
            host.Invoke(_ => { engine.Append(64, padding: 1000); return 0; });
        Assert.That(host.Invoke(_ => engine.Fanout.SlowConsumerCuts), Is.EqualTo(1), $"not cut after {maxRounds} x 64 KiB (backlog bound {backlog} bytes)");

        int gone = 0;
        try { gone = await engine.FirstDisconnect.Task.WaitAsync(deadline.Token); }
        catch (OperationCanceledException) { Assert.Fail("the relay kept the connection of the learner it cut, which never read again"); }
        Assert.That(host.Connections(), Is.Empty, $"connection {gone} was reported gone");
        Assert.That(host.Invoke(_ => engine.Fanout.LearnerCount), Is.Zero);
        // Its queued frames (nobody else holds them here) go back to the pool once the write loop has let go.
        await Poll.UntilAsync(() => FrameBuffer.InUse <= buffersBefore, "the stalled learner's frame buffers to be released", deadline.Token);

        // Reading at last, it finds a gap-free prefix and then the end of the connection (the Error frame was queued behind the backlog).
        var (error, next) = await StalledLearner.DrainAsync(stalled, 1, deadline.Token);
        Assert.That(error, Is.Null);
        Assert.That(next, Is.LessThan(engine.Log.LastIndex + 1), "it was cut before the end of the stream");
    }

    [Test]
    public async Task A_learner_whose_application_pauses_stops_reading_then_gets_everything_in_order()
    {
        // The client buffers at most BufferedEntries (plus one frame): while its application is paused the rest
        // stays with the relay, queued on the connection, instead of piling up in the learner's memory.
        await using var host = new EngineHost(_ => null, ConnectionOptions.Default);
        var engine = new LearnerPortEngine(host, LearnerFanoutOptions.Default with { MaxBacklogBytes = 1L << 30, MaxDeliverBytes = 64 << 10 });
        host.Attach(engine);
        var endpoint = (IPEndPoint)host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = LearnerClientOptions.Default with
        {
            Endpoints = [$"127.0.0.1:{endpoint.Port}"], NodeId = "paused", BufferedEntries = 64, ReceiveBufferSize = 64 << 10,
        };
        long stream = 4 * KernelSendBufferMax() + (8 << 20);
        int total = (int)(stream / 1000);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstEntry = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var learner = await LearnerClient.ConnectAsync(options, deadline.Token);
        var run = Task.Run(async () =>
        {
            var got = new List<ulong>();
            await foreach (var e in learner.SubscribeAsync(1, deadline.Token))
            {
                got.Add(e.Index);
                if (got.Count == 1)
                {
                    firstEntry.TrySetResult();
                    await resume.Task.WaitAsync(deadline.Token);
                }
                if (e.Index == (ulong)total) break;
            }
            return got;
        });
        host.Invoke(_ => { engine.Append(1); return 0; });
        await firstEntry.Task.WaitAsync(deadline.Token);
        for (int appended = 1; appended < total; appended += 64)
            host.Invoke(_ => { engine.Append(Math.Min(64, total - appended), padding: 990); return 0; });

        await learner.ReadingPaused.WaitAsync(deadline.Token);
        // A Deliver frame holds at most 64 KiB here, about 64 of these entries: the bound plus one frame.
        Assert.That(learner.BufferedEntries, Is.InRange(64, 64 + 70));
        Assert.That(host.Invoke(_ => engine.Fanout.Status().Single().QueuedBytes), Is.GreaterThan(stream / 2),
            "beyond the kernel's buffers the stream waits at the relay");
        resume.TrySetResult();
        var got = await run.WaitAsync(deadline.Token);
        Assert.That(got, Is.EqualTo(Enumerable.Range(1, total).Select(i => (ulong)i).ToList()));
        Assert.That(host.Invoke(_ => engine.Fanout.SlowConsumerCuts), Is.Zero);
    }

    /// <summary>The most a TCP socket's send buffer grows to (Linux tcp_wmem max; 4 MiB where it cannot be read).</summary>
    private static long KernelSendBufferMax()
    {
        try { return long.Parse(File.ReadAllText("/proc/sys/net/ipv4/tcp_wmem").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[2]); }
        catch (IOException) { return 4 << 20; }
    }

    private static bool HasDelivered(LearnerFanout fanout, string node, ulong index)
    {
        foreach (var s in fanout.Status())
            if (s.NodeId == node && s.DeliveredIndex >= index && s.ReceivedIndex >= index) return true;
        return false;
    }

}
