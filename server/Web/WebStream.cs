using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using Upstream = GeoRelay.LearnerClient.LearnerClient;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// One web client's stream: entries from its upstream subscription, encoded one at a time and sent before the next is
/// read, so the gateway holds at most the SDK's small buffer and one message. A client that does not keep up stops the
/// reading, the node's <c>learner-backlog</c> fills and the node cuts the subscription; the client is then closed
/// saying so, and resumes from its last index + 1.
/// </summary>
internal sealed class WebStream(Upstream upstream, UpstreamCutWatch watch, WebStreamSink sink, WebUpstream refusals,
    WebEndpointOptions options, string nodeId)
{
    /// <summary>A message buffer that grew past this for one large entry is dropped afterwards, not kept for the client's lifetime.</summary>
    private const int KeptBufferBytes = 1 << 20;

    /// <summary>Streams from <paramref name="request"/> until the client leaves or the stream must end; returns why it ended.</summary>
    public async Task<(WebCloseReason Reason, ulong Last)> RunAsync(WebStreamRequest request, CancellationToken stopping)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopping, sink.ClientGone, watch.Cut);
        var buffer = new ArrayBufferWriter<byte>(4096);
        var json = WebEntryJson.CreateWriter(buffer);
        using var send = new CancellationTokenSource();
        // Stopping the node ends a send still waiting on a client; a cut or a client leaving does not abort a send: it
        // ends, and the close that says why goes after it.
        using var stopSending = stopping.Register(static s => ((CancellationTokenSource)s!).Cancel(), send);
        ulong last = request.From - 1;
        try
        {
            await foreach (var entry in upstream.SubscribeAsync(request.From, stop.Token).ConfigureAwait(false))
            {
                if (InternalEntries.IsInternal(entry.Key.Span)) continue;
                if (buffer.Capacity > KeptBufferBytes)
                {
                    buffer = new ArrayBufferWriter<byte>(4096);
                    await json.DisposeAsync().ConfigureAwait(false);
                    json = WebEntryJson.CreateWriter(buffer);
                }
                buffer.ResetWrittenCount();
                json.Reset(buffer);
                WebEntryJson.Write(json, entry.Index, entry.Key.Span, entry.Payload.Span, entry.IsTombstone);
                // A client that takes nothing at all would hold the stream open for ever; one that is merely slow is
                // cut by the node first (the backlog fills while this send waits).
                send.CancelAfter(options.SendTimeout);
                await sink.SendAsync(entry.Index, buffer.WrittenMemory, send.Token).ConfigureAwait(false);
                last = entry.Index;
                if (!send.TryReset()) break; // cancelled just as the send ended: judged below
            }
            return (Ended(stopping, send), last);
        }
        catch (OperationCanceledException)
        {
            return (Ended(stopping, send), last);
        }
        catch (ClientRefusedException e) when (e.Code != CodecError.Unauthorized)
        {
            return (WebCloseReason.UpstreamLost(nodeId, e.Code, e.Detail), last);
        }
        catch (ClientRefusedException e) when (e.Code == CodecError.Unauthorized)
        {
            // Welcomed, then refused: a revoked or expired token, or a prefix the token does not cover.
            var refusal = refusals.Classify(request.Token, e.Detail);
            return (WebCloseReason.Refused(refusal.Status, refusal.Code, refusal.Message), last);
        }
        catch (SnapshotRequiredException e)
        {
            return (WebCloseReason.SnapshotRequired(e.RequestedIndex, e.OldestAvailableIndex), last);
        }
        catch (LogTruncatedException e)
        {
            return (WebCloseReason.Truncated(e.TruncatedAfter, e.LastDelivered), last);
        }
        catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or IOException or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            // The client's connection broke mid-send.
            return (new WebCloseReason(1001, "client-gone", e.Message, true), last);
        }
        finally
        {
            await json.DisposeAsync().ConfigureAwait(false);
        }
    }

    private WebCloseReason Ended(CancellationToken stopping, CancellationTokenSource send)
    {
        if (sink.Violation is { } violation) return violation;
        if (watch.Cut.IsCancellationRequested)
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
