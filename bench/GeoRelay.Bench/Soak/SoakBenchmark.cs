using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Topology;

namespace GeoRelay.Bench.Soak;

/// <summary>
/// `bench/run soak [seeds] [--from N] [--minutes M] [--threads T] [--chunk C] [--ledger FILE] [--out FILE]`: the
/// deterministic fault simulation (the one CI runs on 500 seeds) over seeds N .. N+seeds-1, one worker per core.
/// Resumable: finished ranges go to <c>bench/results/soak-ledger.csv</c> as they finish and are skipped by the next
/// run; Ctrl-C, SIGTERM or the time budget stops the workers after their current seed and keeps what they finished.
/// <c>bench/results/soak.md</c> reports the union of the ledger.
/// </summary>
public static class SoakBenchmark
{
    private const string Usage = "usage: bench/run soak [seeds] [--from N] [--minutes M] [--threads T] [--chunk C] [--ledger FILE] [--out FILE]";

    public static Task<int> RunAsync(string[] args)
    {
        int seeds = 100_000, from = 1, threads = Environment.ProcessorCount, chunk = 250;
        double minutes = double.PositiveInfinity;
        // bench/run runs from the repository root.
        string output = Path.Combine("bench", "results", "soak.md");
        string ledger = Path.Combine("bench", "results", "soak-ledger.csv");
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--from": from = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--minutes": minutes = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--chunk": chunk = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                    case "--ledger": ledger = Path.GetFullPath(args[++i]); break;
                    case "--out": output = Path.GetFullPath(args[++i]); break;
                    default:
                        if (!int.TryParse(args[i], CultureInfo.InvariantCulture, out seeds)) throw new FormatException($"unknown option {args[i]}");
                        break;
                }
            }
            if (seeds <= 0 || from <= 0 || threads <= 0 || chunk <= 0 || !(minutes > 0))
                throw new FormatException("seeds, --from, --threads, --chunk and --minutes must be positive");
            if ((long)from + seeds - 1 > int.MaxValue) throw new FormatException($"seeds {from}..{(long)from + seeds - 1} go past {int.MaxValue}");
        }
        catch (Exception e) when (e is FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"{(e is IndexOutOfRangeException ? "an option lacks its value" : e.Message)}; {Usage}");
            return Task.FromResult(2);
        }

        int last = from + seeds - 1;
        var done = SoakLedger.Read(ledger);
        var work = SoakLedger.Missing(done, from, last, chunk);
        long todo = work.Sum(w => (long)(w.To - w.From + 1));
        Console.WriteLine($"soak: seeds {from}..{last}: {seeds - todo:N0} already in {ledger}, {todo:N0} to run on {threads} worker(s)");

        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        string run = DateTime.UtcNow.ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture);
        string commit = GitCommit();
        var clock = Stopwatch.StartNew();
        var budget = TimeSpan.FromMinutes(Math.Min(minutes, 1e6));
        var stop = new CancellationTokenSource();
        void OnSignal(System.Runtime.InteropServices.PosixSignalContext signal)
        {
            signal.Cancel = true; // finish the current seeds, write their ranges and the report, then exit
            Console.Error.WriteLine($"soak: {signal.Signal}, stopping after the current seeds");
            stop.Cancel();
        }
        using var onInterrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, OnSignal);
        using var onTerminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, OnSignal);
        var gate = new Lock();
        int nextWork = -1;
        long ran = 0, failed = 0;
        var workers = new Thread[Math.Min(threads, Math.Max(1, work.Count))];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = new Thread(() =>
            {
                int taken;
                while (!Stopped() && (taken = Interlocked.Increment(ref nextWork)) < work.Count)
                {
                    var (a, b) = work[taken];
                    var range = new SoakRange { Run = run, Commit = commit, Threads = workers.Length, From = a };
                    var worker = Stopwatch.StartNew();
                    int seed = a;
                    for (; seed <= b && !Stopped(); seed++)
                    {
                        try
                        {
                            range.Add(FaultSimulation.Run(seed, topology));
                        }
                        catch (InvariantViolationException e)
                        {
                            range.Fail(e);
                            Interlocked.Increment(ref failed);
                            lock (gate) Console.Error.WriteLine(e.Message); // says the seed and how to replay it
                        }
                        Interlocked.Increment(ref ran);
                    }
                    if (seed == a) return;
                    range.To = seed - 1;
                    range.WorkerSeconds = worker.Elapsed.TotalSeconds;
                    range.FinishedUtc = DateTime.UtcNow;
                    lock (gate)
                    {
                        SoakLedger.Append(ledger, range);
                        long n = Interlocked.Read(ref ran);
                        Console.WriteLine($"{range.From}..{range.To} done: {n:N0}/{todo:N0} seeds, {Interlocked.Read(ref failed)} failed, " +
                            $"{clock.Elapsed:hh\\:mm\\:ss}, {n / Math.Max(1, clock.Elapsed.TotalSeconds):F1} seeds/s");
                    }
                }
            }) { IsBackground = true, Name = "soak-" + w };
            workers[w].Start();
        }
        foreach (var worker in workers) worker.Join();
        clock.Stop();

        var all = SoakLedger.Read(ledger);
        var report = Report(all, from, last, ledger, ran, clock.Elapsed, workers.Length, stop.IsCancellationRequested ? "interrupted" : clock.Elapsed >= budget ? $"time budget ({minutes} min) spent" : null);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, report);
        Console.WriteLine(report);
        Console.WriteLine($"wrote {output}");
        bool anyFailed = all.Any(r => r.From <= last && r.To >= from && r.Failures.Count > 0);
        return Task.FromResult(anyFailed ? 1 : 0);

        bool Stopped() => stop.IsCancellationRequested || clock.Elapsed >= budget;
    }

    /// <summary>The commit the soak runs on, "-dirty" when tracked files differ from it (the soak's own results aside).</summary>
    private static string GitCommit()
    {
        string? commit = Git("rev-parse --short=12 HEAD", out _);
        if (commit is null) return "unknown";
        Git("diff --quiet HEAD -- . :(exclude)bench/results", out int changed);
        return changed == 0 ? commit : commit + "-dirty";
    }

    private static string? Git(string arguments, out int exitCode)
    {
        exitCode = -1;
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string text = git.StandardOutput.ReadToEnd().Trim();
            git.StandardError.ReadToEnd();
            git.WaitForExit();
            exitCode = git.ExitCode;
            return exitCode == 0 && text.Length > 0 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string Replay(int seed) =>
        $"GEORELAY_SEED={seed} dotnet test tests/GeoRelay.Tests.Simulation -c Release --filter FullyQualifiedName~FaultSimulationTests";

    private static string Report(List<SoakRange> ledger, int from, int last, string ledgerPath, long ranNow, TimeSpan elapsedNow, int threadsNow, string? stoppedBy)
    {
        // Rows inside the asked range; a row overlapping one already counted (a range run twice) is left out of the sums.
        var rows = new List<SoakRange>();
        foreach (var r in ledger.Where(r => r.From >= from && r.To <= last).OrderBy(r => r.From))
            if (rows.Count == 0 || r.From > rows[^1].To) rows.Add(r);
        long covered = SoakLedger.DistinctSeeds(rows);
        long asked = (long)last - from + 1;
        var failures = rows.SelectMany(r => r.Failures).ToList();

        var md = new StringBuilder();
        md.AppendLine("# Soak: deterministic fault simulation over many seeds");
        md.AppendLine();
        md.AppendLine("`bench/run soak [seeds] [--from N] [--minutes M] [--threads T]` runs `FaultSimulation` (tests/GeoRelay.TestUtilities/Sim) —");
        md.AppendLine("the real leader, relay and member engines and learners of `three-regions.yaml` on the simulated network, a random");
        md.AppendLine("fault schedule per seed, invariants after every step, convergence after healing — one worker per core.");
        md.AppendLine($"Every finished range of seeds is a row of `{Path.GetFileName(ledgerPath)}` (with the commit it ran on and a digest of its traces);");
        md.AppendLine("a new run skips what the ledger holds, so an interrupted soak continues where it stopped. This report covers the union.");
        md.AppendLine($"A failing seed replays with `{Replay(0).Replace("=0 ", "=N ", StringComparison.Ordinal)}`.");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine("- the machine is shared with other benchmarks; seeds/s is what this run got, not a speed claim");
        md.AppendLine();
        md.AppendLine("| seeds asked | seeds run | failed | simulated time | entries | failovers | direct fallbacks | learner reconnects |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        md.AppendLine($"| {asked:N0} ({from}..{last}) | {covered:N0} | {failures.Count} | {TimeSpan.FromMilliseconds(rows.Sum(r => r.Steps)):d\\.hh\\:mm\\:ss} | " +
            $"{rows.Sum(r => r.Entries):N0} | {rows.Sum(r => r.Failovers):N0} | {rows.Sum(r => r.DirectFallbacks):N0} | {rows.Sum(r => r.LearnerReconnects):N0} |");
        md.AppendLine();
        if (covered < asked)
        {
            md.AppendLine($"**Not finished: {asked - covered:N0} of {asked:N0} seeds still to run.** Continue with:");
            md.AppendLine();
            md.AppendLine($"    nice -n 19 bench/run soak {asked} --from {from}");
            md.AppendLine();
        }
        md.AppendLine("## Runs");
        md.AppendLine();
        md.AppendLine("| run (UTC start) | commit | workers | seeds | wall time | seeds/s | worker-seconds per seed |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var group in rows.GroupBy(r => (r.Run, r.Commit, r.Threads)).OrderBy(g => g.Key.Run, StringComparer.Ordinal))
        {
            long n = group.Sum(r => (long)r.Seeds);
            var started = DateTime.ParseExact(group.Key.Run, "yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            var wall = group.Max(r => r.FinishedUtc) - started;
            md.AppendLine($"| {started:yyyy-MM-dd HH:mm:ss} | {group.Key.Commit} | {group.Key.Threads} | {n:N0} | {wall:hh\\:mm\\:ss} | " +
                $"{n / Math.Max(1, wall.TotalSeconds):F1} | {group.Sum(r => r.WorkerSeconds) / n:F3} |");
        }
        md.AppendLine();
        if (stoppedBy is not null)
            md.AppendLine($"The last run ({threadsNow} workers) was stopped ({stoppedBy}) after {ranNow:N0} seeds in {elapsedNow:hh\\:mm\\:ss}.");
        md.AppendLine();
        md.AppendLine("## Faults injected");
        md.AppendLine();
        md.AppendLine("| fault | count |");
        md.AppendLine("|---|---|");
        var kinds = Enum.GetValues<FaultKind>();
        for (int k = 0; k < kinds.Length; k++) md.AppendLine($"| {kinds[k]} | {rows.Sum(r => r.Faults[k]):N0} |");
        md.AppendLine();
        md.AppendLine("## Failures");
        md.AppendLine();
        if (failures.Count == 0) md.AppendLine("None.");
        foreach (var f in failures)
        {
            int seed = int.Parse(f.AsSpan(0, f.IndexOf('@')), CultureInfo.InvariantCulture);
            md.AppendLine($"- seed {seed}, step {f[(f.IndexOf('@') + 1)..]}: `{Replay(seed)}`");
        }
        return md.ToString();
    }
}
