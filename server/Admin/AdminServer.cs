using System.Net;
using System.Text.Json;
using GeoRelay.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Admin;

/// <summary>
/// A node's admin HTTP endpoint (Kestrel, minimal APIs): <c>/metrics</c> in Prometheus text format
/// (<see cref="PrometheusExporter"/>), <c>/healthz</c> (200 while running, 503 while draining or deposed)
/// and <c>/status</c> (JSON).
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
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "georelay-admin" });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers); // the node's log format and levels
        builder.Services.AddSingleton<IHostLifetime, NodeOwnedLifetime>();
        builder.WebHost.UseKestrel(kestrel =>
        {
            switch (endPoint)
            {
                case IPEndPoint ip: kestrel.Listen(ip); break;
                case DnsEndPoint { Host: "localhost" } local: kestrel.ListenLocalhost(local.Port); break;
                case DnsEndPoint dns:
                    foreach (var address in Dns.GetHostAddresses(dns.Host)) kestrel.Listen(address, dns.Port);
                    break;
                default: throw new ArgumentException($"cannot listen on {endPoint}", nameof(endPoint));
            }
        });
        var app = builder.Build();
        metrics.Map(app, "/metrics");
        app.MapGet("/healthz", () =>
        {
            string state = node.State;
            var body = JsonSerializer.Serialize(new HealthReport(state, node.NodeId, node.Role.ToString().ToLowerInvariant()), AdminJson.Default.HealthReport);
            return Results.Text(body, "application/json", statusCode: state == "running" ? 200 : 503);
        });
        app.MapGet("/status", () => Results.Text(JsonSerializer.Serialize(node.Status(), AdminJson.Default.NodeStatusReport), "application/json"));
        await app.StartAsync(CancellationToken.None).ConfigureAwait(false);
        var bound = endPoint;
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        if (addresses is { Count: > 0 } && Uri.TryCreate(addresses.First(), UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            bound = new IPEndPoint(ip, uri.Port);
        HostingLog.AdminListening(loggers.CreateLogger("georelay.admin"), bound.ToString() ?? "");
        return new AdminServer(app, bound);
    }

    /// <summary>
    /// The node's host answers SIGTERM and disposes this endpoint after the drain; the default console
    /// lifetime would also react to the signal and cancel a start still binding.
    /// </summary>
    private sealed class NodeOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
