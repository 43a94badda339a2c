using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Topology;

namespace GeoRelay.Bench.Soak;

/// <summary>
/// `bench/run soak [seeds] [--sim faults|voters|voters-durable|voters-retention|voters-keyed] [--from N] [--minutes M] [--threads T] [--chunk C]
/// [--ledger FILE] [--out FILE]`: a deterministic simulation over seeds N .. N+seeds-1, one worker per core: the fault
/// simulation (the default; the one CI runs on 500 seeds) or the voter chaos run (elections; CI runs 120 seeds), with
/// committed or durable learner delivery. Resumable: finished ranges go to the simulation's ledger
/// (<c>bench/results/soak-ledger.csv</c>, <c>soak-voters-ledger.csv</c>, ...) as they finish and are skipped by the next
/// run; Ctrl-C, SIGTERM or the time budget stops the workers after their current seed and keeps what they finished.
/// The report (<c>bench/results/soak.md</c>, <c>soak-voters.md</c>, ...) covers the union of the ledger.
/// </summary>
public static class SoakBenchmark
{
    private const string Usage = "usage: bench/run soak [seeds] [--sim faults|voters|voters-durable|voters-retention|voters-keyed] [--from N] [--minutes M] [--threads T] [--chunk C] [--ledger FILE] [--out FILE]";

    /// <summary>One simulation the soak can run: its ledger layout and files, how to run a seed, and what its report shows.</summary>
    private sealed record Simulation(
        string Name, SoakSchema Schema, string File, string Title, string[] Description, Func<int, string> Replay,
        Action<SoakRange, int> RunSeed, (string Column, string Title)[] Totals, string[] FaultColumns);

    private static Simulation[] Simulations(TopologyConfig topology)
    {
        string[] faults = Enum.GetNames<FaultKind>(), voterFaults = Enum.GetNames<VoterFault>();
        (string, string)[] voterTotals = [("entries", "entries"), ("leader_terms", "terms with a leader"), ("learner_truncations", "Truncated to learners"), ("learner_reconnects", "learner reconnects")];
        string[] voters =
        [
            "`VoterChaos` (tests/GeoRelay.TestUtilities/Sim, the run CI's `VoterChaosTests` does on 120 seeds) — every voter of",
            "`three-regions.yaml` a `VoterEngine` electing the leader, the relays and learners as they are, on the simulated network;",
            "30 rounds of voter crashes (half losing their unsynced tail), restarts, the leader cut off, relays lost, while an",
            "exactly-once publisher and the test publish at whoever leads; the invariants of `VoterCluster` after every step (one",
            "leader per term, a leader's log only grows in its term, log matching, leader completeness, one committed entry per",
            "index, commit indexes never go back, each publisher sequence committed once), then convergence after healing:",
            "every voter caught up, every acknowledged publish in the log once, every learner holding exactly the leader's log.",
        ];
        return
        [
            new("faults", SoakSchema.Faults, "soak", "Soak: deterministic fault simulation over many seeds",
                [
                    "`FaultSimulation` (tests/GeoRelay.TestUtilities/Sim) — the real leader, relay and member engines and learners of",
                    "`three-regions.yaml` on the simulated network, a random fault schedule per seed, invariants after every step,",
                    "convergence after healing.",
                ],
                FaultSimulation.ReplayCommand, (range, seed) => range.Add(FaultSimulation.Run(seed, topology)),
                [("entries", "entries"), ("failovers", "failovers"), ("direct_fallbacks", "direct fallbacks"), ("learner_reconnects", "learner reconnects")],
                faults),
            new("voters", SoakSchema.Voters, "soak-voters", "Soak: voter chaos simulation (elections) over many seeds",
                [.. voters, "Learners get committed entries only (`delivery: committed`, the default)."],
                seed => VoterChaos.ReplayCommand(seed, LearnerDelivery.Committed), (range, seed) => range.Add(VoterChaos.Run(seed)),
                voterTotals, voterFaults),
            new("voters-durable", SoakSchema.Voters, "soak-voters-durable", "Soak: voter chaos simulation with durable learner delivery over many seeds",
                [.. voters, "Learners get entries once durable (`delivery: durable`): what a leader change takes back must reach them as `Truncated`."],
                seed => VoterChaos.ReplayCommand(seed, LearnerDelivery.Durable), (range, seed) => range.Add(VoterChaos.Run(seed, LearnerDelivery.Durable)),
                voterTotals, voterFaults),
            new("voters-retention", SoakSchema.Voters, "soak-voters-retention", "Soak: voter chaos simulation with small retention over many seeds",
                [.. voters, "Voters keep a few dozen entries (`VoterChaos.SmallRetention`): followers that were down or cut off come back",
                    "through the leader's log start (InstallSnapshot); learners left behind everything are told SnapshotRequired."],
                seed => VoterChaos.ReplayCommand(seed, LearnerDelivery.Committed, retention: true),
                (range, seed) => range.Add(VoterChaos.Run(seed, retention: true)),
                [.. voterTotals, ("snapshot_installs", "snapshot installs")], voterFaults),
            new("voters-keyed", SoakSchema.Voters, "soak-voters-keyed", "Soak: voter chaos simulation with keyed compaction over many seeds",
                [.. voters, "Every node compacts its log by key (`compaction: keyed`) with small retention; keyed writes and tombstones;",
                    "learners behind retention take snapshots of the keyed state, each checked against the leader's keyed state at its index,",
                    "and every learner ends with the leader's state."],
                seed => VoterChaos.ReplayCommand(seed, LearnerDelivery.Committed, keyed: true),
                (range, seed) => range.Add(VoterChaos.Run(seed, keyed: true)),
                [.. voterTotals, ("snapshot_installs", "snapshot installs")], voterFaults),
        ];
    }

