using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace GeoRelay.Server.Admin;

/// <summary>
/// Renders one Meter's instruments in the Prometheus text exposition format (version 0.0.4), through a
/// MeterListener: observable instruments are read at each scrape, counters summed, histograms bucketed.
/// </summary>
/// <remarks>
/// Locks: a scrape holds <c>_scrape</c> while the observable callbacks run (they take the engine lock);
/// measurements land under <c>_values</c>, a leaf lock, so a histogram recorded under the engine lock
/// cannot deadlock against a scrape.
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private enum Kind : byte { Counter, Gauge, Histogram }

    private sealed class Series(Instrument instrument, Kind kind, bool observable)
    {
        public Instrument Instrument { get; } = instrument;
        public Kind Kind { get; } = kind;
        public bool Observable { get; } = observable;
        public readonly Dictionary<string, double> Values = new(StringComparer.Ordinal);
        public readonly Dictionary<string, (long[] Buckets, long Count, double Sum)> Histograms = new(StringComparer.Ordinal);
    }

    private readonly Meter _meter;
    private readonly MeterListener _listener = new();
    private readonly object _scrape = new();
    private readonly object _values = new();
    private readonly List<Series> _series = new();
    private readonly string _meterLabels;
    private readonly Action? _beforeScrape;

    /// <param name="beforeScrape">Runs at the start of every scrape (e.g. to drop a cached snapshot).</param>
    public PrometheusExporter(Meter meter, Action? beforeScrape = null)
    {
        _meter = meter;
        _beforeScrape = beforeScrape;
        var labels = new StringBuilder();
        if (meter.Tags is { } tags)
            foreach (var t in tags) AppendLabel(labels, t.Key, t.Value);
        _meterLabels = labels.ToString();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter, _meter)) return;
            var series = new Series(instrument, KindOf(instrument, out bool observable), observable);
            lock (_values) _series.Add(series);
            listener.EnableMeasurementEvents(instrument, series);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, state) => OnMeasurement((Series)state!, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, state) => OnMeasurement((Series)state!, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, state) => OnMeasurement((Series)state!, v, tags));
        _listener.Start();
    }

    private static Kind KindOf(Instrument instrument, out bool observable)
    {
        var type = instrument.GetType();
        var generic = type.IsGenericType ? type.GetGenericTypeDefinition() : type;
        observable = instrument.IsObservable;
        if (generic == typeof(Counter<>) || generic == typeof(ObservableCounter<>)) return Kind.Counter;
        if (generic == typeof(Histogram<>)) return Kind.Histogram;
        return Kind.Gauge; // gauges and up-down counters
    }

    private void OnMeasurement(Series series, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = new StringBuilder(_meterLabels);
        foreach (var t in tags) AppendLabel(labels, t.Key, t.Value);
        string key = labels.ToString();
        lock (_values)
        {
            switch (series.Kind)
            {
                case Kind.Histogram:
                    if (!series.Histograms.TryGetValue(key, out var h)) h = (new long[LatencyBuckets.Length], 0, 0);
                    for (int b = 0; b < LatencyBuckets.Length; b++)
                        if (value <= LatencyBuckets[b]) h.Buckets[b]++;
                    series.Histograms[key] = (h.Buckets, h.Count + 1, h.Sum + value);
                    break;
                case Kind.Counter when !series.Observable:
                    series.Values[key] = series.Values.GetValueOrDefault(key) + value;
                    break;
                default:
                    series.Values[key] = value;
                    break;
            }
        }
    }

    /// <summary>Reads every observable instrument and renders everything.</summary>
    public string Scrape()
    {
        lock (_scrape)
        {
            _beforeScrape?.Invoke();
            lock (_values)
                foreach (var s in _series)
                    if (s.Observable) s.Values.Clear(); // a peer that went away leaves no stale series
            _listener.RecordObservableInstruments();
            var text = new StringBuilder(8192);
            lock (_values)
                foreach (var s in _series) Render(text, s);
            return text.ToString();
        }
    }

    private static void Render(StringBuilder text, Series s)
    {
        string name = PrometheusName(s.Instrument, s.Kind);
        if (s.Instrument.Description is { Length: > 0 } help)
            text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(s.Kind switch { Kind.Counter => "counter", Kind.Histogram => "histogram", _ => "gauge" }).Append('\n');
        foreach (var (labels, value) in s.Values)
            Sample(text, name, labels, value);
        foreach (var (labels, h) in s.Histograms)
        {
            for (int b = 0; b < LatencyBuckets.Length; b++)
                Sample(text, name + "_bucket", Join(labels, "le=\"" + Number(LatencyBuckets[b]) + "\""), h.Buckets[b]);
            Sample(text, name + "_bucket", Join(labels, "le=\"+Inf\""), h.Count);
            Sample(text, name + "_sum", labels, h.Sum);
            Sample(text, name + "_count", labels, h.Count);
        }
    }

    private static string Join(string labels, string more) => labels.Length == 0 ? more : labels + "," + more;

    private static void Sample(StringBuilder text, string name, string labels, double value)
    {
        text.Append(name);
        if (labels.Length > 0) text.Append('{').Append(labels).Append('}');
        text.Append(' ').Append(Number(value)).Append('\n');
    }

    private static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>`georelay.dc.sent` in By as a counter → `georelay_dc_sent_bytes_total`.</summary>
    private static string PrometheusName(Instrument instrument, Kind kind)
    {
        var name = new StringBuilder(instrument.Name.Length + 16);
        foreach (char c in instrument.Name) name.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        string? unit = instrument.Unit switch { "By" => "bytes", "s" => "seconds", _ => null };
        if (unit is not null) name.Append('_').Append(unit);
        if (kind == Kind.Counter) name.Append("_total");
        return name.ToString();
    }

    private static void AppendLabel(StringBuilder labels, string key, object? value)
    {
        if (labels.Length > 0) labels.Append(',');
        foreach (char c in key) labels.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        labels.Append("=\"");
        foreach (char c in Convert.ToString(value, CultureInfo.InvariantCulture) ?? "")
        {
            if (c is '\\' or '"') labels.Append('\\').Append(c);
            else if (c == '\n') labels.Append("\\n");
            else labels.Append(c);
        }
        labels.Append('"');
    }

    public void Dispose() => _listener.Dispose();
}
