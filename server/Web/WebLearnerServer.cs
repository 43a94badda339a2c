using System.Net;
using GeoRelay.Server.Hosting;
using GeoRelay.Server.Security;
using Upstream = GeoRelay.LearnerClient.LearnerClient;
using GeoRelay.Topology;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// A node's web learner endpoint (Kestrel, minimal APIs), on the topology's <c>web</c> address: <c>GET /stream</c> over
/// WebSocket or Server-Sent Events, entries as JSON (docs/web.md), and the JavaScript client at <c>/georelay.js</c>.
/// Each web client gets its own subscription to this node's learner port (<see cref="WebUpstream"/>). HTTPS with the
/// node's certificate when the node has TLS.
/// </summary>
public sealed class WebLearnerServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping;

    public EndPoint EndPoint { get; }

    private WebLearnerServer(WebApplication app, CancellationTokenSource stopping, EndPoint endPoint)
    {
        _app = app;
        _stopping = stopping;
        EndPoint = endPoint;
    }

    /// <summary>Binds <paramref name="endPoint"/> and serves until disposed.</summary>
    public static async Task<WebLearnerServer> StartAsync(EndPoint endPoint, TopologyConfig topology, string nodeId, HostSecurity security,
        WebEndpointOptions options, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger("georelay.web");
        var upstreamLogger = loggers.CreateLogger("georelay.web.upstream");
        var upstream = new WebUpstream(topology, nodeId, security, options);
        var tls = security.Tls;
        var stopping = new CancellationTokenSource();
        // No request bodies here: anything larger than a GET is refused before it is read.
        var builder = NodeWebHost.CreateBuilder("georelay-web", endPoint, tls, loggers, kestrel => kestrel.Limits.MaxRequestBodySize = 0);
        var app = builder.Build();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = options.KeepAliveInterval });
        app.Use(async (context, next) =>
        {
            // Tokens travel in the header or the query, never in cookies: any page may use the stream.
            context.Response.Headers.AccessControlAllowOrigin = "*";
            await next(context).ConfigureAwait(false);
        });
        var feeds = new WebFeeds(upstream, nodeId, topology.Defaults.LearnerBacklog, loggers.CreateLogger("georelay.web.feed"), stopping.Token);
        app.MapGet("/stream", context => StreamAsync(context, nodeId, upstream, feeds, options, logger, upstreamLogger, stopping.Token));
        app.MapGet("/georelay.js", ServeClientAsync);
        app.MapFallback(context => Answer(context, 404, "not-found",
            "no such route; the web routes are GET /stream?from=N[&prefix=P] (WebSocket, or Server-Sent Events with Accept: text/event-stream) and GET /georelay.js"));
        await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        var bound = NodeWebHost.BoundEndPoint(app, endPoint);
        WebLog.Listening(logger, tls is null ? "http" : "https", bound.ToString() ?? "", topology.GetNode(nodeId).Learners?.ToString() ?? "-");
        if (tls is null && !ConnectionAcceptor.IsLoopback(bound)) WebLog.PlainBeyondLoopback(logger, bound.ToString() ?? "");
        return new WebLearnerServer(app, stopping, bound);
    }

    private static async Task StreamAsync(HttpContext context, string nodeId, WebUpstream upstream, WebFeeds feeds,
        WebEndpointOptions options, ILogger logger, ILogger upstreamLogger, CancellationToken stopping)
    {
        string remote = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
        if (!WebStreamRequest.TryParse(context.Request.Query, context.Request.Headers, out var request, out int status, out string? error))
        {
            WebLog.Refused(logger, context.Request.Path, remote, status, error!);
            await Answer(context, status, status == 401 ? "bad-authorization" : "bad-request", error!).ConfigureAwait(false);
            return;
        }
        bool webSocket = context.WebSockets.IsWebSocketRequest;
        if (!webSocket) request = request! with { Batch = false }; // an SSE event is one entry: its id is the index
        if (!webSocket && !request!.ServerSentEvents)
        {
            await Answer(context, 400, "bad-request",
                "GET /stream needs a WebSocket upgrade, or the header `Accept: text/event-stream` for Server-Sent Events").ConfigureAwait(false);
            return;
        }
        string clientId = $"web-{nodeId}-{context.Connection.Id}";
        string transport = webSocket ? "WebSocket" : "Server-Sent Events";
        string prefix = request!.Prefix is null ? "" : $" with prefix '{request.Prefix}'";
        // A client resuming inside a shared feed reads it, its token checked here; any other subscribes on its own,
        // so the node judges its token and a refusal is an HTTP 401 or 403 a browser can show.
        if (upstream.Authorize(request, out var claims) is null && feeds.TryJoin(request.Prefix, request.From, create: false, out long cursor) is { } feed)
        {
            WebStreamSink feedSink;
            try
            {
                feedSink = await AcceptAsync(context, webSocket, options).ConfigureAwait(false);
            }
            catch
            {
                feeds.Leave(feed);
                throw;
            }
            WebLog.Started(logger, clientId, remote, transport + " (shared feed)", request.From, prefix);
            await RunAsync(feedSink, clientId, logger, stream => stream.RunAsync(request, feed, cursor, claims, stopping)).ConfigureAwait(false);
            return;
        }
        var watch = new UpstreamCutWatch();
        Upstream? client;
        WebRefusal refusal;
        try
        {
            (client, refusal) = await upstream.ConnectAsync(request, clientId, upstreamLogger, watch.OnDisconnected, context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            watch.Dispose();
            return; // the client left while the node was still answering
        }
        using (watch)
        {
            if (client is null)
            {
                WebLog.Refused(logger, context.Request.Path, remote, refusal.Status, refusal.Message);
                if (refusal.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer realm=\"georelay\"";
                await Answer(context, refusal.Status, refusal.Code, refusal.Message).ConfigureAwait(false);
                return;
            }
            watch.Buffered = () => client.BufferedEntries;
            WebStreamSink sink;
            try
            {
                sink = await AcceptAsync(context, webSocket, options).ConfigureAwait(false);
            }
            catch
            {
                await client.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            WebLog.Started(logger, clientId, remote, transport, request.From, prefix);
            await RunAsync(sink, clientId, logger, stream => stream.RunAsync(request, client, watch, stopping)).ConfigureAwait(false);
        }

        async Task RunAsync(WebStreamSink sink, string clientId, ILogger logger, Func<WebStream, Task<(WebCloseReason, ulong)>> run)
        {
            try
            {
                var (reason, last) = await run(new WebStream(sink, upstream, feeds, options, nodeId, clientId, logger)).ConfigureAwait(false);
                WebLog.Ended(logger, clientId, last, reason.Code, reason.Message);
                if (reason.Code != "client-gone") await sink.CloseAsync(reason, ErrorJson(reason.Code, reason.Message)).ConfigureAwait(false);
                else if (sink is WebSocketSink) await sink.CloseAsync(reason, default).ConfigureAwait(false); // completes the client's closing handshake
            }
            catch (Exception e)
            {
                WebLog.Failed(logger, clientId, e);
                await sink.CloseAsync(WebCloseReason.Failed(e.Message), ErrorJson("internal-error", e.Message)).ConfigureAwait(false);
            }
            finally
            {
                (sink as IDisposable)?.Dispose();
            }
        }
    }

    private static async Task<WebStreamSink> AcceptAsync(HttpContext context, bool webSocket, WebEndpointOptions options) =>
        webSocket
            // Negotiated only when the client offers permessage-deflate.
            ? new WebSocketSink(await context.WebSockets.AcceptWebSocketAsync(
                new WebSocketAcceptContext { DangerousEnableCompression = options.Compression }).ConfigureAwait(false), context.RequestAborted)
            : await ServerSentEventsSink.StartAsync(context).ConfigureAwait(false);

    private static async Task ServeClientAsync(HttpContext context)
    {
        await using var script = typeof(WebLearnerServer).Assembly.GetManifestResourceStream("GeoRelay.Server.Web.georelay.js")
            ?? throw new InvalidOperationException("georelay.js is not embedded in GeoRelay.Server");
        context.Response.ContentType = "text/javascript; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache"; // the client changes with the node's version
        context.Response.ContentLength = script.Length;
        await script.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    private static byte[] ErrorJson(string code, string message)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = WebEntryJson.CreateWriter(buffer)) WebEntryJson.WriteError(json, code, message);
        return buffer.WrittenSpan.ToArray();
    }

    private static Task Answer(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.Body.WriteAsync(ErrorJson(code, message), context.RequestAborted).AsTask();
    }

    /// <summary>Ends every stream saying the node is stopping, then stops Kestrel (connections still open after 2 s are cut).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await NodeWebHost.StopAsync(_app).ConfigureAwait(false);
        _stopping.Dispose();
    }
}