    public static Task<int> RunAsync(string[] args)
    {
        int seeds = 100_000, from = 1, threads = Environment.ProcessorCount, chunk = 250;
        double minutes = double.PositiveInfinity;
        string? output = null, ledger = null;
        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        var simulations = Simulations(topology);
        var sim = simulations[0];
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--sim":
                        string name = args[++i];
                        sim = simulations.FirstOrDefault(s => s.Name == name)
                            ?? throw new FormatException($"no simulation '{name}' (there are {string.Join(", ", simulations.Select(s => s.Name))})");
                        break;
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

        // bench/run runs from the repository root.
        output ??= Path.Combine("bench", "results", sim.File + ".md");
        ledger ??= Path.Combine("bench", "results", sim.File + "-ledger.csv");
        int last = from + seeds - 1;
        var done = SoakLedger.Read(ledger, sim.Schema);
        var work = SoakLedger.Missing(done, from, last, chunk);
        long todo = work.Sum(w => (long)(w.To - w.From + 1));
        Console.WriteLine($"soak ({sim.Name}): seeds {from}..{last}: {seeds - todo:N0} already in {ledger}, {todo:N0} to run on {threads} worker(s)");

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
                    var range = new SoakRange(sim.Schema) { Run = run, Commit = commit, Threads = workers.Length, From = a };
                    var worker = Stopwatch.StartNew();
                    int seed = a;
                    for (; seed <= b && !Stopped(); seed++)
                    {
                        try
                        {
                            sim.RunSeed(range, seed);
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

        var all = SoakLedger.Read(ledger, sim.Schema);
        var report = Report(sim, all, from, last, ledger, ran, clock.Elapsed, workers.Length, stop.IsCancellationRequested ? "interrupted" : clock.Elapsed >= budget ? $"time budget ({minutes} min) spent" : null);
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

    private static string Report(Simulation sim, List<SoakRange> ledger, int from, int last, string ledgerPath, long ranNow, TimeSpan elapsedNow, int threadsNow, string? stoppedBy)
    {
        // Rows inside the asked range; a row overlapping one already counted (a range run twice) is left out of the sums.
        var rows = new List<SoakRange>();
        foreach (var r in ledger.Where(r => r.From >= from && r.To <= last).OrderBy(r => r.From))
            if (rows.Count == 0 || r.From > rows[^1].To) rows.Add(r);
        long covered = SoakLedger.DistinctSeeds(rows);
        long asked = (long)last - from + 1;
        var failures = rows.SelectMany(r => r.Failures).ToList();

        var md = new StringBuilder();
        string command = sim.Name == "faults" ? "bench/run soak" : $"bench/run soak --sim {sim.Name}";
        md.AppendLine($"# {sim.Title}");
        md.AppendLine();
        md.AppendLine($"`{command} [seeds] [--from N] [--minutes M] [--threads T]` runs, one worker per core,");
        foreach (var line in sim.Description) md.AppendLine(line);
        md.AppendLine($"Every finished range of seeds is a row of `{Path.GetFileName(ledgerPath)}` (with the commit it ran on and a digest of its traces);");
        md.AppendLine("a new run skips what the ledger holds, so an interrupted soak continues where it stopped. This report covers the union.");
        md.AppendLine($"A failing seed replays with `{sim.Replay(0).Replace("=0 ", "=N ", StringComparison.Ordinal)}`.");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine("- the machine is shared with other benchmarks; seeds/s is what this run got, not a speed claim");
        md.AppendLine();
        // One step is one simulated millisecond in every simulation.
        md.AppendLine("| seeds asked | seeds run | failed | simulated time | " + string.Join(" | ", sim.Totals.Select(t => t.Title)) + " |");
        md.AppendLine("|---|---|---|---|" + string.Concat(sim.Totals.Select(_ => "---|")));
        md.AppendLine($"| {asked:N0} ({from}..{last}) | {covered:N0} | {failures.Count} | {TimeSpan.FromMilliseconds(rows.Sum(r => r["steps"])):d\\.hh\\:mm\\:ss} | " +
            string.Join(" | ", sim.Totals.Select(t => rows.Sum(r => r[t.Column]).ToString("N0", CultureInfo.InvariantCulture))) + " |");
        md.AppendLine();
        if (covered < asked)
        {
            md.AppendLine($"**Not finished: {asked - covered:N0} of {asked:N0} seeds still to run.** Continue with:");
            md.AppendLine();
            md.AppendLine($"    nice -n 19 {command} {asked} --from {from}");
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
        foreach (var kind in sim.FaultColumns) md.AppendLine($"| {kind} | {rows.Sum(r => r[kind]):N0} |");
        md.AppendLine();
        md.AppendLine("## Failures");
        md.AppendLine();
        if (failures.Count == 0) md.AppendLine("None.");
        foreach (var f in failures)
        {
            int seed = int.Parse(f.AsSpan(0, f.IndexOf('@')), CultureInfo.InvariantCulture);
            md.AppendLine($"- seed {seed}, step {f[(f.IndexOf('@') + 1)..]}: `{sim.Replay(seed)}`");
        }
        return md.ToString();
    }
}
