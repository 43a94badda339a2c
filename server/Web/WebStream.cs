using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using Upstream = GeoRelay.LearnerClient.LearnerClient;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// One web client's stream. A client whose start is in a shared feed's ring reads the feed (<see cref="WebFeeds"/>);
/// any other reads a subscription of its own, one entry encoded and sent before the next is read, and moves onto the
/// feed once its upstream has nothing more buffered. On its own subscription a client that does not keep up stops the
/// reading, the node's <c>learner-backlog</c> fills and the node cuts it; on a feed, it falls out of the ring. Either
/// way it is closed saying so, and resumes from its last index + 1.
/// </summary>
internal sealed class WebStream(WebStreamSink sink, WebUpstream upstream, WebFeeds feeds, WebEndpointOptions options, string nodeId, string clientId, ILogger logger)
{
    /// <summary>A message buffer that grew past this for one large entry is dropped afterwards, not kept for the client's lifetime.</summary>
    private const int KeptBufferBytes = 1 << 20;

    /// <summary>A client on its own subscription looks for a feed whose ring it is in after this many entries.</summary>
    private const int FeedLookEvery = 64;

    /// <summary>A batched message takes no more entries once it holds this many bytes (one larger entry still goes whole).</summary>
    private const int BatchBytes = 256 << 10;

    /// <summary>Streams a client that joined <paramref name="feed"/> at <paramref name="cursor"/>; returns why it ended.</summary>
    public Task<(WebCloseReason Reason, ulong Last)> RunAsync(WebStreamRequest request, WebFeed feed, long cursor, TokenClaims? claims, CancellationToken stopping) =>
        RunFeedAsync(feed, cursor, request.From, request.From - 1, claims, request.Batch, stopping);

    /// <summary>
    /// Streams from <paramref name="request"/> on the client's own subscription, then on the shared feed once caught up;
    /// returns why it ended. Takes <paramref name="own"/> over and disposes it.
    /// </summary>
    public async Task<(WebCloseReason Reason, ulong Last)> RunAsync(WebStreamRequest request, Upstream own, UpstreamCutWatch watch, CancellationToken stopping)
    {
        var (reason, last, feed, cursor) = await RunOwnAsync(request, own, watch, stopping).ConfigureAwait(false);
        if (feed is null) return (reason!.Value, last);
        // On the feed the client's token is checked here, not by the node.
        if (upstream.Authorize(request, out var claims) is { } refused)
        {
            feeds.Leave(feed);
            return (WebCloseReason.Refused(refused.Status, refused.Code, refused.Message), last);
        }
        return await RunFeedAsync(feed, cursor, last + 1, last, claims, request.Batch, stopping).ConfigureAwait(false);
    }

