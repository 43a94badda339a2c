using System.Collections.Concurrent;
using System.Net;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.Cli;

/// <summary>Publishes entries to a leader's publish port, pipelined: many requests in flight, acks matched by id.</summary>
public sealed class PublishClient : IAsyncDisposable
{
    private readonly FramedConnection _connection;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<PublishAck>> _pending = new();
    private readonly Task _readLoop;
    private readonly Task _heartbeats;
    private ulong _nextRequest;

    /// <summary>Time allowed to connect and handshake (TLS included): generous, since the leader enforces its own limit.</summary>
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>A quiet publisher sends this often so the leader's idle timeout does not cut it.</summary>
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(10);

    private PublishClient(FramedConnection connection)
    {
        _connection = connection;
        _readLoop = Task.Run(ReadAsync);
        _heartbeats = ClientHeartbeats.SendWhileOpenAsync(connection, HeartbeatInterval, CancellationToken.None);
    }

    /// <summary>
    /// Connects to a leader's publish port. <paramref name="token"/> (from <c>georelay token</c>) is sent in the
    /// handshake; with <paramref name="tls"/> the port is dialed over TLS and the leader's certificate checked against its CA.
    /// </summary>
    public static async Task<PublishClient> ConnectAsync(EndPoint leader, CancellationToken ct, string? token = null,
        GeoRelay.Transport.Security.NodeTls? tls = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ConnectTimeout);
        var connection = tls is null
            ? await FramedConnection.ConnectAsync(leader, ConnectionOptions.Default, ct).ConfigureAwait(false)
            : await FramedConnection.ConnectTlsAsync(leader, ConnectionOptions.Default,
                tls.ClientOptions(leader is IPEndPoint ip ? ip.Address.ToString() : ((DnsEndPoint)leader).Host, expectedNodeId: null), timeout.Token).ConfigureAwait(false);
        connection.StartWriting();
        try
        {
            var auth = token is null ? ReadOnlyMemory<byte>.Empty : System.Text.Encoding.UTF8.GetBytes(token);
            var hello = Hello.ForThisBuild("publisher-" + Environment.ProcessId, NodeKind.Publisher, 0, "", 0, auth: auth);
            await Handshake.DialAsync(connection, hello, ConnectTimeout, ct).ConfigureAwait(false);
            return new PublishClient(connection);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public Task<PublishAck> PublishAsync(IReadOnlyList<(ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload)> entries, WaitLevel wait)
    {
        ulong request = Interlocked.Increment(ref _nextRequest);
        var done = new TaskCompletionSource<PublishAck>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[request] = done;
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        PublishFrame.WriteHeader(frame.Writer, request, wait, entries.Count);
        foreach (var (key, payload) in entries) PublishFrame.WriteEntry(frame.Writer, key.Span, payload.Span);
        FrameWriter.End(frame.Writer, start, FrameType.Publish);
        if (!_connection.TrySend(frame))
        {
            _pending.TryRemove(request, out _);
            done.TrySetException(new IOException("connection to the leader is closed"));
        }
        return done.Task;
    }

    private async Task ReadAsync()
    {
        Exception? failure = null;
        try
        {
            await _connection.ReadLoopAsync(null, frame =>
            {
                switch (frame.Type)
                {
                    case FrameType.PublishAck:
                        var ack = PublishAck.Read(frame.Payload);
                        if (_pending.TryRemove(ack.Request, out var done)) done.TrySetResult(ack);
                        break;
                    case FrameType.Error:
                        var error = ErrorFrame.Read(frame.Payload);
                        failure = new IOException($"leader closed the connection: {error.Code}: {error.Message}");
                        break;
                }
            }).ConfigureAwait(false);
        }
        catch (CodecException e)
        {
            failure = e;
        }
        failure ??= new IOException("leader closed the connection" + (_connection.CloseReason is { } r ? $": {r.Reason}: {r.Message}" : ""));
        foreach (var (id, done) in _pending)
            if (_pending.TryRemove(id, out _)) done.TrySetException(failure);
    }

    public async ValueTask DisposeAsync()
    {
        _connection.Abort(CodecError.None, "publisher done");
        await _readLoop.ConfigureAwait(false);
        await _heartbeats.ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
    }
}
