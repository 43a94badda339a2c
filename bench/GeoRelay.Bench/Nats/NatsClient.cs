using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace GeoRelay.Bench.Nats;

/// <summary>Called on the client's read loop for every MSG of a subscription; the op's slices are valid only during the call.</summary>
public delegate void NatsMessageHandler(in NatsServerOp message);

/// <summary>
/// A small core-NATS client for benchmarks (our own, not the official one): PUB, SUB, MSG, PING/PONG over one
/// TCP connection, with a read loop and a write loop over pipes. No reconnect, no headers, no TLS or auth —
/// a benchmark wants to see a dropped connection, not hide it. Any -ERR from the server ends the connection
/// (<see cref="Closed"/> faults with the server's text).
/// <code>
/// await using var nats = await NatsClient.ConnectAsync(server.ClientEndPoint);
/// nats.Subscribe("bench.entries", (in NatsServerOp m) => Count(m.Payload));
/// await nats.PingAsync();                 // the server has the SUB once PONG is back
/// await nats.PublishAsync("bench.entries", payload);
/// </code>
/// </summary>
public sealed class NatsClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Pipe _outbound = new(new PipeOptions(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20, useSynchronizationContext: false));
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, NatsMessageHandler> _handlers = new();
    private readonly ConcurrentQueue<TaskCompletionSource> _pings = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _readLoop = Task.CompletedTask, _writeLoop = Task.CompletedTask;
    private long _nextSid;
    private int _maxPayload = 1 << 20;

    /// <summary>The server's INFO JSON from the start of the connection.</summary>
    public string ServerInfo { get; private set; } = "";

    /// <summary>Completes when the connection ends; faulted with the reason (e.g. the server's -ERR 'Slow Consumer') if it was not our own Dispose.</summary>
    public Task Closed => _closed.Task;

    /// <summary>MSG operations received on all subscriptions.</summary>
    public long MessagesReceived => Interlocked.Read(ref _messagesReceived);
    private long _messagesReceived;

    private NatsClient(Socket socket) => _socket = socket;

    /// <summary>Connects, reads INFO, sends CONNECT (verbose and pedantic off) and waits for the PONG of a first PING.</summary>
    public static async Task<NatsClient> ConnectAsync(IPEndPoint server, string name = "georelay-bench", CancellationToken cancellationToken = default)
    {
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var client = new NatsClient(socket);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(server, timeout.Token);
            var reader = PipeReader.Create(new NetworkStream(socket, ownsSocket: false));
            await client.ReadInfoAsync(reader, timeout.Token);
            NatsProtocol.WriteConnect(client._outbound.Writer, name);
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            client._pings.Enqueue(first);
            NatsProtocol.WritePing(client._outbound.Writer);
            await client._outbound.Writer.FlushAsync(timeout.Token);
            client._readLoop = Task.Run(() => client.ReadLoopAsync(reader));
            client._writeLoop = Task.Run(client.WriteLoopAsync);
            await first.Task.WaitAsync(timeout.Token);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Subscribes to <paramref name="subject"/> (wildcards allowed) and returns the sid; the handler runs on the read loop, so keep it short.</summary>
    public long Subscribe(string subject, NatsMessageHandler handler, string? queueGroup = null)
    {
        CheckSubject(subject);
        long sid = Interlocked.Increment(ref _nextSid);
        _handlers[sid] = handler;
        _writeLock.Wait();
        try
        {
            NatsProtocol.WriteSub(_outbound.Writer, subject, queueGroup, sid);
            _outbound.Writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        }
        finally { _writeLock.Release(); }
        return sid;
    }

    /// <summary>Queues one PUB. Waits only when the outbound buffer (4 MiB) is full: that is the back-pressure.</summary>
    public async ValueTask PublishAsync(string subject, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        if (payload.Length > _maxPayload)
            throw new ArgumentException($"payload of {payload.Length} bytes exceeds the server's max_payload {_maxPayload}", nameof(payload));
        CheckSubject(subject);
        int subjectBytes = Encoding.ASCII.GetByteCount(subject);
        byte[] rented = ArrayPool<byte>.Shared.Rent(subjectBytes);
        try
        {
            Encoding.ASCII.GetBytes(subject, rented);
            await _writeLock.WaitAsync(cancellationToken);
            try
            {
                NatsProtocol.WritePub(_outbound.Writer, rented.AsSpan(0, subjectBytes), payload.Span);
                var flush = await _outbound.Writer.FlushAsync(cancellationToken);
                if (flush.IsCompleted) throw new IOException("NATS connection closed");
            }
            finally { _writeLock.Release(); }
        }
        finally { ArrayPool<byte>.Shared.Return(rented); }
    }

    /// <summary>PING and wait for PONG: once it returns, the server has processed everything sent before.</summary>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            _pings.Enqueue(pong);
            NatsProtocol.WritePing(_outbound.Writer);
            await _outbound.Writer.FlushAsync(cancellationToken);
        }
        finally { _writeLock.Release(); }
        if (Closed.IsCompleted) pong.TrySetException(new IOException("NATS connection closed"));
        await pong.Task.WaitAsync(cancellationToken);
    }

    private static void CheckSubject(string subject)
    {
        if (subject.Length == 0 || subject.AsSpan().IndexOfAny(" \t\r\n") >= 0 || !Ascii.IsValid(subject))
            throw new ArgumentException($"NATS subject '{subject}' is empty or holds whitespace or non-ASCII characters", nameof(subject));
    }

    private async Task ReadInfoAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (NatsProtocol.TryRead(ref buffer, _maxPayload, out var op))
            {
                if (op.Kind != NatsOpKind.Info)
                    throw new NatsProtocolException($"expected INFO first, got {op.Kind}");
                ServerInfo = Encoding.UTF8.GetString(op.Payload);
                using var json = JsonDocument.Parse(ServerInfo);
                if (json.RootElement.TryGetProperty("max_payload", out var max) && max.TryGetInt32(out int value) && value > 0)
                    _maxPayload = value;
                reader.AdvanceTo(buffer.Start);
                return;
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) throw new IOException("NATS server closed the connection before INFO");
        }
    }

    private async Task ReadLoopAsync(PipeReader reader)
    {
        Exception? failure = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stop.Token);
                var buffer = result.Buffer;
                while (NatsProtocol.TryRead(ref buffer, _maxPayload, out var op))
                    await HandleAsync(op);
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    failure = new IOException("NATS server closed the connection");
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e) { failure = e; }
        finally { await reader.CompleteAsync(); }
        Close(failure);
    }

    private ValueTask HandleAsync(in NatsServerOp op)
    {
        switch (op.Kind)
        {
            case NatsOpKind.Msg:
                Interlocked.Increment(ref _messagesReceived);
                if (_handlers.TryGetValue(op.Sid, out var handler)) handler(in op);
                return ValueTask.CompletedTask;
            case NatsOpKind.Ping:
                return SendPongAsync();
            case NatsOpKind.Pong:
                if (_pings.TryDequeue(out var waiter)) waiter.TrySetResult();
                return ValueTask.CompletedTask;
            case NatsOpKind.Err:
                throw new NatsProtocolException("server error: " + Encoding.UTF8.GetString(op.Payload));
            default:
                return ValueTask.CompletedTask; // +OK (verbose is off) and later INFO updates
        }
    }

    private async ValueTask SendPongAsync()
    {
        await _writeLock.WaitAsync(_stop.Token);
        try
        {
            NatsProtocol.WritePong(_outbound.Writer);
            await _outbound.Writer.FlushAsync(_stop.Token);
        }
        finally { _writeLock.Release(); }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbound.Reader;
        Exception? failure = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stop.Token);
                foreach (var segment in result.Buffer)
                {
                    for (int sent = 0; sent < segment.Length;)
                        sent += await _socket.SendAsync(segment[sent..], SocketFlags.None, _stop.Token);
                }
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception e) { failure = e; }
        await reader.CompleteAsync();
        Close(failure);
    }

    private void Close(Exception? failure)
    {
        if (failure is null) _closed.TrySetResult();
        else _closed.TrySetException(failure);
        while (_pings.TryDequeue(out var waiter))
            waiter.TrySetException(failure ?? new IOException("NATS connection closed"));
        _stop.Cancel();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _outbound.Writer.Complete();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        await Task.WhenAll(_readLoop, _writeLoop).ContinueWith(_ => { }, TaskScheduler.Default);
        _closed.TrySetResult();
        _socket.Dispose();
        _stop.Dispose();
        _writeLock.Dispose();
    }
}