    private async Task<(WebCloseReason? Reason, ulong Last, WebFeed? Feed, long Cursor)> RunOwnAsync(WebStreamRequest request, Upstream own, UpstreamCutWatch watch, CancellationToken stopping)
    {
        await using var ownedUpstream = own.ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopping, sink.ClientGone, watch.Cut);
        var buffer = new ArrayBufferWriter<byte>(4096);
        var json = WebEntryJson.CreateWriter(buffer);
        using var send = new CancellationTokenSource();
        // Stopping the node ends a send still waiting on a client; a cut or a client leaving does not abort a send: it
        // ends, and the close that says why goes after it.
        using var stopSending = stopping.Register(static s => ((CancellationTokenSource)s!).Cancel(), send);
        ulong last = request.From - 1;
        int sinceFeedLooked = 0;
        try
        {
            await foreach (var entry in own.SubscribeAsync(request.From, stop.Token).ConfigureAwait(false))
            {
                if (!InternalEntries.IsInternal(entry.Key.Span))
                {
                    if (buffer.Capacity > KeptBufferBytes)
                    {
                        buffer = new ArrayBufferWriter<byte>(4096);
                        await json.DisposeAsync().ConfigureAwait(false);
                        json = WebEntryJson.CreateWriter(buffer);
                    }
                    buffer.ResetWrittenCount();
                    if (request.Batch) buffer.Write("["u8); // a batched stream's messages are all arrays
                    json.Reset(buffer);
                    WebEntryJson.Write(json, entry.Index, entry.Key.Span, entry.Payload.Span, entry.IsTombstone);
                    if (request.Batch) buffer.Write("]"u8);
                    // A client that takes nothing at all would hold the stream open for ever; one that is merely slow is
                    // cut by the node first (the backlog fills while this send waits).
                    send.CancelAfter(options.SendTimeout);
                    await sink.SendAsync(entry.Index, buffer.WrittenMemory, send.Token).ConfigureAwait(false);
                    if (!send.TryReset()) { last = entry.Index; break; } // cancelled just as the send ended: judged below
                }
                last = entry.Index;
                // Inside a feed's ring (looked at every so often), or caught up with what the node had sent (then starting
                // the feed if there is none): from here the shared feed serves this client.
                bool caughtUp = own.EntriesWaiting == 0;
                if ((caughtUp || ++sinceFeedLooked % FeedLookEvery == 0) && feeds.TryJoin(request.Prefix, last + 1, create: caughtUp, out long cursor) is { } feed)
                {
                    WebLog.JoinedFeed(logger, clientId, last + 1);
                    return (null, last, feed, cursor);
                }
            }
            return (Ended(stopping, send, watch), last, null, 0);
        }
        catch (OperationCanceledException)
        {
            return (Ended(stopping, send, watch), last, null, 0);
        }
        catch (ClientRefusedException e) when (e.Code != CodecError.Unauthorized)
        {
            return (WebCloseReason.UpstreamLost(nodeId, e.Code, e.Detail), last, null, 0);
        }
        catch (ClientRefusedException e) when (e.Code == CodecError.Unauthorized)
        {
            // Welcomed, then refused: a revoked or expired token, or a prefix the token does not cover.
            var refusal = upstream.Classify(request.Token, e.Detail);
            return (WebCloseReason.Refused(refusal.Status, refusal.Code, refusal.Message), last, null, 0);
        }
        catch (SnapshotRequiredException e)
        {
            return (WebCloseReason.SnapshotRequired(e.RequestedIndex, e.OldestAvailableIndex), last, null, 0);
        }
        catch (LogTruncatedException e)
        {
            return (WebCloseReason.Truncated(e.TruncatedAfter, e.LastDelivered), last, null, 0);
        }
        catch (Exception e) when (IsClientGone(e))
        {
            return (ClientGone(e), last, null, 0);
        }
        finally
        {
            await json.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends the feed's messages from <paramref name="cursor"/> on, skipping those before <paramref name="from"/>, each
    /// waking with whatever arrived meanwhile (with <paramref name="batch"/>, as few messages as <see cref="BatchBytes"/>
    /// allows). The client's token is checked again at each wake-up, as the node checks its learners' at each sweep:
    /// nothing more is sent once it has expired or been revoked.
    /// </summary>
    private async Task<(WebCloseReason Reason, ulong Last)> RunFeedAsync(WebFeed feed, long cursor, ulong from, ulong last, TokenClaims? claims,
        bool batch, CancellationToken stopping)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopping, sink.ClientGone);
        using var send = new CancellationTokenSource();
        using var stopSending = stopping.Register(static s => ((CancellationTokenSource)s!).Cancel(), send);
        int tokenVersion = upstream.TokenVersion;
        var array = batch ? new ArrayBufferWriter<byte>(4096) : null;
        try
        {
            while (true)
            {
                await feed.WaitAsync(cursor, stop.Token).ConfigureAwait(false);
                if (feed.Failure is { } failure) return (failure.For(last), last);
                if (upstream.Recheck(claims, ref tokenVersion) is { } refusal)
                    return (WebCloseReason.Refused(refusal.Status, refusal.Code, refusal.Message), last);
                bool overrun = false;
                while (!overrun)
                {
                    // One message, or with batching a JSON array of what is there, up to BatchBytes.
                    ReadOnlyMemory<byte> content = default;
                    ulong through = 0;
                    if (array is not null && array.Capacity > KeptBufferBytes) array = new ArrayBufferWriter<byte>(4096);
                    array?.ResetWrittenCount();
                    while (array is null ? content.IsEmpty : array.WrittenCount < BatchBytes)
                    {
                        var read = feed.TryRead(cursor, out var message);
                        if (read == WebFeedRead.Empty) break;
                        if (read == WebFeedRead.Overrun) { overrun = true; break; }
                        cursor++;
                        if (message!.Index < from) continue;
                        through = message.Index;
                        if (array is null) content = message.Json;
                        else
                        {
                            array.Write(array.WrittenCount == 0 ? "["u8 : ","u8);
                            array.Write(message.Json);
                        }
                    }
                    if (array is { WrittenCount: > 0 })
                    {
                        array.Write("]"u8);
                        content = array.WrittenMemory;
                    }
                    if (content.IsEmpty) break;
                    send.CancelAfter(options.SendTimeout);
                    await sink.SendAsync(through, content, send.Token).ConfigureAwait(false);
                    last = through;
                    if (!send.TryReset()) return (Ended(stopping, send, null), last);
                }
                if (overrun)
                    return (WebCloseReason.SlowConsumer($"this client fell more than the learner-backlog ({feed.MaxBytes:N0} bytes, or {WebFeed.Slots:N0} entries) behind {nodeId}'s live stream"), last);
            }
        }
        catch (OperationCanceledException)
        {
            return (Ended(stopping, send, null), last);
        }
        catch (Exception e) when (IsClientGone(e))
        {
            return (ClientGone(e), last);
        }
        finally
        {
            feeds.Leave(feed);
        }
    }

    private static bool IsClientGone(Exception e) =>
        e is System.Net.WebSockets.WebSocketException or IOException or Microsoft.AspNetCore.Connections.ConnectionResetException;

    // The client's connection broke mid-send.
    private static WebCloseReason ClientGone(Exception e) => new(1001, "client-gone", e.Message, true);

    private WebCloseReason Ended(CancellationToken stopping, CancellationTokenSource send, UpstreamCutWatch? watch)
    {
        if (sink.Violation is { } violation) return violation;
        if (watch is not null && watch.Cut.IsCancellationRequested)
        {
            if (watch.Code == CodecError.SlowConsumer)
                return WebCloseReason.SlowConsumer($"this client fell more than the node's learner-backlog behind and {nodeId} cut its subscription ({watch.Message})");
            if (watch.Code is null && watch.Behind)
                return WebCloseReason.SlowConsumer($"entries were still waiting for this client when {nodeId} closed its subscription ({watch.Message})");
            return WebCloseReason.UpstreamLost(nodeId, watch.Code, watch.Message);
        }
        if (stopping.IsCancellationRequested) return WebCloseReason.Stopping(nodeId);
        if (sink.ClientGone.IsCancellationRequested) return new WebCloseReason(1000, "client-gone", "the client closed the stream", true);
        if (send.IsCancellationRequested)
            return WebCloseReason.SlowConsumer($"this client took no message for {options.SendTimeout.TotalSeconds:0} s");
        return WebCloseReason.Failed("the upstream subscription ended");
    }
}
