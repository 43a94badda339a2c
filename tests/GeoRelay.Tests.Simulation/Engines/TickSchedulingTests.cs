using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using GeoRelay.Transport;
using GeoRelay.Engines;
using NUnit.Framework;
using GeoRelay.Server.Hosting;

namespace GeoRelay.Tests.Simulation.Engines;

/// <summary>
/// EngineHost ticks an engine when its <see cref="IEngine.NextTickMicros"/> says so: at once after the event that
/// made work, at a future deadline by its timer, and never while idle; it runs an engine's fsync off the engine's
/// lock; FramedConnection keeps frame order when its inline sends hand over to the write loop.
/// </summary>
[TestFixture]
public sealed class TickSchedulingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Each heartbeat it receives asks for a tick, at once or after a delay; idle, it never asks.</summary>
    private sealed class ScheduledEngine(IEngineEnvironment env, long delayMicros) : IEngine
    {
        private readonly object _gate = new();
        private long _due = long.MaxValue;
        public int Frames, Ticks, TicksAfterFrame;
        public List<EngineCommand> Outbox { get; } = new();
        public Hello LocalHello { get; } = Hello.ForThisBuild("tick-test", NodeKind.Relay, 1, "", 0);
        public CodecException? CheckPeer(in Hello hello, PortKind port) => null;
        public void OnConnected(int connection, PeerInfo peer) { }
        public void OnDisconnected(int connection) { }
        public void OnDialFailed(string nodeId, string reason) { }

        public void OnFrame(int connection, in Frame frame)
        {
            if (frame.Type != FrameType.Heartbeat) return;
            lock (_gate)
            {
                Frames++;
                _due = delayMicros == 0 ? long.MinValue : env.NowMicros + delayMicros;
            }
        }

        public void OnTick()
        {
            lock (_gate)
            {
                Ticks++;
                if (_due <= env.NowMicros) TicksAfterFrame++;
                _due = long.MaxValue;
            }
        }

        public long NextTickMicros { get { lock (_gate) return _due; } }

        public (int Frames, int Ticks, int TicksAfterFrame) Counts() { lock (_gate) return (Frames, Ticks, TicksAfterFrame); }
    }

    private static async Task<(EngineHost Host, ScheduledEngine Engine, FramedConnection Client)> StartAsync(long delayMicros)
    {
        var host = new EngineHost(_ => null, ConnectionOptions.Default);
        var engine = new ScheduledEngine(host, delayMicros);
        host.Attach(engine);
        var port = host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        var client = await FramedConnection.ConnectAsync(port, ConnectionOptions.Default, CancellationToken.None);
        client.StartWriting();
        await Handshake.DialAsync(client, Hello.ForThisBuild("learner", NodeKind.Learner, 0, "", 0, Capabilities.None), Patience, CancellationToken.None);
        return (host, engine, client);
    }

    private static void SendHeartbeat(FramedConnection connection)
    {
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        var delta = new DeltaState();
        new Heartbeat(1, 0, 0).Write(frame.Writer, ref delta);
        FrameWriter.End(frame.Writer, start, FrameType.Heartbeat);
        Assert.That(connection.TrySend(frame), Is.True);
    }

    [Test]
    public async Task WorkIsTickedRightAfterTheEventThatMadeItAndAnIdleEngineNotAtAll()
    {
        var (host, engine, client) = await StartAsync(delayMicros: 0);
        await using var _ = host;
        await using var __ = client;
        for (int i = 1; i <= 3; i++)
        {
            SendHeartbeat(client);
            await Poll.UntilAsync(() => engine.Counts().TicksAfterFrame == i, $"tick {i}", Patience);
        }
        // A fixed-period timer would have ticked it hundreds of times by now (handshake, three round trips).
        var (frames, ticks, afterFrame) = engine.Counts();
        Assert.That((frames, ticks, afterFrame), Is.EqualTo((3, 3, 3)), "one tick per event that asked for one, none while idle");
    }

    /// <summary>
    /// Natural batching: frames that arrive in one read are handled one by one, and the work they leave is ticked once,
    /// after the last (a leader sends them as one batch per datacenter, not one each).
    /// </summary>
    [Test]
    public async Task FramesThatArriveTogetherAreTickedOnceAfterTheLast()
    {
        var (host, engine, client) = await StartAsync(delayMicros: 0);
        await using var _ = host;
        await using var __ = client;
        const int burst = 200;
        var frames = FrameBuffer.Rent(); // one buffer, one write: the frames arrive together
        var delta = new DeltaState();
        for (int i = 0; i < burst; i++)
        {
            int start = FrameWriter.Begin(frames.Writer);
            new Heartbeat(1, 0, 0).Write(frames.Writer, ref delta);
            FrameWriter.End(frames.Writer, start, FrameType.Heartbeat);
        }
        Assert.That(client.TrySend(frames), Is.True);
        await Poll.UntilAsync(() => engine.Counts().Frames == burst && engine.Counts().TicksAfterFrame > 0, "the burst handled and ticked", Patience);
        var (_, ticks, _) = engine.Counts();
        // One read takes them all here (about 3 KB on loopback). The loop defers at most 64 ticks in a row, so a steady
        // stream still sends: 200 frames tick 4 times (one more if the read was split); a tick per frame would be 200.
        Assert.That(ticks, Is.LessThanOrEqualTo(burst / 64 + 2), $"{burst} frames of one burst, {ticks} ticks: the tick waits for the next frame of a read");
    }

    [Test]
    public async Task AFutureDeadlineIsTickedByTheTimer()
    {
        var (host, engine, client) = await StartAsync(delayMicros: 20_000);
        await using var _ = host;
        await using var __ = client;
        SendHeartbeat(client);
        await Poll.UntilAsync(() => engine.Counts().Ticks == 1, "the deadline's tick", Patience);
        Assert.That(engine.Counts(), Is.EqualTo((1, 1, 1)), "ticked once, when the deadline came, not before");
    }

    /// <summary>Asks for a sync on the first heartbeat; the sync blocks until the test lets the disk finish.</summary>
    private sealed class SyncingEngine(ManualResetEventSlim disk) : IEngine
    {
        private readonly object _gate = new();
        private int _frames, _synced, _syncs;
        private int _framesWhenSynced = -1;
        public List<EngineCommand> Outbox { get; } = new();
        public Hello LocalHello { get; } = Hello.ForThisBuild("sync-test", NodeKind.Member, 1, "", 0);
        public CodecException? CheckPeer(in Hello hello, PortKind port) => null;
        public void OnConnected(int connection, PeerInfo peer) { }
        public void OnDisconnected(int connection) { }
        public void OnDialFailed(string nodeId, string reason) { }
        public void OnTick() { }
        public long NextTickMicros => long.MaxValue;

        public void OnFrame(int connection, in Frame frame)
        {
            if (frame.Type != FrameType.Heartbeat) return;
            lock (_gate)
            {
                if (_frames++ == 0)
                {
                    _syncs++;
                    Outbox.Add(EngineCommand.Sync(() => disk.Wait(Patience)));
                }
            }
        }

        public void OnSynced()
        {
            lock (_gate)
            {
                _synced++;
                _framesWhenSynced = _frames;
            }
        }

        public (int Frames, int Syncs, int Synced, int FramesWhenSynced) Counts() { lock (_gate) return (_frames, _syncs, _synced, _framesWhenSynced); }
    }

    [Test]
    public async Task FramesAreHandledWhileTheEnginesFsyncRunsAndTheEngineHearsWhenItEnds()
    {
        using var disk = new ManualResetEventSlim(false);
        var host = new EngineHost(_ => null, ConnectionOptions.Default);
        await using var _ = host;
        var engine = new SyncingEngine(disk);
        host.Attach(engine);
        var port = host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        await using var client = await FramedConnection.ConnectAsync(port, ConnectionOptions.Default, CancellationToken.None);
        client.StartWriting();
        await Handshake.DialAsync(client, Hello.ForThisBuild("learner", NodeKind.Learner, 0, "", 0, Capabilities.None), Patience, CancellationToken.None);

        for (int i = 0; i < 5; i++) SendHeartbeat(client);
        // The first frame's sync is stuck on the disk; the other four must still reach the engine.
        await Poll.UntilAsync(() => engine.Counts().Frames == 5, "frames behind a running fsync", Patience);
        Assert.That(engine.Counts(), Is.EqualTo((5, 1, 0, -1)), "one sync asked for and not finished");

        disk.Set();
        await Poll.UntilAsync(() => engine.Counts().Synced == 1, "the end of the sync", Patience);
        Assert.That(engine.Counts(), Is.EqualTo((5, 1, 1, 5)));
    }

    [Test]
    public async Task FramesKeepTheirOrderWhenInlineSendsHandOverToTheWriteLoop()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var accept = listener.AcceptAsync();
        var dialer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = 4096 };
        await dialer.ConnectAsync(listener.LocalEndPoint!);
        var options = ConnectionOptions.Default with { MaxQueuedBytes = 256L << 20 };
        await using var sender = new FramedConnection(dialer, options);
        await using var receiver = new FramedConnection(await accept, options);
        sender.StartWriting();

        // Far more than the socket buffers hold while nobody reads: the first sends go inline, then would block.
        const int count = 400;
        var payload = new byte[16 * 1024];
        for (int i = 0; i < count; i++)
        {
            var frame = FrameBuffer.Rent();
            int start = FrameWriter.Begin(frame.Writer);
            BinaryPrimitives.WriteInt32LittleEndian(payload, i);
            frame.Writer.Write(payload);
            FrameWriter.End(frame.Writer, start, FrameType.Deliver);
            Assert.That(sender.TrySend(frame), Is.True);
        }
        Assert.That(sender.QueuedBytes, Is.GreaterThan(0), "the socket filled up, so the write loop had work");

        using var timeout = new CancellationTokenSource(Patience);
        for (int i = 0; i < count; i++)
        {
            var (type, received) = await receiver.ReadOneFrameAsync(timeout.Token);
            Assert.That(type, Is.EqualTo(FrameType.Deliver));
            Assert.That(received.Length, Is.EqualTo(payload.Length));
            Assert.That(BinaryPrimitives.ReadInt32LittleEndian(received), Is.EqualTo(i), "frames arrive in the order they were queued");
        }
        await sender.WhenDrainedAsync().WaitAsync(Patience);
        Assert.That(sender.QueuedBytes, Is.EqualTo(0));
    }
}
