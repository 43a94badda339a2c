using System.Net;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using GeoRelay.Engines;
using GeoRelay.Transport.Security;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using GeoRelay.Server.Hosting;
using GeoRelay.Server.Security;

namespace GeoRelay.Tests.Simulation.Security;

/// <summary>The transport's connection limits, on real loopback sockets: each breach cuts the peer with a reason and is counted.</summary>
[TestFixture]
public sealed class HostLimitsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Accepts every learner (unless told to refuse them all) and ignores what it sends: only the host's guards act.</summary>
    private sealed class AcceptAllEngine : IEngine
    {
        public CodecException? Refusal { get; init; }
        public List<EngineCommand> Outbox { get; } = new();
        public Hello LocalHello { get; } = Hello.ForThisBuild("limits-test", NodeKind.Relay, 1, "", 0);
        public CodecException? CheckPeer(in Hello hello, PortKind port) => Refusal;
        public void OnConnected(int connection, PeerInfo peer) { }
        public void OnDisconnected(int connection) { }
        public void OnDialFailed(string nodeId, string reason) { }
        public void OnFrame(int connection, in Frame frame) { }
        public void OnTick() { }
    }

    private static (EngineHost Host, EndPoint Port) Start(ConnectionOptions options, LineCollector? logs = null, AcceptAllEngine? engine = null)
    {
        var host = new EngineHost(_ => null, options, logs?.Factory.CreateLogger("host"));
        host.Attach(engine ?? new AcceptAllEngine());
        var port = host.Listen(new IPEndPoint(IPAddress.Loopback, 0), PortKind.Learner);
        host.Start();
        return (host, port);
    }

    private static async Task<FramedConnection> HandshakeAsync(EndPoint port)
    {
        var connection = await FramedConnection.ConnectAsync(port, ConnectionOptions.Default, CancellationToken.None);
        connection.StartWriting();
        await Handshake.DialAsync(connection, Hello.ForThisBuild("learner", NodeKind.Learner, 0, "", 0, Capabilities.None), Patience, CancellationToken.None);
        return connection;
    }

    /// <summary>Reads until the host closes the connection; returns the reason in its Error frame.</summary>
    private static async Task<CodecError> ClosedWithAsync(FramedConnection connection)
    {
        using var timeout = new CancellationTokenSource(Patience);
        while (true)
        {
            var (type, payload) = await connection.ReadOneFrameAsync(timeout.Token);
            if (type == FrameType.Error) return ErrorFrame.Read(new(payload)).Code;
        }
    }

    private static void Send(FramedConnection connection, FrameType type, Action<FrameBuffer> write)
    {
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        write(frame);
        FrameWriter.End(frame.Writer, start, type);
        connection.TrySend(frame);
    }

    [Test]
    public async Task SilentConnectionIsCutAfterTheIdleTimeoutWhileAHeartbeatingOneStays()
    {
        var (host, port) = Start(ConnectionOptions.Default with { IdleTimeout = TimeSpan.FromMilliseconds(500) });
        await using var _ = host;
        await using var silent = await HandshakeAsync(port);
        await using var alive = await HandshakeAsync(port);
        using var stop = new CancellationTokenSource();
        var heartbeats = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
                Send(alive, FrameType.Heartbeat, f => { var d = new DeltaState(); new Heartbeat(0, 0, 0).Write(f.Writer, ref d); });
        });

        Assert.That(await ClosedWithAsync(silent), Is.EqualTo(CodecError.Timeout));
        Assert.That(host.Refusals.Get(RefusalKind.IdleTimeout), Is.EqualTo(1));
        Assert.That(alive.Closed.IsCancellationRequested, Is.False, "the connection that kept talking is still open");
        stop.Cancel();
        try { await heartbeats; } catch (OperationCanceledException) { }
    }

    /// <summary>Queues raw bytes (a piece of a frame) on a client connection.</summary>
    private static bool SendRaw(FramedConnection connection, ReadOnlySpan<byte> bytes)
    {
        var buffer = FrameBuffer.Rent();
        buffer.Writer.Write(bytes);
        return connection.TrySend(buffer);
    }

    private static byte[] HeartbeatFrame()
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>();
        var payload = new System.Buffers.ArrayBufferWriter<byte>();
        var delta = new DeltaState();
        new Heartbeat(0, 0, 1).Write(payload, ref delta);
        FrameWriter.Write(w, FrameType.Heartbeat, FrameFlags.None, payload.WrittenSpan);
        return w.WrittenSpan.ToArray();
    }

    [Test]
    public async Task FrameDribbledPastTheFrameTimeoutIsCutWhileSlowWholeFramesAreNot()
    {
        var (host, port) = Start(ConnectionOptions.Default with { FrameTimeout = TimeSpan.FromMilliseconds(1500) });
        await using var _ = host;
        await using var dribbler = await HandshakeAsync(port);
        await using var honest = await HandshakeAsync(port);
        using var stop = new CancellationTokenSource();
        // A frame header claiming 200 bytes, then a byte every 200 ms until the host hangs up (the client's own pacing).
        var dribbling = Task.Run(async () =>
        {
            byte[] head = [200, 0, 0, 0, (byte)FrameType.Heartbeat, 0];
            if (!SendRaw(dribbler, head)) return;
            while (!stop.IsCancellationRequested && SendRaw(dribbler, [0]))
                await Task.Delay(200, stop.Token).ConfigureAwait(false);
        });

        // 30 whole heartbeats, each a byte every 10 ms: a frame takes a fraction of the timeout, all of them several times it.
        var frame = HeartbeatFrame();
        for (int n = 0; n < 30; n++)
        {
            for (int i = 0; i < frame.Length; i++)
            {
                SendRaw(honest, frame.AsSpan(i, 1));
                await Task.Delay(10);
            }
        }
        Assert.That(await ClosedWithAsync(dribbler), Is.EqualTo(CodecError.Timeout));
        stop.Cancel();
        try { await dribbling; } catch (OperationCanceledException) { }
        Assert.That(host.Refusals.Get(RefusalKind.FrameTimeout), Is.EqualTo(1));
        Assert.That(host.Refusals.Total, Is.EqualTo(1), "only the dribbler was cut: whole frames, however slow, are not");
    }

    [Test]
    public async Task ConnectionPastThePortLimitIsRefusedWithAReason()
    {
        var (host, port) = Start(ConnectionOptions.Default with { MaxConnectionsPerPort = 2 });
        await using var _ = host;
        await using var first = await HandshakeAsync(port);
        await using var second = await HandshakeAsync(port);
        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(async () => await HandshakeAsync(port));
        Assert.That(refused!.Reason, Is.EqualTo(CodecError.LimitExceeded));
        Assert.That(refused.Message, Does.Contain("already has 2 connections"));
        Assert.That(host.Refusals.Get(RefusalKind.PortFull), Is.EqualTo(1));
        Assert.That(host.OpenConnections(PortKind.Learner), Is.EqualTo(2));
    }

    [Test]
    public async Task ConnectionsPastThePerAddressLimitAreRefused()
    {
        var (host, port) = Start(ConnectionOptions.Default with { MaxConnectionsPerAddress = 1 });
        await using var _ = host;
        await using var first = await HandshakeAsync(port);
        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(async () => await HandshakeAsync(port));
        Assert.That(refused!.Reason, Is.EqualTo(CodecError.LimitExceeded));
        Assert.That(host.Refusals.Get(RefusalKind.AddressFull), Is.EqualTo(1));
    }

    [Test]
    public async Task SubscribeFloodIsCutWithLimitExceeded()
    {
        var logs = new LineCollector();
        var (host, port) = Start(ConnectionOptions.Default with { MaxSubscribesPerSecond = 3 }, logs);
        await using var _ = host;
        await using var flood = await HandshakeAsync(port);
        for (int i = 0; i < 50; i++)
            Send(flood, FrameType.Subscribe, f => new Subscribe(1, default, SubscribeFlags.None).Write(f.Writer));
        Assert.That(await ClosedWithAsync(flood), Is.EqualTo(CodecError.LimitExceeded));
        Assert.That(host.Refusals.Get(RefusalKind.SubscribeRate), Is.EqualTo(1));
        // Warned once, as a cut (the guard's exception also ends the read loop: not a second, "bad frame", warning),
        // besides the line every disconnect gets.
        await Poll.UntilAsync(() => logs.Text.Contains("Disconnected from learner"), "the disconnect logged", Patience);
        var warnings = logs.Text.Split('\n').Where(l => l.Contains("Subscribe requests in one second") && !l.StartsWith("Disconnected", StringComparison.Ordinal)).ToArray();
        Assert.That(warnings, Has.Length.EqualTo(1), logs.Text);
        Assert.That(warnings[0], Does.Match(@"^Cut learner at 127\.0\.0\.1:\d+ \(SubscribeRate\): more than 3 Subscribe requests in one second$"));
    }

    [Test]
    public async Task AHandshakeRefusalSaysItsReasonOnceToThePeerAndInTheLog()
    {
        const string why = "limits-test has had no feed from the leader for 10399 ms; try another relay or member";
        var logs = new LineCollector();
        var (host, port) = Start(ConnectionOptions.Default, logs, new AcceptAllEngine { Refusal = new CodecException(CodecError.Shutdown, why) });
        await using var _ = host;

        var refused = Assert.ThrowsAsync<HandshakeRefusedException>(async () => await HandshakeAsync(port))!;

        Assert.That((refused.Reason, refused.Detail), Is.EqualTo((CodecError.Shutdown, why)));
        Assert.That(refused.Message, Is.EqualTo("refused by peer: Shutdown: " + why));
        await Poll.UntilAsync(() => logs.Text.Contains("Refused connection"), "the refusal logged", Patience);
        Assert.That(logs.Text, Does.Match(@"Refused connection from 127\.0\.0\.1:\d+: Shutdown: limits-test has had no feed").And.Not.Contain("Shutdown: Shutdown"));
    }
}
