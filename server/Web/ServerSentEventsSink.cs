using System.Buffers;
using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace GeoRelay.Server.Web;

/// <summary>
/// Server-Sent Events: one <c>id: N</c> / <c>data: {json}</c> event per entry, so a browser's EventSource resumes with
/// <c>Last-Event-ID</c>; the end of the stream is an event named <c>close</c> whose data is the reason.
/// </summary>
internal sealed class ServerSentEventsSink : WebStreamSink
{
    private readonly HttpResponse _response;
    private readonly CancellationToken _gone;

    private ServerSentEventsSink(HttpContext context)
    {
        _response = context.Response;
        _gone = context.RequestAborted;
    }

    /// <summary>Sends the headers (and a comment, so clients and proxies see the stream open before the first entry).</summary>
    public static async Task<ServerSentEventsSink> StartAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // nginx and friends would hold events back
        var sink = new ServerSentEventsSink(context);
        Write(response.BodyWriter, ": georelay stream\n\n"u8);
        await response.BodyWriter.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        return sink;
    }

    public override CancellationToken ClientGone => _gone;

    public override async ValueTask SendAsync(ulong index, ReadOnlyMemory<byte> json, CancellationToken ct)
    {
        var output = _response.BodyWriter;
        Write(output, "id: "u8);
        var digits = output.GetSpan(20);
        index.TryFormat(digits, out int written, provider: CultureInfo.InvariantCulture);
        output.Advance(written);
        Write(output, "\ndata: "u8);
        output.Write(json.Span);
        Write(output, "\n\n"u8);
        // Kestrel's flush waits while the client is behind (MaxResponseBufferSize): the pause that backs up the upstream.
        await output.FlushAsync(ct).ConfigureAwait(false);
    }

    public override async Task CloseAsync(WebCloseReason reason, ReadOnlyMemory<byte> json)
    {
        if (_gone.IsCancellationRequested) return;
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            var output = _response.BodyWriter;
            Write(output, "event: close\ndata: "u8);
            output.Write(json.Span);
            Write(output, "\n\n"u8);
            await output.FlushAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // A client that takes nothing cannot be told; the response ends anyway.
        }
    }

    private static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);
}
