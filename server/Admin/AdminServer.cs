using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using GeoRelay.Server.Admin.Console;
using GeoRelay.Server.Hosting;
using GeoRelay.Topology;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Admin;

/// <summary>
/// A node's admin HTTP endpoint (Kestrel, minimal APIs): <c>/metrics</c> in Prometheus text format
/// (<see cref="PrometheusExporter"/>), <c>/healthz</c> (200 while running, 503 while draining or deposed), <c>/status</c>
/// (JSON), <c>/learners</c> (list, disconnect one), <c>/blacklist</c> (list, add, remove), <c>/transfer-leader</c>, and on a
/// voter <c>/config</c> (the membership), <c>/config/propose</c> and <c>/config/progress/{node}</c> (changing it: docs/operations.md). Every route but
/// <c>/healthz</c> passes <see cref="AdminAccess"/> first; it serves HTTPS with the node's certificate when the node has one.
/// With a <see cref="ClusterConsole"/> it also serves the live console page at <c>/</c> and its feed at <c>/console/events</c>
/// (docs/operations.md); those two routes also take the token as <c>?token=</c>, since a browser's EventSource cannot send a header.
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
    /// <param name="metrics">Serves <c>/metrics</c>; null for none.</param>
    /// <param name="console">Serves the console; null for none.</param>
    /// <param name="access">Who may use the endpoint; default the node's tokens (<see cref="AdminAccess.For"/>).</param>
    /// <param name="tls">False serves plain HTTP even when the node has TLS (the demo's console, on loopback, for a browser that does not trust the demo's CA).</param>
    public static async Task<AdminServer> StartAsync(EndPoint endPoint, AdminNode node, PrometheusExporter? metrics, ILoggerFactory loggers, CancellationToken ct = default,
        ClusterConsole? console = null, AdminAccess? access = null, bool tls = true)
    {
        var logger = loggers.CreateLogger("georelay.admin");
        access ??= AdminAccess.For(node.Host.Security);
        var certificate = tls ? node.Host.Security.Tls : null;
        var builder = NodeWebHost.CreateBuilder("georelay-admin", endPoint, certificate, loggers);
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.Equals("/healthz", StringComparison.Ordinal))
            {
                await next(context).ConfigureAwait(false);
                return;
            }
            var verdict = access.Check(AuthorizationOf(context.Request, console is not null), DateTimeOffset.UtcNow);
            if (verdict.Error is { } error)
            {
                HostingLog.AdminRefused(logger, context.Connection.RemoteIpAddress?.ToString() ?? "?", context.Request.Method, context.Request.Path, verdict.Status, error.Message);
                if (verdict.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer realm=\"georelay-admin\"";
                await Json(error, AdminJson.Default.AdminError, verdict.Status).ExecuteAsync(context).ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        });
        metrics?.Map(app, "/metrics");
        if (console is not null) ConsoleRoutes.Map(app, console);
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
        app.MapGet("/config", () => Answer(node.Configuration(), AdminJson.Default.ConfigReport));
        app.MapPost("/config/propose", async (HttpRequest request) =>
        {
            ConfigProposal? proposal;
            try
            {
                proposal = await JsonSerializer.DeserializeAsync(request.Body, AdminJson.Default.ConfigProposal, request.HttpContext.RequestAborted).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                return Error(400, "bad-request", "the body must be {\"membership\": \"<base64 of the encoded membership>\"}: " + e.Message);
            }
            Membership next;
            try
            {
                next = Membership.Decode(Convert.FromBase64String(proposal?.Membership ?? throw new FormatException("no membership")));
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidDataException)
            {
                return Error(400, "bad-request", "membership: not an encoded membership in base64: " + e.Message);
            }
            var answer = node.ProposeMembership(next);
            if (answer.Proposed is { } proposed) HostingLog.MembershipProposed(logger, node.NodeId, proposed.Index, proposed.Term, next.ToString());
            return Answer(answer, AdminJson.Default.ConfigProposed);
        });
        app.MapGet("/config/progress/{node}", (HttpContext context) =>
            Answer(node.ProgressOf(context.Request.RouteValues["node"] as string ?? ""), AdminJson.Default.ConfigProgress));
        app.MapDelete("/blacklist/{**range}", (HttpContext context) => operations.RemoveFromBlacklist(context.Request.RouteValues["range"] as string));
        app.MapFallback(() => Error(404, "not-found", "no such route; the admin routes are GET / (console), /console/events, /metrics, /healthz, /status, /learners, /blacklist, /config, /config/progress/{node}; " +
            "POST /learners/{connection}/disconnect, /blacklist, /transfer-leader/{node}, /config/propose; DELETE /blacklist/{address or range}"));
        await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        var bound = NodeWebHost.BoundEndPoint(app, endPoint);
        HostingLog.AdminListening(logger, certificate is null ? "http" : "https", bound.ToString() ?? "", access.Describe());
        if (access.IsOpen && !ConnectionAcceptor.IsLoopback(bound)) HostingLog.AdminOpenBeyondLoopback(logger, bound.ToString() ?? "");
        return new AdminServer(app, bound);
    }

    /// <summary>The <c>Authorization</c> header; on the console's routes, without one, the <c>token</c> query parameter as a bearer token.</summary>
    private static string? AuthorizationOf(HttpRequest request, bool console)
    {
        string? header = request.Headers.Authorization;
        if (!string.IsNullOrEmpty(header) || !console || !ConsoleRoutes.Serves(request.Path)) return header;
        var token = request.Query["token"];
        return token.Count == 1 && !string.IsNullOrWhiteSpace(token[0]) ? "Bearer " + token[0] : null;
    }

    internal static IResult Json<T>(T value, JsonTypeInfo<T> type, int status = 200) =>
        Results.Text(JsonSerializer.Serialize(value, type), "application/json", statusCode: status);

    private static IResult Answer<T>((T? Value, int Status, AdminError? Error) answer, JsonTypeInfo<T> type) where T : class =>
        answer.Value is { } value ? Json(value, type, answer.Status) : Json(answer.Error!, AdminJson.Default.AdminError, answer.Status);

    internal static IResult Error(int status, string code, string message) => Json(new AdminError(code, message), AdminJson.Default.AdminError, status);

    public ValueTask DisposeAsync() => NodeWebHost.StopAsync(_app);
}
