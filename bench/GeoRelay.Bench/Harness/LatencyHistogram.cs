using System.Diagnostics;
using HdrHistogram;

namespace GeoRelay.Bench.Harness;

/// <summary>
/// The benchmarks' latency histograms: HdrHistogram in microseconds, up to an hour, three significant digits
/// (0.1 %). HdrHistogram throws on values out of range and on percentiles of an empty histogram; these
/// helpers clamp and answer 0 instead, so a report never fails on one odd sample or an empty region.
/// </summary>
public static class LatencyHistogram
{
    /// <summary>Largest value, µs (one hour); anything later counts as this, anything negative as 0.</summary>
    public const long MaxMicros = 3_600_000_000;

    /// <summary>A histogram for one writer; merge several with <see cref="HistogramBase.Add"/>.</summary>
    public static LongHistogram Create() => new(1, MaxMicros, 3);

    public static void RecordMicros(this HistogramBase histogram, double micros) =>
        histogram.RecordValue((long)Math.Clamp(Math.Round(micros), 0, MaxMicros));

    /// <summary>Records the time since <paramref name="stopwatchTimestamp"/> (a <see cref="Stopwatch.GetTimestamp"/>).</summary>
    public static void RecordSince(this HistogramBase histogram, long stopwatchTimestamp) =>
        histogram.RecordMicros(Stopwatch.GetElapsedTime(stopwatchTimestamp).TotalMicroseconds);

    /// <summary>The value at quantile <paramref name="q"/> (0..1), µs; 0 when empty.</summary>
    public static double Quantile(this HistogramBase histogram, double q) =>
        histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(q * 100);

    /// <summary>(value µs, fraction of samples at or below it) for every recorded value: a CDF to plot.</summary>
    public static IEnumerable<(double Micros, double Fraction)> Cdf(this HistogramBase histogram)
    {
        long total = histogram.TotalCount;
        if (total == 0) yield break;
        foreach (var step in histogram.RecordedValues())
            yield return (step.ValueIteratedTo, (double)step.TotalCountToThisValue / total);
    }
}
