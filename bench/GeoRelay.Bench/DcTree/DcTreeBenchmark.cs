using System.Diagnostics;
using System.Globalization;
using GeoRelay.Bench.Codec;
using GeoRelay.Codec.Compression;

namespace GeoRelay.Bench.DcTree;

/// <summary>
/// <c>bench/run dc-tree</c> (issue #19): a modelled fan-out tree at scale, two tiers of relays against one, each
/// through the death (and the silence) of a datacenter's active relay. Writes <c>bench/results/dc-tree.md</c>.
/// </summary>
public static class DcTreeBenchmark
{
    public static Task<int> RunAsync(string[] args)
    {
        DcTreeOptions options;
        try
        {
            options = DcTreeOptions.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(DcTreeOptions.Usage);
            return Task.FromResult(2);
        }
        if (!Zstd.IsAvailable)
        {
            Console.Error.WriteLine(Zstd.Description);
            return Task.FromResult(1);
        }

        // Thousands separators and decimal points in the report as everywhere else in bench/results.
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var clock = Stopwatch.StartNew();
        var corpus = Corpus.SyntheticJson((int)options.Entries, 1, [0]);
        var log = new EntryLog(corpus);
        TreeShape[] shapes = [TreeShape.TwoTiers(options.RelaysPerDc), TreeShape.OneTier(options.RelaysPerDc)];
        var results = new List<TreeRunResult>();
        foreach (var kill in options.Kills)
        {
            foreach (var shape in shapes)
            {
                // A wire per run: the leader's batch sequence and the frame cache start afresh, as in a new process.
                using var wire = new TreeWire(log, options.MaxDeliverBytes, options.MaxDeliverEntries);
                using var simulation = new TreeSimulation(options, shape, kill, wire);
                var result = simulation.Run();
                results.Add(result);
                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {shape.Name}, relay {(kill == KillMode.Dies ? "dies" : "goes silent")}: " +
                    $"{result.Events:N0} events in {result.Took.TotalSeconds:F1} s, leader {result.LeaderBytes / (double)result.Entries:N0} B/entry, " +
                    $"{result.LearnersWithViolations} learners with a gap or duplicate, {result.IncompleteLearners:N0} incomplete");
            }
        }

        var report = DcTreeReport.Write(options, args, corpus, log, results, clock.Elapsed);
        Directory.CreateDirectory(Path.GetDirectoryName(options.Output)!);
        File.WriteAllText(options.Output, report);
        Console.WriteLine(report);
        Console.WriteLine($"wrote {options.Output} in {clock.Elapsed.TotalSeconds:F0} s");
        return Task.FromResult(DcTreeReport.Broken(results) ? 1 : 0);
    }
}
