using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>The PNG plots of a cross-region run, drawn with gnuplot from data files in a temporary folder.</summary>
public static class Plots
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Draws every plot; returns (title, file name) pairs for the report, in order.</summary>
    public static List<(string Title, string File)> Draw(string gnuplot, string outDir, string baseName, Scenario scenario, List<CrossRegionBenchmark.SystemResult> results)
    {
        var work = Directory.CreateTempSubdirectory("georelay-xr-plots-").FullName;
        var plots = new List<(string, string)>();
        var regions = scenario.Regions.Keys.ToArray();
        try
        {
            // Latency CDF (overhead above the floor) per rate: a line per system and region.
            foreach (int rate in scenario.Rates)
            {
                var lines = new List<string>();
                foreach (var (r, system) in results.Select((r, i) => (r, i)))
                {
                    int phase = r.Phases.FindIndex(p => p.Phase.Rate == rate);
                    if (phase < 0) continue;
                    for (int g = 0; g < regions.Length; g++)
                    {
                        string file = Path.Combine(work, $"cdf-{rate}-{r.Name}-{regions[g]}.dat");
                        double floor = scenario.FloorMs(regions[g], r.Name);
                        File.WriteAllLines(file, r.Recorder.CellOf(phase, g).Latency.Cdf()
                            .Select(p => string.Create(Inv, $"{Math.Max(0.01, p.Micros / 1000 - floor)} {p.Fraction}")));
                        // Colour says the system, dash the region.
                        lines.Add($"'{file}' using 1:2 with lines lw 2 lc {system + 1} dt {g + 1} title '{r.Name} {regions[g]}'");
                    }
                }
                if (lines.Count == 0) continue;
                string png = $"{baseName}-cdf-{rate}.png";
                Run(gnuplot, work, $"""
                    set terminal pngcairo size 1100,650 font 'sans,10'
                    set output '{Path.Combine(outDir, png)}'
                    set title 'Publish-to-learner latency minus the WAN floor, {rate} entries/s offered'
                    set xlabel 'latency above the one-way link delay (ms, log)'
                    set ylabel 'fraction of deliveries'
                    set logscale x
                    set key bottom right
                    set grid
                    plot {string.Join(", ", lines)}
                    """);
                plots.Add(($"Latency CDF above the floor at {rate}/s (every learner, every entry)", png));
            }

            // Load curve: worst region's p99 overhead against the offered rate; bytes across regions per entry.
            plots.Add(RatePlot(gnuplot, work, outDir, $"{baseName}-load.png", results, "load",
                "Load curve: p99 latency above the WAN floor (worst region) against offered rate", "p99 overhead (ms, log)",
                (r, i) => Math.Clamp(Report.WorstOverhead(r, i, 0.99, scenario), 0.01, 1e6),
                "Load curve (a system's line ends at the last rate it was run at; see the table for which it sustained)"));
            plots.Add(RatePlot(gnuplot, work, outDir, $"{baseName}-bytes.png", results, "bytes",
                "Bytes crossing region boundaries per entry (all links, both directions)", "bytes per entry (log)",
                (r, i) => Math.Max(0.1, r.Phases[i].CrossingBytes / (double)r.Phases[i].Phase.Count),
                "Bytes across regions per entry"));

            // Failover timeline: latency of every entry at one learner per region, by publish time.
            if (results.Any(r => r.Fault is not null))
            {
                var panels = new StringBuilder();
                int withFault = results.Count(r => r.Fault is not null);
                foreach (var r in results.Where(r => r.Fault is not null))
                {
                    var lines = new List<string>();
                    for (int g = 0; g < regions.Length; g++)
                    {
                        string file = Path.Combine(work, $"timeline-{r.Name}-{regions[g]}.dat");
                        List<(double AtSeconds, double LatencyMs)> points;
                        lock (r.Recorder.Timeline[g]) points = r.Recorder.Timeline[g].ToList();
                        File.WriteAllLines(file, points.Select(p => string.Create(Inv, $"{p.AtSeconds} {p.LatencyMs}")));
                        if (points.Count > 0) lines.Add($"'{file}' using 1:2 with points pt 7 ps 0.3 title '{regions[g]}'");
                    }
                    panels.AppendLine(Inv, $"set title '{r.Name}: latency of each entry at learner 0 of each region, by publish time'");
                    // gnuplot refuses a plot with no defined point on a log axis, so an empty panel draws an invisible line and says why.
                    panels.AppendLine(lines.Count > 0
                        ? $"plot {string.Join(", ", lines)}"
                        : "set label 1 'no deliveries at learner 0 in this phase' at graph 0.5, graph 0.5 center\nset yrange [1:10]\nplot 1 with lines lc rgb 'white' notitle\nunset label 1\nset autoscale y");
                }
                string png = $"{baseName}-failover.png";
                Run(gnuplot, work, $"""
                    set terminal pngcairo size 1100,{300 * withFault} font 'sans,9'
                    set output '{Path.Combine(outDir, png)}'
                    set multiplot layout {withFault},1
                    set xlabel 'seconds into the fault phase'
                    set ylabel 'latency (ms, log)'
                    set logscale y
                    set grid
                    set key outside right
                    {panels}
                    unset multiplot
                    """);
                plots.Add(("Failover timeline (fault phase)", png));
            }
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
        return plots;
    }

    /// <summary>A value per system and rate step, as lines against the offered rate, both axes logarithmic.</summary>
    private static (string, string) RatePlot(string gnuplot, string work, string outDir, string png, List<CrossRegionBenchmark.SystemResult> results,
        string stem, string title, string ylabel, Func<CrossRegionBenchmark.SystemResult, int, double> value, string caption)
    {
        var lines = new List<string>();
        foreach (var r in results)
        {
            string file = Path.Combine(work, $"{stem}-{r.Name}.dat");
            File.WriteAllLines(file, r.Phases.Select((p, i) => string.Create(Inv, $"{p.Phase.Rate} {value(r, i)}")));
            lines.Add($"'{file}' using 1:2 with linespoints lw 2 pt 7 title '{r.Name}'");
        }
        Run(gnuplot, work, $"""
            set terminal pngcairo size 1000,600 font 'sans,10'
            set output '{Path.Combine(outDir, png)}'
            set title '{title}'
            set xlabel 'offered entries/s (log)'
            set ylabel '{ylabel}'
            set logscale xy
            set grid
            set key outside right
            plot {string.Join(", ", lines)}
            """);
        return (caption, png);
    }

    private static void Run(string gnuplot, string work, string script)
    {
        string file = Path.Combine(work, "plot.gp");
        File.WriteAllText(file, script);
        var start = new ProcessStartInfo(gnuplot, [file]) { RedirectStandardError = true };
        using var process = Process.Start(start)!;
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"gnuplot failed ({process.ExitCode}): {errors}\n{script}");
    }
}
