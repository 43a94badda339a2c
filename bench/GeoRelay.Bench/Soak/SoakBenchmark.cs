using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Tests.Simulation.Sim;
using GeoRelay.Topology;

namespace GeoRelay.Bench.Soak;

/// <summary>
/// `bench/run soak [seeds] [--from N] [--minutes M] [--threads T] [--out FILE]`: the deterministic fault simulation
/// (the one CI runs on 500 seeds) over many more seeds, on every core; stops early when the time
/// budget is spent and says how many seeds ran. Writes <c>bench/results/soak.md</c>.
/// </summary>
public static class SoakBenchmark
{
    public static Task<int> RunAsync(string[] args)
    {
        int seeds = 100_000, from = 1, threads = Environment.ProcessorCount;
        double minutes = double.PositiveInfinity;
        string output = Path.Combine("bench", "results", "soak.md"); // bench/run runs from the repository root
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--from": from = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--minutes": minutes = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                default:
                    if (!int.TryParse(args[i], out seeds) || seeds <= 0)
                    {
                        Console.Error.WriteLine($"unknown option {args[i]}; usage: bench/run soak [seeds] [--from N] [--minutes M] [--threads T] [--out FILE]");
                        return Task.FromResult(2);
                    }
                    break;
            }
        }
        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        var clock = Stopwatch.StartNew();
        var budget = TimeSpan.FromMinutes(Math.Min(minutes, 1e6));
        var results = new ConcurrentBag<SimulationResult>();
        var failures = new ConcurrentBag<InvariantViolationException>();
        int next = from - 1, done = 0;
        int last = from + seeds - 1;
        var workers = new Thread[Math.Max(1, threads)];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = new Thread(() =>
            {
                while (clock.Elapsed < budget)
                {
                    int seed = Interlocked.Increment(ref next);
                    if (seed > last) return;
                    try { results.Add(FaultSimulation.Run(seed, topology)); }
                    catch (InvariantViolationException e) { failures.Add(e); Console.Error.WriteLine(e.Message); }
                    int n = Interlocked.Increment(ref done);
                    if (n % 1000 == 0) Console.WriteLine($"{n} seeds, {failures.Count} failed, {clock.Elapsed:hh\\:mm\\:ss}");
                }
            }) { IsBackground = true, Name = "soak-" + w };
            workers[w].Start();
        }
        foreach (var worker in workers) worker.Join();
        clock.Stop();
        var report = Report(seeds, from, workers.Length, results.ToList(), failures.ToList(), clock.Elapsed, budget);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, report);
        Console.WriteLine(report);
        Console.WriteLine($"wrote {output}");
        return Task.FromResult(failures.IsEmpty ? 0 : 1);
    }

    private static string Report(int asked, int from, int threads, List<SimulationResult> results, List<InvariantViolationException> failures, TimeSpan elapsed, TimeSpan budget)
    {
        int ran = results.Count + failures.Count;
        var md = new StringBuilder();
        md.AppendLine("# Soak: deterministic fault simulation over many seeds");
        md.AppendLine();
        md.AppendLine("`bench/run soak [seeds] [--from N] [--minutes M]` runs `FaultSimulation` (tests/GeoRelay.Tests.Simulation/Sim/Harness) —");
        md.AppendLine("the real leader, relay and member engines and learners of `three-regions.yaml` on the simulated network, a random");
        md.AppendLine("fault schedule per seed, invariants after every step, convergence after healing — on worker threads.");
        md.AppendLine("A failing seed replays with `GEORELAY_SEED=N dotnet test tests/GeoRelay.Tests.Simulation -c Release --filter FullyQualifiedName~FaultSimulationTests`.");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine($"- worker threads: {threads} (the machine is shared; seeds/s is not a speed claim)");
        md.AppendLine();
        md.AppendLine("| seeds asked | seeds run | failed | wall time | seeds/s | simulated time | entries | failovers | direct fallbacks | learner reconnects |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        long steps = results.Sum(r => r.Steps);
        md.AppendLine($"| {asked:N0} (from {from}) | {ran:N0} | {failures.Count} | {elapsed:hh\\:mm\\:ss} | {ran / Math.Max(1, elapsed.TotalSeconds):F1} | " +
            $"{TimeSpan.FromMilliseconds(steps):d\\.hh\\:mm\\:ss} | {results.Sum(r => (long)r.Entries):N0} | {results.Sum(r => r.Failovers):N0} | " +
            $"{results.Sum(r => r.DirectFallbacks):N0} | {results.Sum(r => r.LearnerReconnects):N0} |");
        md.AppendLine();
        if (ran < asked)
            md.AppendLine($"Stopped by the time budget ({budget.TotalMinutes:F0} min) after {ran:N0} of {asked:N0} seeds.");
        md.AppendLine();
        md.AppendLine("## Faults injected");
        md.AppendLine();
        md.AppendLine("| fault | count |");
        md.AppendLine("|---|---|");
        var faults = new SortedDictionary<FaultKind, long>();
        foreach (var r in results)
            foreach (var (kind, n) in r.Faults) faults[kind] = faults.GetValueOrDefault(kind) + n;
        foreach (var (kind, n) in faults) md.AppendLine($"| {kind} | {n:N0} |");
        md.AppendLine();
        md.AppendLine("## Failures");
        md.AppendLine();
        if (failures.Count == 0) md.AppendLine("None.");
        foreach (var f in failures.OrderBy(f => f.Seed))
            md.AppendLine($"- seed {f.Seed}, step {f.Step}: {f.What.Split('\n')[0]}");
        return md.ToString();
    }
}
