using System.Diagnostics;
using GeoRelay.Bench.Harness;
using GeoRelay.Bench.Wan;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>
/// `bench/run cross-region [SCENARIO]`: GeoRelay (direct, relays without mux/compression, full) against a NATS
/// supercluster, each as real processes with the inter-region links through the WAN emulator, learners in this
/// process. Per system: a warm-up, one step per offered rate (lowest first, stopping at the first rate it cannot
/// sustain), then the fault phase. Writes bench/results/cross-region-SCENARIO.md and its PNG plots.
/// </summary>
public static partial class CrossRegionBenchmark
{
    public sealed record PhaseResult(Phase Phase, double PublishSeconds, long CrossingBytes, Dictionary<string, long> LinkBytes, bool Drained, double DrainSeconds)
    {
        public double AchievedRate => Phase.Count / PublishSeconds;
    }

    public sealed record SystemResult(string Name, string Description, Recorder Recorder, List<PhaseResult> Phases, PhaseResult? Fault,
        Dictionary<string, double> CpuSeconds, double BenchCpuSeconds, long? LeaderEgressBytes, long Entries, List<string> Events,
        double BenchGcPauseMillis = 0, int BenchGen2Collections = 0);

    public static async Task<int> RunAsync(string[] args)
    {
        string scenarioName = "default";
        string? outDir = null;
        bool quick = false, reverse = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--reverse": reverse = true; break; // the systems in the opposite order: alternate runs to cancel order effects
                case "--out-dir": outDir = Path.GetFullPath(args[++i]); break;
                case var a when !a.StartsWith('-'): scenarioName = a; break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; usage: bench/run cross-region [SCENARIO] [--quick] [--reverse] [--out-dir DIR]");
                    return 2;
            }
        }
        string root = Paths.RepositoryRoot();
        string scenarioPath = File.Exists(scenarioName) ? scenarioName : Path.Combine(root, "bench", "scenarios", scenarioName + ".yaml");
        Scenario scenario;
        try
        {
            scenario = Scenario.Load(scenarioPath);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
        if (quick)
        {
            scenario.StepSeconds = Math.Min(scenario.StepSeconds, 3);
            scenario.LearnersPerRegion = Math.Min(scenario.LearnersPerRegion, 10);
            if (scenario.Fault is { } f) f.Seconds = Math.Min(f.Seconds, 14);
        }
        if (reverse) scenario.Systems.Reverse();
        outDir ??= Path.Combine(root, "bench", "results");
        Directory.CreateDirectory(outDir);
        DebianPackages.Require(Nats.NatsServerProcess.Binary, "nats-server");
        string gnuplot = DebianPackages.Require("/usr/bin/gnuplot", "gnuplot-nox");

        var clock = Stopwatch.StartNew();
        var corpus = new Corpus(scenario.Payload.Corpus, scenario.Payload.MaxBytes);
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] scenario {scenario.Name}: {corpus.Description}");
        var emulator = await WanOverheadBenchmark.MeasureAsync(1000);
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] emulator overhead measured");

        var results = new List<SystemResult>();
        foreach (var system in scenario.Systems)
        {
            var result = await RunSystemAsync(system, scenario, corpus, clock);
            results.Add(result);
        }

        string baseName = $"cross-region-{scenario.Name}";
        var plots = Plots.Draw(gnuplot, outDir, baseName, scenario, results);
        string report = Report.Write(scenario, scenarioPath, corpus, emulator, results, plots, clock.Elapsed);
        string output = Path.Combine(outDir, baseName + ".md");
        File.WriteAllText(output, report);
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] wrote {output}");
        return 0;
    }

    private static async Task<SystemResult> RunSystemAsync(string name, Scenario scenario, Corpus corpus, Stopwatch clock)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var ct = timeout.Token;
        var regions = scenario.Regions.Keys.ToArray();
        await using var mesh = new WanMesh(scenario);
        ISystemUnderTest system = name == "nats" ? new NatsSystem(scenario, mesh) : new GeoRelaySystem(name, scenario, mesh);
        var events = new List<string>();
        await using (system)
        {
            await system.StartAsync(ct);
            var recorder = new Recorder(regions);
            await system.StartLearnersAsync(recorder, ct);
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name}: started, {scenario.LearnersPerRegion * regions.Length} learners subscribed");
            var cpuBefore = system.Processes.ToDictionary(p => p.Key, p => ProcessCpu.Seconds(p.Value));
            double benchBefore = ProcessCpu.Seconds(Environment.ProcessId);

            var planned = scenario.Rates.Select(rate => (long)(rate * scenario.StepSeconds)).ToList();
            if (scenario.Fault is { } plannedFault) planned.Add((long)(plannedFault.Rate * plannedFault.Seconds));
            recorder.Reserve(planned, fromLeader: system is GeoRelaySystem);

            long seq = 1;
            long warmupCount = (long)(scenario.Warmup.Rate * scenario.Warmup.Seconds);
            await PublishAtRateAsync(system, corpus, seq, scenario.Warmup.Rate, warmupCount);
            seq += warmupCount;
            await DrainAsync(recorder, seq - 1, scenario.DrainSeconds * 2);
            // Every system starts its measured steps from a compacted heap: what the warm-up (or the system before)
            // left is not collected in the middle of a step.
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            var gcPauseBefore = GC.GetTotalPauseDuration();
            int gen2Before = GC.CollectionCount(2);

            var phases = new List<PhaseResult>();
            foreach (int rate in scenario.Rates)
            {
                var phase = new Phase($"{rate}/s", rate, seq, seq + (long)(rate * scenario.StepSeconds) - 1);
                var result = await RunPhaseAsync(system, mesh, recorder, corpus, phase, scenario.DrainSeconds, timeline: false, ct);
                seq = phase.LastSeq + 1;
                phases.Add(result);
                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name}: {Describe(name, result, recorder, phases.Count - 1, regions, scenario)}");
                if (!result.Drained)
                {
                    events.Add($"stopped the sweep after {rate}/s: not everything was delivered within {scenario.DrainSeconds} s of the step's end");
                    break;
                }
            }

            PhaseResult? fault = null;
            if (scenario.Fault is { } f)
            {
                // A step that did not drain in its window may still be delivering: the fault phase starts only once
                // every learner has everything, so its stalls measure the failover, not a backlog.
                var settle = Stopwatch.StartNew();
                bool settled = await DrainAsync(recorder, seq - 1, FaultSettleSeconds);
                events.Add(settled
                    ? $"the fault phase started once every learner had all {seq - 1:N0} entries ({settle.Elapsed.TotalSeconds:F1} s after the last step's drain window)"
                    : $"the fault phase started with learners still behind after {FaultSettleSeconds} s of waiting: its stalls include that backlog");
                var phase = new Phase("fault", f.Rate, seq, seq + (long)(f.Rate * f.Seconds) - 1);
                var faults = new List<Task>();
                var start = Stopwatch.GetTimestamp();
                if (f.KillRelay is { } kill)
                    faults.Add(Task.Run(async () =>
                    {
                        await Task.Delay(TimeSpan.FromSeconds(kill.AtSeconds));
                        bool killed = system.KillRelay(kill.Region);
                        lock (events) events.Add(killed
                            ? $"t={Stopwatch.GetElapsedTime(start).TotalSeconds:F2} s: SIGKILL {kill.Region}'s first relay"
                            : $"kill-relay {kill.Region}: not applicable (no relay carries traffic in this system)");
                    }));
                if (f.CutLink is { } cut)
                    faults.Add(Task.Run(async () =>
                    {
                        await Task.Delay(TimeSpan.FromSeconds(cut.AtSeconds));
                        var link = mesh.Link(cut.Between[0], cut.Between[1]);
                        if (link is null)
                        {
                            lock (events) events.Add($"cut-link {cut.Between[0]}-{cut.Between[1]}: no connection uses this link in this system");
                            return;
                        }
                        link.Cut(GeoRelay.Wan.WanCutMode.Blackhole);
                        lock (events) events.Add($"t={Stopwatch.GetElapsedTime(start).TotalSeconds:F2} s: cut {link.Name} (blackhole)");
                        await Task.Delay(TimeSpan.FromSeconds(cut.Seconds));
                        link.Heal();
                        lock (events) events.Add($"t={Stopwatch.GetElapsedTime(start).TotalSeconds:F2} s: healed {link.Name}");
                    }));
                fault = await RunPhaseAsync(system, mesh, recorder, corpus, phase, scenario.DrainSeconds * 2, timeline: true, ct);
                await Task.WhenAll(faults);
                seq = phase.LastSeq + 1;
                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name}: {Describe(name, fault, recorder, phases.Count, regions, scenario)}");
            }

            var cpu = system.Processes.ToDictionary(p => p.Key, p => ProcessCpu.Seconds(p.Value) - cpuBefore[p.Key]);
            double benchCpu = ProcessCpu.Seconds(Environment.ProcessId) - benchBefore;
            long? egress = await system.StopAndReadLeaderEgressAsync();
            if (system is NatsSystem nats && nats.ClosedSubscribers > 0)
                events.Add($"{nats.ClosedSubscribers} subscriber connections were closed by the servers during the run");
            recorder.Seal(); // merged once, per-learner samples freed before the next system runs
            double gcPause = (GC.GetTotalPauseDuration() - gcPauseBefore).TotalMilliseconds;
            int gen2 = GC.CollectionCount(2) - gen2Before;
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name}: bench process GC pauses after the warm-up {gcPause:F0} ms, {gen2} gen-2 collections");
            return new SystemResult(name, system.Description, recorder, phases, fault, cpu, benchCpu, egress, seq - 1, events, gcPause, gen2);
        }
    }

    /// <summary>Longest wait for an undrained step's backlog before the fault phase starts anyway.</summary>
    private const double FaultSettleSeconds = 120;

    private static string Describe(string system, PhaseResult r, Recorder recorder, int phaseIndex, string[] regions, Scenario scenario)
    {
        var parts = new List<string>();
        for (int i = 0; i < regions.Length; i++)
        {
            var cell = recorder.CellOf(phaseIndex, i);
            double floor = scenario.FloorMs(regions[i], system);
            string split = cell.FromLeader.TotalCount > 0 ? $" (leader to learner p50 {cell.FromLeader.Quantile(0.5) / 1000 - floor:F1} / p99 {cell.FromLeader.Quantile(0.99) / 1000 - floor:F1})" : "";
            parts.Add($"{regions[i]} p50-floor {cell.Latency.Quantile(0.5) / 1000 - floor:F1} p99-floor {cell.Latency.Quantile(0.99) / 1000 - floor:F1} ms{split}");
        }
        return $"{r.Phase.Name,-8} achieved {r.AchievedRate:F0}/s, {r.CrossingBytes / (double)r.Phase.Count:F1} B/entry across regions, drained={r.Drained}; " + string.Join(", ", parts);
    }

    private static async Task<PhaseResult> RunPhaseAsync(ISystemUnderTest system, WanMesh mesh, Recorder recorder, Corpus corpus, Phase phase,
        double drainSeconds, bool timeline, CancellationToken ct)
    {
        recorder.AddPhase(phase, timeline);
        long bytesBefore = mesh.CrossingBytes;
        var linksBefore = mesh.Links.ToDictionary(l => l.Name, l => l.Counters.TotalBytes);
        double publishSeconds = await PublishAtRateAsync(system, corpus, phase.FirstSeq, phase.Rate, phase.Count);
        var drain = Stopwatch.StartNew();
        bool drained = await DrainAsync(recorder, phase.LastSeq, drainSeconds);
        ct.ThrowIfCancellationRequested();
        var links = mesh.Links.ToDictionary(l => l.Name, l => l.Counters.TotalBytes - linksBefore.GetValueOrDefault(l.Name));
        return new PhaseResult(phase, publishSeconds, mesh.CrossingBytes - bytesBefore, links, drained, drain.Elapsed.TotalSeconds);
    }

    /// <summary>Publishes <paramref name="count"/> entries at <paramref name="rate"/> per second, in whatever is due each millisecond; returns the seconds it took.</summary>
    private static async Task<double> PublishAtRateAsync(ISystemUnderTest system, Corpus corpus, long firstSeq, int rate, long count)
    {
        var clock = Stopwatch.StartNew();
        var batch = new List<byte[]>();
        long sent = 0;
        while (sent < count)
        {
            long due = Math.Min(count, (long)(clock.Elapsed.TotalSeconds * rate) + 1);
            if (due <= sent)
            {
                await Task.Delay(1); // pacing the offered load, not synchronisation
                continue;
            }
            batch.Clear();
            for (; sent < due && batch.Count < 4096; sent++) batch.Add(corpus.Payload(firstSeq + sent));
            await system.PublishAsync(batch);
        }
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Waits until every learner has seen <paramref name="lastSeq"/> (or skipped past it), at most <paramref name="seconds"/>.</summary>
    private static async Task<bool> DrainAsync(Recorder recorder, long lastSeq, double seconds)
    {
        var clock = Stopwatch.StartNew();
        while (recorder.MinNextSeq() <= lastSeq)
        {
            if (clock.Elapsed.TotalSeconds > seconds) return false;
            await Task.Delay(20);
        }
        return true;
    }
}
