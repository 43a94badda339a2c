using System.Buffers;
using System.Net.Sockets;

namespace GeoRelay.Wan.Internal;

/// <summary>
/// One direction of one connection: a read loop stamps each chunk with its due time and queues it; chunks are
/// delivered in order once due. At most <see cref="WanLinkOptions.MaxBufferedBytes"/> wait in between; past
/// that the read loop stops reading, and TCP flow control pushes back on the sender.
/// </summary>
/// <remarks>
/// Delivery has one owner at a time, marked by <c>_armed</c>: whoever arms it (the reader on a new chunk, a
/// heal) tries to deliver at once, a due chunk is delivered right on the scheduler thread, and only when the
/// socket would block does the async write loop take over. Sends are non-blocking, so the scheduler thread
/// never waits on a slow receiver, and a due chunk does not wait for a thread-pool thread to wake up.
/// </remarks>
internal sealed class WanPump
{
    /// <summary>A chunk without a buffer ends the stream: with this length by a reset, else by an orderly close.</summary>
    private readonly record struct Chunk(byte[]? Buffer, int Length, long Due);
    private const int ResetMarker = -1;

    private enum Outcome { Idle, Scheduled, WouldBlock }

    private readonly Socket _from, _to;
    private readonly WanDirection _direction;
    private readonly WanLinkOptions _options;
    private readonly Func<bool> _blackholed;
    private readonly object _gate = new();
    private readonly Queue<Chunk> _queue = new();
    private readonly SemaphoreSlim _writerWake = new(0), _readerWake = new(0);
    private readonly Action _onDue;
    private readonly Action _onReset;
    private long _buffered, _lastDue;
    private int _headSent = -1; // bytes of the head chunk already sent; -1 before its first attempt
    private bool _armed, _readerWaiting, _closed;

    /// <param name="onReset">Called once the sender's reset is due on the far side: resets the whole connection.</param>
    public WanPump(Socket from, Socket to, WanDirection direction, WanLinkOptions options, Func<bool> blackholed, Action onReset)
    {
        _onReset = onReset;
        _from = from;
        _to = to;
        _to.Blocking = false; // synchronous sends return WouldBlock instead of waiting; async ones are unaffected
        _direction = direction;
        _options = options;
        _blackholed = blackholed;
        _onDue = Deliver;
    }

    public Task RunAsync(CancellationToken cancellationToken) => Task.WhenAll(ReadOnOwnThread(cancellationToken), WriteLoopAsync(cancellationToken));

    /// <summary>After a heal: deliver what waited.</summary>
    public void Kick()
    {
        lock (_gate)
        {
            if (_armed || _queue.Count == 0) return;
            _armed = true;
        }
        Deliver();
    }

