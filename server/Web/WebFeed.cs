using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>One entry as every web client of a feed gets it: encoded once, sent to each.</summary>
internal sealed class WebMessage(ulong index, byte[] json)
{
    public ulong Index => index;
    public byte[] Json => json;
}

/// <summary>What <see cref="WebFeed.TryRead"/> found at a client's cursor.</summary>
internal enum WebFeedRead { Message, Empty, Overrun }

/// <summary>
/// One upstream subscription shared by every live web client of a key prefix: each entry is read from the node once,
/// encoded to JSON once and kept in a ring that the clients read at their own pace, each with its own cursor. The feed
/// never waits for a client; one that falls a whole ring behind (the node's <c>learner-backlog</c> in bytes, or
/// <see cref="Slots"/> entries) finds its cursor overrun and is closed as a slow consumer, as the node would cut it.
/// One writer (the reading loop) and many lock-free readers: the writer moves the tail before it reuses a slot, and a
/// reader checks the tail after reading the slot.
/// </summary>
internal sealed class WebFeed
{
    /// <summary>Entries the ring holds at most, whatever their size.</summary>
    public const int Slots = 1 << 17;

    private readonly WebMessage?[] _ring = new WebMessage?[Slots];
    private readonly long _maxBytes;
    private readonly Lock _gate = new(); // the writer's appends and the joins' searches; readers take none
    private readonly CancellationTokenSource _stop = new();
    private long _head;           // sequence of the next message
    private long _tail;           // oldest sequence still in the ring
    private long _bytes;
    private ulong _coveredFrom;   // every entry of this prefix from this index on is in the ring or yet to come
    private ulong _next;          // the index the upstream delivers next
    private TaskCompletionSource _arrived = NewSignal();
    private volatile WebFeedFailure? _failure;

    public WebFeed(string? prefix, ulong from, long maxBytes)
    {
        Prefix = prefix;
        _coveredFrom = from;
        _next = from;
        _maxBytes = maxBytes;
    }

    public string? Prefix { get; }

    /// <summary>Clients reading this feed; changed only under <see cref="WebFeeds"/>' lock.</summary>
    internal int Clients { get; set; }

    /// <summary>Why the feed ended, once it has: its clients close with it.</summary>
    public WebFeedFailure? Failure => _failure;

    /// <summary>The byte bound of the ring, for the slow-consumer message.</summary>
    public long MaxBytes => _maxBytes;

    /// <summary>
    /// The cursor for a client resuming at <paramref name="from"/>: the first message at or after it, so the client
    /// misses nothing. False when entries from <paramref name="from"/> on have left the ring already.
    /// </summary>
    public bool TryPosition(ulong from, out long cursor)
    {
        lock (_gate)
        {
            cursor = _head;
            if (from < _coveredFrom) return false;
            long low = _tail, high = _head;
            while (low < high)
            {
                long middle = low + (high - low) / 2;
                if (_ring[middle & (Slots - 1)]!.Index < from) low = middle + 1;
                else high = middle;
            }
            cursor = low;
            return true;
        }
    }

    /// <summary>The message at <paramref name="cursor"/>, if it is there and still in the ring.</summary>
    public WebFeedRead TryRead(long cursor, out WebMessage? message)
    {
        message = null;
        if (cursor < Volatile.Read(ref _tail)) return WebFeedRead.Overrun;
        if (cursor >= Volatile.Read(ref _head)) return WebFeedRead.Empty;
        message = Volatile.Read(ref _ring[cursor & (Slots - 1)]);
        Interlocked.MemoryBarrier(); // the slot is read before the tail that says whether it was still ours
        if (message is null || cursor < Volatile.Read(ref _tail)) return WebFeedRead.Overrun;
        return WebFeedRead.Message;
    }

    /// <summary>Completes once there is a message at <paramref name="cursor"/> or the feed has failed.</summary>
    public Task WaitAsync(long cursor, CancellationToken ct)
    {
        var signal = Volatile.Read(ref _arrived); // before the head: an append after this read completes this signal
        if (cursor < Volatile.Read(ref _head) || _failure is not null) return Task.CompletedTask;
        return signal.Task.WaitAsync(ct);
    }

    /// <summary>Starts reading from the node; <paramref name="ended"/> runs once the feed has failed or stopped.</summary>
    public void Start(WebUpstream upstream, string nodeId, ILogger logger, Action<WebFeed> ended, CancellationToken stopping)
    {
        var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, _stop.Token);
        _ = Task.Run(async () =>
        {
            try
            {
                Fail(await ReadAsync(upstream, nodeId, logger, linked.Token).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                WebLog.FeedFailed(logger, Prefix ?? "", e);
                Fail(new WebFeedFailure(WebCloseReason.Failed("the shared subscription failed: " + e.Message), null));
            }
            finally
            {
                linked.Dispose();
                ended(this);
            }
        }, CancellationToken.None);
    }

