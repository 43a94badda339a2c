using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using GeoRelay.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Admin;

/// <summary>
/// A node's admin HTTP endpoint (Kestrel, minimal APIs): <c>/metrics</c> in Prometheus text format
/// (<see cref="PrometheusExporter"/>), <c>/healthz</c> (200 while running, 503 while draining or deposed), <c>/status</c>
/// (JSON), <c>/learners</c> (list, disconnect one) and <c>/blacklist</c> (list, add, remove). Every route but
/// <c>/healthz</c> passes <see cref="AdminAccess"/> first; it serves HTTPS with the node's certificate when the node has one.
/// </summary>
public sealed class AdminServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public EndPoint EndPoint { get; }

    private AdminServer(WebApplication app, EndPoint endPoint)
    {
        _app = app;
        EndPoint = endPoint;
    }

    /// <param name="ct">
    /// Not passed to the bind: a stop asked for while the endpoint starts (SIGTERM right after the node
    /// listens) must still find it up, so the drain runs with /healthz saying so instead of the start failing.
    /// </param>
    public static async Task<AdminServer> StartAsync(EndPoint endPoint, AdminNode node, PrometheusExporter metrics, ILoggerFactory loggers, CancellationToken ct = default)
    {
        var logger = loggers.CreateLogger("georelay.admin");
        var access = AdminAccess.For(node.Host.Security);
        var tls = node.Host.Security.Tls;
        var builder = NodeWebHost.CreateBuilder("georelay-admin", endPoint, tls, loggers);
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.Equals("/healthz", StringComparison.Ordinal))
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            var verdict = access.Check(context.Request.Headers.Authorization, DateTimeOffset.UtcNow);
            if (verdict.Error is { } error)
            {
                HostingLog.AdminRefused(logger, context.Connection.RemoteIpAddress?.ToString() ?? "?", context.Request.Method, context.Request.Path, verdict.Status, error.Message);
                if (verdict.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer realm=\"georelay-admin\"";
                await Json(error, AdminJson.Default.AdminError, verdict.Status).ExecuteAsync(context).ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        });
        metrics.Map(app, "/metrics");
        app.MapGet("/healthz", () =>
        {
            string state = node.State;
            var body = JsonSerializer.Serialize(new HealthReport(state, node.NodeId, node.Role.ToString().ToLowerInvariant()), AdminJson.Default.HealthReport);
            return Results.Text(body, "application/json", statusCode: state == "running" ? 200 : 503);
        });
        app.MapGet("/status", () => Json(node.Status(), AdminJson.Default.NodeStatusReport));
        var operations = new AdminOperations(node, logger);
        app.MapGet("/learners", operations.ListLearners);
        app.MapPost("/learners/{connection}/disconnect", (HttpContext context) => operations.Disconnect(context.Request.RouteValues["connection"] as string));
        app.MapGet("/blacklist", operations.ListBlacklist);
        app.MapPost("/blacklist", (HttpRequest request) => operations.AddToBlacklistAsync(request));
        app.MapPost("/transfer-leader/{to}", (HttpContext context) =>
        {
            var to = context.Request.RouteValues["to"] as string ?? "";
            var (started, status, code, message) = node.TransferLeadership(to);
            if (started is null) return Error(status, code, message);
            HostingLog.TransferRequested(logger, started.From, started.To, started.Term);
            return Json(started, AdminJson.Default.TransferStarted, status);
        });
        app.MapDelete("/blacklist/{**range}", (HttpContext context) => operations.RemoveFromBlacklist(context.Request.RouteValues["range"] as string));
        app.MapFallback(() => Error(404, "not-found", "no such route; the admin routes are GET /metrics, /healthz, /status, /learners, /blacklist; " +
            "POST /learners/{connection}/disconnect, /blacklist, /transfer-leader/{node}; DELETE /blacklist/{address or range}"));
        await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        var bound = NodeWebHost.BoundEndPoint(app, endPoint);
        HostingLog.AdminListening(logger, tls is null ? "http" : "https", bound.ToString() ?? "", access.Describe());
        if (access.IsOpen && !ConnectionAcceptor.IsLoopback(bound)) HostingLog.AdminOpenBeyondLoopback(logger, bound.ToString() ?? "");
        return new AdminServer(app, bound);
    }

    internal static IResult Json<T>(T value, JsonTypeInfo<T> type, int status = 200) =>
        Results.Text(JsonSerializer.Serialize(value, type), "application/json", statusCode: status);

    internal static IResult Error(int status, string code, string message) => Json(new AdminError(code, message), AdminJson.Default.AdminError, status);

    public ValueTask DisposeAsync() => NodeWebHost.StopAsync(_app);
}