    /// <summary>
    /// Reads on a thread of its own: a chunk is stamped with its due time when it is read, so a read that waited
    /// for a thread-pool thread (behind hundreds of learners in the benchmark's process) would stretch the emulated
    /// delay, and stall the link for every system alike.
    /// </summary>
    private Task ReadOnOwnThread(CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                DeliveryScheduler.RaisePriority();
                ReadLoop(cancellationToken);
                done.TrySetResult();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                done.TrySetCanceled(cancellationToken);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }, maxStackSize: 256 * 1024) { IsBackground = true, Name = "wan-read" };
        thread.Start();
        return done.Task;
    }

    /// <summary>How long a blocked read waits before it looks at the cancellation token again.</summary>
    private const int PollMicros = 100_000;

    private void ReadLoop(CancellationToken cancellationToken)
    {
        byte[]? scratch = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int room;
            lock (_gate)
            {
                room = (int)Math.Min(_options.ReadChunkBytes, _options.MaxBufferedBytes - _buffered);
                _readerWaiting = room <= 0;
            }
            if (room <= 0)
            {
                _readerWake.Wait(PollMicros / 1000, cancellationToken);
                continue;
            }
            // The socket is non-blocking (it is the other pump's sender): wait for data, then take what is there.
            if (!_from.Poll(PollMicros, SelectMode.SelectRead)) continue;
            scratch ??= new byte[_options.ReadChunkBytes];
            int read = _from.Receive(scratch, 0, room, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock) continue;
            if (error is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                // The sender's side was reset (a killed process with unread data sends RST): the reset crosses the
                // link after the bytes ahead of it, as the RST would, and resets the other side (see TryDeliverDue).
                Enqueue(new Chunk(null, ResetMarker, Math.Max(DeliveryScheduler.Now, _lastDue)));
                return;
            }
            if (error != SocketError.Success) throw new SocketException((int)error);
            if (read == 0)
            {
                Enqueue(new Chunk(null, 0, Math.Max(DeliveryScheduler.Now, _lastDue))); // end of stream, after the last byte
                return;
            }
            // Queued in a buffer of its own size: parked in a whole read chunk for the link's delay, every small
            // message held 64 KiB (a 1,000/s stream on a 100 ms link: 6 MiB), and with the direct system's 200
            // learner streams the benchmark process spent seconds in GC pauses.
            byte[] buffer = ArrayPool<byte>.Shared.Rent(read);
            scratch.AsSpan(0, read).CopyTo(buffer);
            long due = Math.Max(_direction.DueTime(DeliveryScheduler.Now, read), _lastDue);
            _lastDue = due;
            Enqueue(new Chunk(buffer, read, due));
        }
    }

    private void Enqueue(Chunk chunk)
    {
        lock (_gate)
        {
            _queue.Enqueue(chunk);
            _buffered += chunk.Length;
            _direction.Buffered(_buffered);
            if (_armed) return;
            _armed = true;
        }
        Deliver();
    }

    /// <summary>Runs as the owner: sends due chunks without blocking, then hands ownership on.</summary>
    private void Deliver()
    {
        try
        {
            if (TryDeliverDue() == Outcome.WouldBlock) _writerWake.Release();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The connection is going away; its reader and the link's cleanup notice on their own.
            lock (_gate) _closed = true;
            _writerWake.Release();
        }
    }

    private Outcome TryDeliverDue()
    {
        while (true)
        {
            Chunk head;
            lock (_gate)
            {
                if (_closed) return Outcome.Idle;
                if (_blackholed() || !_queue.TryPeek(out head))
                {
                    _armed = false; // Kick or the next chunk re-arms
                    return Outcome.Idle;
                }
                if (head.Due > DeliveryScheduler.Now)
                {
                    DeliveryScheduler.Schedule(head.Due, _onDue);
                    return Outcome.Scheduled;
                }
            }
            if (head.Buffer is null && head.Length == ResetMarker)
            {
                lock (_gate) _closed = true;
                _onReset();
                return Outcome.Idle;
            }
            if (head.Buffer is null)
            {
                _to.Shutdown(SocketShutdown.Send);
                lock (_gate) _closed = true;
                return Outcome.Idle;
            }
            if (_headSent < 0)
            {
                _direction.Late(DeliveryScheduler.Now - head.Due);
                _headSent = 0;
            }
            while (_headSent < head.Length)
            {
                int sent = _to.Send(head.Buffer, _headSent, head.Length - _headSent, SocketFlags.None, out var error);
                if (error == SocketError.WouldBlock) return Outcome.WouldBlock;
                if (error != SocketError.Success) throw new SocketException((int)error);
                _headSent += sent;
            }
            Completed(head);
        }
    }

    private void Completed(Chunk head)
    {
        _headSent = -1;
        _direction.Delivered(head.Length);
        bool wakeReader;
        lock (_gate)
        {
            _queue.Dequeue();
            _buffered -= head.Length;
            wakeReader = _readerWaiting && _buffered < _options.MaxBufferedBytes;
            if (wakeReader) _readerWaiting = false;
        }
        ArrayPool<byte>.Shared.Return(head.Buffer!);
        if (wakeReader) _readerWake.Release();
    }

    /// <summary>Owns delivery while the receiver's socket is full: waits for room, then goes back to non-blocking sends.</summary>
    private async Task WriteLoopAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await _writerWake.WaitAsync(cancellationToken);
            Chunk head;
            lock (_gate)
            {
                if (_closed) return;
                head = _queue.Peek();
            }
            while (_headSent < head.Length)
                _headSent += await _to.SendAsync(head.Buffer.AsMemory(_headSent, head.Length - _headSent), SocketFlags.None, cancellationToken);
            Completed(head);
            Deliver();
        }
    }
}
