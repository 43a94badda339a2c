using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace GeoRelay.Server.Admin;

/// <summary>
/// One Meter's instruments in the Prometheus text format, rendered by OpenTelemetry's Prometheus exporter
/// (package OpenTelemetry.Exporter.Prometheus.AspNetCore). Every scrape reads the observable instruments
/// afresh; the Meter's tags (node, role, dc) are labels on every series.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly Action? _beforeScrape;
    // One scrape at a time, so a second scrape's beforeScrape cannot swap the snapshot under the first one.
    private readonly SemaphoreSlim _scrape = new(1, 1);

    /// <param name="beforeScrape">Runs at the start of every scrape (e.g. to drop a cached snapshot).</param>
    public PrometheusExporter(Meter meter, Action? beforeScrape = null)
    {
        _beforeScrape = beforeScrape;
        var tags = new List<KeyValuePair<string, object>>();
        foreach (var (key, value) in meter.Tags ?? [])
            if (value is not null) tags.Add(new(key, value));
        var labels = new HashSet<string>(tags.Select(t => t.Key), StringComparer.Ordinal);
        _provider = Sdk.CreateMeterProviderBuilder()
            // The Meter's tags travel as resource attributes, which the exporter can put on every series.
            .ConfigureResource(r => r.AddService("georelay", serviceVersion: meter.Version, autoGenerateServiceInstanceId: false).AddAttributes(tags))
            .AddMeter(meter.Name)
            .AddPrometheusExporter(o =>
            {
                o.ScrapeResponseCacheDurationMilliseconds = 0; // a scrape right after a publish sees it
                o.ScopeInfoEnabled = false; // else the Meter's tags become otel_scope_node, … instead of node, …
                o.ResourceConstantLabels = labels.Contains;
            })
            .Build();
    }

    /// <summary>Serves the exposition at <paramref name="path"/> (text format 0.0.4, or OpenMetrics when asked for).</summary>
    public void Map(IEndpointRouteBuilder endpoints, string path) =>
        endpoints.MapPrometheusScrapingEndpoint(path, _provider, branch => branch.Use(BeforeScrapeAsync), optionsName: null);

    private async Task BeforeScrapeAsync(HttpContext context, RequestDelegate next)
    {
        await _scrape.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        try
        {
            _beforeScrape?.Invoke();
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            _scrape.Release();
        }
    }

    public void Dispose()
    {
        _provider.Dispose();
        _scrape.Dispose();
    }
}
