using GeoRelay.Server.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;

namespace GeoRelay.Server.Admin;

/// <summary>Optional push of the node's metrics to an OTLP collector (HTTP/protobuf), from `--otlp URL`.</summary>
public static class OtlpExport
{
    /// <summary>
    /// Starts a meter provider exporting the "GeoRelay" meter to <paramref name="endpoint"/> every
    /// <paramref name="interval"/>. A bare collector address (no path) gets the standard <c>/v1/metrics</c>.
    /// </summary>
    public static MeterProvider Start(Uri endpoint, TimeSpan interval, ILogger logger)
    {
        var target = endpoint.AbsolutePath is "" or "/" ? new Uri(endpoint, "/v1/metrics") : endpoint;
        HostingLog.OtlpExporting(logger, target.ToString(), interval.TotalSeconds);
        return Sdk.CreateMeterProviderBuilder()
            .AddMeter(NodeMetrics.MeterName)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = target;
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)Math.Max(100, interval.TotalMilliseconds);
            })
            .Build();
    }
}
