using System.Net;
using System.Text.Json;
using GeoRelay.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Admin;

/// <summary>
/// A node's admin HTTP endpoint (Kestrel, minimal APIs): <c>/metrics</c> in Prometheus text format,
/// <c>/healthz</c> (200 while running, 503 while draining or deposed) and <c>/status</c> (JSON).
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

    public static async Task<AdminServer> StartAsync(EndPoint endPoint, AdminNode node, PrometheusExporter metrics, ILoggerFactory loggers, CancellationToken ct = default)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "georelay-admin" });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers); // the node's log format and levels
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
        app.MapGet("/metrics", () => Results.Text(metrics.Scrape(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/healthz", () =>
        {
            string state = node.State;
            var body = JsonSerializer.Serialize(new HealthReport(state, node.NodeId, node.Role.ToString().ToLowerInvariant()), AdminJson.Default.HealthReport);
            return Results.Text(body, "application/json", statusCode: state == "running" ? 200 : 503);
        });
        app.MapGet("/status", () => Results.Text(JsonSerializer.Serialize(node.Status(), AdminJson.Default.NodeStatusReport), "application/json"));
        await app.StartAsync(ct).ConfigureAwait(false);
        var bound = endPoint;
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        if (addresses is { Count: > 0 } && Uri.TryCreate(addresses.First(), UriKind.Absolute, out var uri) && IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
            bound = new IPEndPoint(ip, uri.Port);
        HostingLog.AdminListening(loggers.CreateLogger("georelay.admin"), bound.ToString() ?? "");
        return new AdminServer(app, bound);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
