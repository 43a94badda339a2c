using NUnit.Framework;
using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.Tests.Simulation.Learners;

/// <summary>
/// A stand-in relay on loopback built from FramedConnection + Handshake: serves a fixed log to learners,
/// and can refuse, drop connections mid-stream, or answer SnapshotRequired, as scripted.
/// </summary>
internal sealed class ScriptedRelay : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = new();
    private readonly ConcurrentBag<FramedConnection> _connections = new();
    private int _handshakes;

    public ScriptedRelay(ulong lastIndex, Func<ulong, string>? keyOf = null, int port = 0)
    {
        LastIndex = lastIndex;
        KeyOf = keyOf ?? (_ => "");
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        _listener.Listen(64);
        Endpoint = $"127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";
        _tasks.Add(Task.Run(AcceptLoopAsync));
    }

    public ulong LastIndex { get; }
    public Func<ulong, string> KeyOf { get; }
    public string Endpoint { get; }

    /// <summary>Oldest index held; a Subscribe below it gets SnapshotRequired.</summary>
    public ulong FirstRetained { get; init; } = 1;
    /// <summary>Refuses every handshake with this code (and <see cref="RefusalDetail"/>); null welcomes learners.</summary>
    public CodecError? RefuseHandshakeWith { get; init; }

    /// <summary>What a refused handshake is told.</summary>
    public string RefusalDetail { get; init; } = "scripted refusal";

    /// <summary>With <see cref="RefuseHandshakeWith"/>: refuse only this many handshakes, then welcome learners (room came free).</summary>
    public int RefuseFirstHandshakes { get; init; } = int.MaxValue;

    /// <summary>Answers every Subscribe with an Error frame of this code, as a relay's guard refuses a key prefix.</summary>
    public (CodecError Code, string Message)? RefuseSubscribeWith { get; init; }
    public int EntriesPerFrame { get; init; } = 7;

    /// <summary>
    /// Says in the handshake that it heartbeats its learners (<see cref="Capabilities.LearnerHeartbeats"/>), and then,
    /// after streaming its first subscription, hangs as a stopped process does: connections stay open, nothing more is
    /// sent, and later handshakes get no answer. Default false: it promises no heartbeats.
    /// </summary>
    public bool HeartbeatsThenHangs { get; init; }

    private volatile bool _hung;

    /// <summary>
    /// For the n-th subscription: drop the connection after sending this many entries, once they left the
    /// send queue; a negative count drops at once, losing what is still queued (a crash mid-write).
    /// </summary>
    public ConcurrentQueue<int> DropAfter { get; } = new();

    /// <summary>After the first drop, stop accepting (the relay process died).</summary>
    public bool DieOnDrop { get; init; }

    /// <summary>
    /// Durable delivery taken back: once the first subscription was sent entries through <c>SentThrough</c> and
    /// <c>Go</c> completes, the relay sends <c>Truncated(After)</c> and from then on serves entries above <c>After</c>
    /// in epoch 2 (a new leader's).
    /// </summary>
    public (ulong SentThrough, ulong After, Task Go)? Truncation { get; init; }

    private volatile bool _rewritten;

    public int HandshakeAttempts => Volatile.Read(ref _handshakes);
    public ConcurrentQueue<ulong> SubscribedFrom { get; } = new();
    public TaskCompletionSource<ulong> ConfirmSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static string Payload(ulong index) => "entry-" + index;

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            lock (_tasks) _tasks.Add(Task.Run(() => ServeAsync(socket)));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var connection = new FramedConnection(socket, ConnectionOptions.Default);
        _connections.Add(connection);
        connection.StartWriting();
        try
        {
            int handshake = Interlocked.Increment(ref _handshakes);
            if (_hung)
            {
                await WhenCancelled(_stop.Token);
                return;
            }
            var local = Hello.ForThisBuild("scripted-relay", NodeKind.Relay, 1, "", 0,
                Capabilities.Zstd | Capabilities.Mux | Capabilities.Delta | (HeartbeatsThenHangs ? Capabilities.LearnerHeartbeats : 0));
            await Handshake.AcceptAsync(connection, local, hello =>
                RefuseHandshakeWith is { } refusal && handshake <= RefuseFirstHandshakes ? new CodecException(refusal, RefusalDetail)
                : hello.Kind != NodeKind.Learner || hello.TopologyHash != 0 ? new CodecException(CodecError.Protocol, "learners only")
                : null, TimeSpan.FromSeconds(5), _stop.Token);
            var (type, payload) = await connection.ReadOneFrameAsync(_stop.Token);
            Assert.That(type, Is.EqualTo(FrameType.Subscribe));
            var subscribe = Subscribe.Read(new ReadOnlySequence<byte>(payload));
            SubscribedFrom.Enqueue(subscribe.FromIndex);
            if (RefuseSubscribeWith is { } refused)
            {
                connection.Close(refused.Code, refused.Message);
                return;
            }
            _ = Task.Run(() => ReadConfirmsAsync(connection));
            if (subscribe.FromIndex < FirstRetained)
            {
                var frame = FrameBuffer.Rent();
                int start = FrameWriter.Begin(frame.Writer);
                new SnapshotRequired(FirstRetained).Write(frame.Writer);
                FrameWriter.End(frame.Writer, start, FrameType.SnapshotRequired);
                connection.TrySend(frame);
                connection.Close(CodecError.SnapshotRequired, "not retained");
                return;
            }
            int dropAfter = DropAfter.TryDequeue(out int d) ? d : int.MaxValue;
            await StreamAsync(connection, subscribe.FromIndex, subscribe.KeyPrefix.ToArray(), dropAfter);
            if (HeartbeatsThenHangs) _hung = true;
            if (connection.CloseReason is not null && DieOnDrop) _listener.Dispose();
            await Task.WhenAny(WhenCancelled(_stop.Token), WhenCancelled(connection.Closed));
        }
        catch (Exception e) when (e is OperationCanceledException or CodecException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Sends frames of up to EntriesPerFrame matching entries; a frame's <c>through</c> reaches up to just
    /// before the next matching entry (or the end of the log), as the relay's fan-out covers skipped entries.
    /// </summary>
    private async Task StreamAsync(FramedConnection connection, ulong from, byte[] prefix, int dropAfter)
    {
        bool drain = dropAfter >= 0;
        dropAfter = Math.Abs(dropAfter);
        int sent = 0;
        ulong index = from;
        while (index <= LastIndex)
        {
            var frame = FrameBuffer.Rent();
            var included = new List<ulong>();
            ulong scan = index;
            for (; scan <= LastIndex && included.Count < EntriesPerFrame; scan++)
                if (Matches(scan, prefix)) included.Add(scan);
            while (scan <= LastIndex && !Matches(scan, prefix)) scan++;
            ulong through = scan - 1;
            int start = FrameWriter.Begin(frame.Writer);
            DeliverFrame.WriteHeader(frame.Writer, index, (ulong)included.Count, through);
            ulong expected = index;
            foreach (var i in included)
            {
                ulong epoch = _rewritten && i > Truncation!.Value.After ? 2UL : 1UL;
                EntryRecord.Write(frame.Writer, i - expected, epoch, 1_700_000_000_000_000 + (long)i,
                    Encoding.UTF8.GetBytes(KeyOf(i)), Encoding.UTF8.GetBytes(Payload(i)));
                expected = i + 1;
            }
            FrameWriter.End(frame.Writer, start, FrameType.Deliver);
            if (!connection.TrySend(frame)) return;
            sent += included.Count;
            index = through + 1;
            if (Truncation is { } t && !_rewritten && through >= t.SentThrough)
            {
                await t.Go.WaitAsync(_stop.Token);
                _rewritten = true;
                var truncated = FrameBuffer.Rent();
                int at = FrameWriter.Begin(truncated.Writer);
                new Truncated(t.After).Write(truncated.Writer);
                FrameWriter.End(truncated.Writer, at, FrameType.Truncated);
                if (!connection.TrySend(truncated)) return;
                index = t.After + 1;
            }
            if (sent >= dropAfter)
            {
                if (drain) await connection.WhenDrainedAsync();
                connection.Abort(CodecError.Protocol, "scripted drop");
                return;
            }
        }
    }

    private static Task WhenCancelled(CancellationToken token)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => done.TrySetResult());
        return done.Task;
    }

    private bool Matches(ulong index, byte[] prefix) => prefix.Length == 0 || Encoding.UTF8.GetBytes(KeyOf(index)).AsSpan().StartsWith(prefix);

    private async Task ReadConfirmsAsync(FramedConnection connection)
    {
        try
        {
            while (true)
            {
                var (type, payload) = await connection.ReadOneFrameAsync(connection.Closed);
                if (type == FrameType.Confirm)
                    ConfirmSeen.TrySetResult(Confirm.Read(new ReadOnlySequence<byte>(payload)).Index);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or CodecException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        foreach (var c in _connections) c.Abort(CodecError.Shutdown, "test over");
        Task[] tasks;
        lock (_tasks) tasks = _tasks.ToArray();
        try { await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(5)); } catch (TimeoutException) { }
        foreach (var c in _connections) await c.DisposeAsync();
    }
}
