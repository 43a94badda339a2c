using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.TestUtilities.Fuzzing;

namespace GeoRelay.Bench.Fuzz;

/// <summary>
/// <c>bench/run fuzz [iterations] [--seed N] [--write-corpus]</c>: the decoder fuzzer for longer than CI runs it.
/// Crashing inputs are saved into the test corpus (tests/GeoRelay.Tests.Unit/Fuzz/corpus), where the unit tests replay them.
/// </summary>
public static class FuzzBenchmark
{
    public static Task<int> RunAsync(string[] args)
    {
        long iterations = 1_000_000;
        int seed = Environment.TickCount;
        bool writeCorpus = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--seed" && i + 1 < args.Length) seed = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--write-corpus") writeCorpus = true;
            else if (long.TryParse(args[i], NumberStyles.None, CultureInfo.InvariantCulture, out long n)) iterations = n;
            else
            {
                Console.Error.WriteLine($"fuzz: unknown argument '{args[i]}'; usage: bench/run fuzz [iterations] [--seed N] [--write-corpus]");
                return Task.FromResult(2);
            }
        }
        string repo = FindRepo();
        string corpusDir = Path.Combine(repo, "tests", "GeoRelay.Tests.Unit", "Fuzz", "corpus");
        if (writeCorpus) Console.Error.WriteLine($"wrote {FuzzCorpus.WriteSeeds(corpusDir)} seed inputs to {corpusDir}");
        var corpus = FuzzCorpus.Load(corpusDir).ConvertAll(c => (c.Target, c.Bytes));
        var fuzzer = new MutationFuzzer(DecoderTargets.All, corpus, seed) { MaxFindings = 100 };
        var clock = Stopwatch.StartNew();
        var report = fuzzer.Run(iterations);
        clock.Stop();
        var md = new StringBuilder();
        md.AppendLine("# Decoder fuzzing").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`bench/run fuzz {iterations} --seed {seed}`: {report.Iterations:N0} inputs over {DecoderTargets.All.Count} decoders from {corpus.Count} corpus inputs in {clock.Elapsed.TotalSeconds:0.0} s; {report.Rejected:N0} rejected with CodecException, {report.Accepted:N0} accepted, **{report.Findings.Count} findings**.").AppendLine();
        md.AppendLine("| decoder | inputs |").AppendLine("| --- | ---: |");
        foreach (var (name, n) in report.PerTarget.OrderBy(p => p.Key, StringComparer.Ordinal)) md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {n:N0} |");
        md.AppendLine();
        foreach (var f in report.Findings)
        {
            md.AppendLine($"- {f}; saved as {Path.GetFileName(FuzzCorpus.SaveCrash(corpusDir, f))}");
        }
        Console.Write(md);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        File.WriteAllText(Path.Combine(repo, "bench", "results", "fuzz.md"), md.ToString());
        return Task.FromResult(report.Findings.Count == 0 ? 0 : 1);
    }

    private static string FindRepo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GeoRelay.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