    /// <summary>Stops reading (its last client left).</summary>
    public void Stop() => _stop.Cancel();

    private async Task<WebFeedFailure> ReadAsync(WebUpstream upstream, string nodeId, ILogger logger, CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        await using var json = WebEntryJson.CreateWriter(buffer);
        while (true)
        {
            ulong from = Volatile.Read(ref _next);
            var (client, refusal) = await upstream.ConnectFeedAsync(Prefix, from, logger, ct).ConfigureAwait(false);
            if (client is null)
                return new(WebCloseReason.UpstreamLost(nodeId, null, $"the shared subscription was refused: {refusal.Message}"), null);
            WebLog.FeedStarted(logger, Prefix ?? "", from);
            await using (client.ConfigureAwait(false))
            {
                try
                {
                    await foreach (var entry in client.SubscribeAsync(from, ct).ConfigureAwait(false))
                    {
                        if (!InternalEntries.IsInternal(entry.Key.Span))
                        {
                            buffer.ResetWrittenCount();
                            json.Reset(buffer);
                            WebEntryJson.Write(json, entry.Index, entry.Key.Span, entry.Payload.Span, entry.IsTombstone);
                            Append(new WebMessage(entry.Index, buffer.WrittenSpan.ToArray()));
                        }
                        Volatile.Write(ref _next, entry.Index + 1);
                        // Whatever arrived together goes to the clients together.
                        if (client.EntriesWaiting == 0) Signal();
                    }
                    return new(WebCloseReason.Failed("the shared subscription ended"), null);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return new(WebCloseReason.Stopping(nodeId), null);
                }
                catch (ClientRefusedException e) when (e.Code == CodecError.Unauthorized)
                {
                    // The feed's own token expired or its key was rotated out: connect again with a fresh one.
                    WebLog.FeedTokenRenewed(logger, Prefix ?? "", e.Detail);
                }
                catch (ClientRefusedException e)
                {
                    return new(WebCloseReason.UpstreamLost(nodeId, e.Code, e.Detail), null);
                }
                catch (LearnerConnectException e)
                {
                    // The SDK's own resume found no way back to this node's learner port: the clients go elsewhere.
                    return new(WebCloseReason.UpstreamLost(nodeId, null, e.Message), null);
                }
                catch (SnapshotRequiredException e)
                {
                    return new(WebCloseReason.UpstreamLost(nodeId, CodecError.SnapshotRequired, $"index {e.RequestedIndex} is no longer retained"), null);
                }
                catch (LogTruncatedException e)
                {
                    return new(WebCloseReason.UpstreamLost(nodeId, null, $"the node took back entries after {e.TruncatedAfter}"), e.TruncatedAfter);
                }
            }
        }
    }

    private void Append(WebMessage message)
    {
        lock (_gate)
        {
            long sequence = _head;
            while (sequence - _tail >= Slots || (_bytes + message.Json.Length > _maxBytes && _tail < sequence)) DropOldest();
            Volatile.Write(ref _ring[sequence & (Slots - 1)], message);
            _bytes += message.Json.Length;
            Volatile.Write(ref _head, sequence + 1);
        }
    }

    private void DropOldest()
    {
        long oldest = _tail;
        var message = _ring[oldest & (Slots - 1)]!;
        _coveredFrom = message.Index + 1;
        _bytes -= message.Json.Length;
        Volatile.Write(ref _tail, oldest + 1); // before the slot is cleared or reused
        Volatile.Write(ref _ring[oldest & (Slots - 1)], null);
    }

    private void Signal() => Interlocked.Exchange(ref _arrived, NewSignal()).TrySetResult();

    private void Fail(WebFeedFailure failure)
    {
        _failure ??= failure;
        Signal();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Why a feed ended; <see cref="TruncatedAfter"/> when the node took entries back, which its clients past that index must undo.</summary>
internal sealed record WebFeedFailure(WebCloseReason Reason, ulong? TruncatedAfter)
{
    /// <summary>The close for a client whose last entry is <paramref name="last"/>.</summary>
    public WebCloseReason For(ulong last) =>
        TruncatedAfter is { } after && last > after ? WebCloseReason.Truncated(after, last) : Reason;
}
