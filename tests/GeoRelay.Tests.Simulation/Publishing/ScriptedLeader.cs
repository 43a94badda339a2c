using System.Buffers;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.Tests.Simulation.Publishing;

/// <summary>
/// A stand-in leader on loopback built from FramedConnection + Handshake: takes one publisher at a time, records
/// every Publish request, and acknowledges them in the order received, at once or when the test says
/// (<see cref="AutoAck"/> false), giving consecutive indexes from 1.
/// </summary>
internal sealed class ScriptedLeader : IAsyncDisposable
{
    /// <summary>
    /// One Publish request as received; <paramref name="AcksSentBefore"/> counts the acks sent before it arrived,
    /// <paramref name="Producer"/> is its producer id and first sequence (zeros without exactly-once).
    /// </summary>
    public sealed record Request(ulong Id, WaitLevel Wait, List<(byte[] Key, byte[] Payload)> Entries, int AcksSentBefore, ProducerSequence Producer);

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Lock _gate = new();
    private readonly List<Request> _received = new();
    private readonly Queue<Request> _unacked = new();
    private FramedConnection? _connection;
    private ulong _nextIndex = 1;
    private int _acksSent;
    private int _accepted;
    private int _refused;

    public ScriptedLeader(int port = 0)
    {
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start(16);
        Endpoint = $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public string Endpoint { get; }

    public bool AutoAck { get; init; } = true;

    /// <summary>Refuses every handshake from now on with this code and <see cref="RefusalMessage"/>; null welcomes publishers.</summary>
    public CodecError? RefuseHandshakeWith { get; set; }

    /// <summary>With <see cref="RefuseHandshakeWith"/>: refuses only this many handshakes, then welcomes publishers (null: every one).</summary>
    public int? RefuseOnly { get; init; }

    /// <summary>Handshakes refused so far.</summary>
    public int Refused
    {
        get { lock (_gate) return _refused; }
    }

    /// <summary>The message of a refused handshake (a follower names the leader in it). Default "scripted refusal".</summary>
    public string RefusalMessage { get; set; } = "scripted refusal";

    /// <summary>Publishers whose handshake this leader accepted.</summary>
    public int Accepted
    {
        get { lock (_gate) return _accepted; }
    }

    public List<Request> Received
    {
        get { lock (_gate) return [.. _received]; }
    }

    public int ReceivedCount
    {
        get { lock (_gate) return _received.Count; }
    }

    /// <summary>Acknowledges the oldest <paramref name="count"/> requests not yet acknowledged.</summary>
    public void Ack(int count = 1)
    {
        lock (_gate)
        {
            for (int i = 0; i < count; i++) AckOldest();
        }
    }

    /// <summary>Closes the publisher's connection with an Error frame, as a leader refusing a request does.</summary>
    public void CloseWithError(CodecError reason, string message) => _connection?.Close(reason, message);

    /// <summary>Cuts the publisher's connection without a word, as a leader that dies does.</summary>
    public void Drop() => _connection?.Abort(CodecError.None, "scripted drop");

    private void AckOldest()
    {
        if (!_unacked.TryDequeue(out var request)) throw new InvalidOperationException("no request received is waiting for an ack");
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new PublishAck(request.Id, _nextIndex, (ulong)request.Entries.Count, request.Wait).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.PublishAck);
        _nextIndex += (ulong)request.Entries.Count;
        _acksSent++;
        _connection!.TrySend(frame);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            await ServeAsync(socket);
        }
    }

    private bool TakeRefusal()
    {
        lock (_gate)
        {
            if (RefuseOnly is { } only && _refused >= only) return false;
            _refused++;
            return true;
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var connection = new FramedConnection(socket, ConnectionOptions.Default);
        connection.StartWriting();
        try
        {
            var local = Hello.ForThisBuild("scripted-leader", NodeKind.Leader, 1, "", 0);
            await Handshake.AcceptAsync(connection, local, hello =>
                RefuseHandshakeWith is { } refusal && TakeRefusal() ? new CodecException(refusal, RefusalMessage)
                : hello.Kind == NodeKind.Publisher ? null : new CodecException(CodecError.Protocol, "publishers only"), TimeSpan.FromSeconds(5), _stop.Token);
            lock (_gate)
            {
                _connection = connection;
                _accepted++;
            }
            using var closed = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, connection.Closed);
            while (true)
            {
                var (type, payload) = await connection.ReadOneFrameAsync(closed.Token);
                if (type == FrameType.Heartbeat) continue;
                if (type != FrameType.Publish) throw new CodecException(CodecError.Protocol, $"a publisher sent {type}");
                var reader = PublishFrame.Read(new ReadOnlySequence<byte>(payload), out var id, out var wait, out var count, out var producer);
                var entries = new List<(byte[], byte[])>(count);
                while (reader.TryNext(out var key, out var value)) entries.Add((key.ToArray(), value.ToArray()));
                lock (_gate)
                {
                    var request = new Request(id, wait, entries, _acksSent, producer);
                    _received.Add(request);
                    _unacked.Enqueue(request);
                    if (AutoAck) AckOldest();
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or CodecException or IOException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _connection = null;
                _unacked.Clear();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        _connection?.Abort(CodecError.Shutdown, "test over");
        await _accepting.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
