using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Bench.Wan;
using HdrHistogram;
using static GeoRelay.Bench.CrossRegion.CrossRegionBenchmark;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>The markdown report of a cross-region run.</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The largest, over regions, of the <paramref name="q"/> latency minus that region's floor, ms.</summary>
    public static double WorstOverhead(SystemResult r, int phase, double q, Scenario scenario)
    {
        var regions = scenario.Regions.Keys.ToArray();
        double worst = double.MinValue;
        for (int g = 0; g < regions.Length; g++)
        {
            var latency = r.Recorder.CellOf(phase, g).Latency;
            if (latency.TotalCount == 0) return double.PositiveInfinity; // nothing arrived in that region
            worst = Math.Max(worst, latency.Quantile(q) / 1000 - scenario.FloorMs(regions[g], r.Name));
        }
        return worst;
    }

    public static (long Lost, long Duplicates) LostAndDuplicated(SystemResult r, int phase, int region)
    {
        var cell = r.Recorder.CellOf(phase, region);
        var p = r.Recorder.Phases[phase];
        return (p.Count * r.Recorder.LearnersIn(region) - cell.Unique, cell.Duplicates);
    }

    public static bool Sustained(SystemResult r, int phaseIndex, Scenario scenario)
    {
        var p = r.Phases[phaseIndex];
        if (!p.Drained || p.AchievedRate < 0.95 * p.Phase.Rate) return false;
        for (int g = 0; g < scenario.Regions.Count; g++)
            if (LostAndDuplicated(r, phaseIndex, g).Lost != 0) return false;
        return true;
    }

    public static string Write(Scenario scenario, string scenarioPath, Corpus corpus, WanOverheadBenchmark.Result emulator, List<SystemResult> results,
        List<(string Title, string File)> plots, TimeSpan elapsed)
    {
        var regions = scenario.Regions.Keys.ToArray();
        var md = new StringBuilder();
        md.AppendLine(Inv, $"# Cross-region latency: GeoRelay against direct fan-out and a NATS supercluster (`bench/run cross-region {scenario.Name}`)");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine(Inv, $"- run time: {elapsed.TotalMinutes:F1} min; scenario file: `{Path.GetRelativePath(Paths.RepositoryRoot(), scenarioPath)}`");
        md.AppendLine();
        md.AppendLine("Every figure below was measured in this one run, the systems one after another on the same machine with the same");
        md.AppendLine("emulated links, learners and payloads. The machine is a shared 2-core VM under heavy load from other jobs (see the");
        md.AppendLine("load average): absolute latencies carry that noise; compare the systems side by side.");
        md.AppendLine();

        md.AppendLine("## Setup");
        md.AppendLine();
        md.AppendLine(Inv, $"- Regions: {string.Join(", ", scenario.Regions.Select(r => $"{r.Key} ({r.Value.Members} members{(r.Value.Relays > 0 && r.Key != scenario.LeaderRegion ? $", {r.Value.Relays} relays" : "")})"))}; leader and publisher in {scenario.LeaderRegion}.");
        string linkList = string.Join("; ", scenario.Links.Select(l => $"{l.Between[0]}–{l.Between[1]} {l.DelayMs} ms{(l.JitterMs > 0 ? $" + jitter ≤ {l.JitterMs} ms" : "")}{(l.BandwidthMbps > 0 ? $", {l.BandwidthMbps} MB/s" : ", no bandwidth cap")}"));
        md.AppendLine(Inv, $"- Links (one way, symmetric): {linkList}. Each is one user-space WAN link (wan/) that every cross-region connection of a system goes through.");
        md.AppendLine(Inv, $"- In-region delay {scenario.IntraRegionDelayMs} ms is not emulated: in-region hops are plain loopback, so the floor below counts the inter-region delay only and the in-region hop shows up as overhead.");
        md.AppendLine(Inv, $"- Learners: {scenario.LearnersPerRegion} per region, all in the bench process (GeoRelay: `LearnerClient` SDK with `ReuseBuffers`, each entry's memory valid until the next one; NATS: one connection and subscription each, NATS.Net with pooled raw payloads, each released once read).");
        md.AppendLine(Inv, $"- Payloads: {corpus.Description}.");
        md.AppendLine(Inv, $"- Load: warm-up {scenario.Warmup.Rate}/s for {scenario.Warmup.Seconds} s (not measured), then {string.Join(", ", scenario.Rates)} entries/s for {scenario.StepSeconds} s each, lowest first; a step ends when every learner has everything (at most {scenario.DrainSeconds} s after the last publish), and a system's sweep stops at the first step it does not drain.");
        if (scenario.Fault is { } fault)
            md.AppendLine(Inv, $"- Fault phase, started once every learner has every entry of the steps before: {fault.Rate}/s for {fault.Seconds} s; {(fault.KillRelay is { } k ? $"SIGKILL of {k.Region}'s first relay at {k.AtSeconds} s" : "")}{(fault.CutLink is { } c ? $"; blackhole of the {c.Between[0]}–{c.Between[1]} link at {c.AtSeconds} s for {c.Seconds} s" : "")}.");
        md.AppendLine("- Latency is publish to learner: the publisher stamps each payload with a monotonic clock just before handing it to its client; the learner reads the clock when the SDK (or NATS client) hands the entry over. *Floor* is, for learners given durable entries (NATS, georelay-durable), the one-way delay from the leader's region to the learner's region (0 in the leader's region); for learners given committed entries (every other GeoRelay system), the earliest moment that region could know a majority of the members holds the entry (the majority-th earliest of: leader to member's region, plus member's region to the learner's); *overhead* = latency − floor.");
        md.AppendLine("- Floors per region (ms), one-way / committed: " + string.Join(", ", scenario.Regions.Keys.Select(g => string.Create(Inv, $"{g} {scenario.DelayMs(scenario.LeaderRegion, g):F0} / {scenario.CommittedFloorMs(g):F0}"))) + ".");
        md.AppendLine(Inv, $"- GeoRelay's settings: `batch: {{ max-bytes: 1MiB{(scenario.GeorelayLingerMs > 0 ? $", linger: {scenario.GeorelayLingerMs}ms" : "")} }}` ({(scenario.GeorelayLingerMs > 0 ? "a linger" : "natural batching, no linger")}), `fsync: false` (core NATS keeps messages in memory only), `failover-after` and `heartbeat` at their defaults (500 ms, 100 ms).");
        md.AppendLine("- Systems:");
        foreach (var r in results) md.AppendLine(Inv, $"  - **{r.Name}**: {r.Description}.");
        md.AppendLine();

        md.AppendLine("## WAN emulator overhead");
        md.AppendLine();
        md.Append(WanOverheadBenchmark.Table(emulator));

        md.AppendLine("## Targets");
        md.AppendLine();
        md.Append(Targets(scenario, results, corpus, emulator));
        md.AppendLine();

        md.AppendLine("## Latency per system, rate and region (ms)");
        md.AppendLine();
        md.AppendLine("*delivered* counts (entry, learner) pairs received before the system was stopped (after its last phase and drain window;");
        md.AppendLine("a step that did not drain in time still counts what arrived later); *lost* is the rest — for core NATS a dropped message,");
        md.AppendLine("for GeoRelay's gap-free streams an entry still undelivered when the system was stopped;");
        md.AppendLine("*dup* counts entries a learner received twice.");
        md.AppendLine();
        md.AppendLine("| system | offered/s | achieved/s | region | floor | p50 | p99 | p99.9 | max | p50−floor | p99−floor | p99.9−floor | delivered | lost | dup |");
        md.AppendLine("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var all = r.Phases.Concat(r.Fault is null ? [] : [r.Fault]).ToList();
            for (int i = 0; i < all.Count; i++)
            {
                var p = all[i];
                for (int g = 0; g < regions.Length; g++)
                {
                    var h = r.Recorder.CellOf(i, g).Latency;
                    double floor = scenario.FloorMs(regions[g], r.Name);
                    var (lost, dup) = LostAndDuplicated(r, i, g);
                    long expected = p.Phase.Count * r.Recorder.LearnersIn(g);
                    if (h.TotalCount == 0)
                    {
                        md.AppendLine(Inv, $"| {r.Name} | {(p.Phase.Name == "fault" ? "fault " : "")}{p.Phase.Rate} | {p.AchievedRate:F0} | {regions[g]} | {floor:F0} | – | – | – | – | – | – | – | 0/{expected:N0} | {lost:N0} | {dup:N0} |");
                        continue;
                    }
                    md.AppendLine(Inv, $"| {r.Name} | {(p.Phase.Name == "fault" ? "fault " : "")}{p.Phase.Rate} | {p.AchievedRate:F0} | {regions[g]} | {floor:F0} | {Ms(h.Quantile(0.5))} | {Ms(h.Quantile(0.99))} | {Ms(h.Quantile(0.999))} | {Ms(h.GetMaxValue())} | {Ms(h.Quantile(0.5) - floor * 1000)} | {Ms(h.Quantile(0.99) - floor * 1000)} | {Ms(h.Quantile(0.999) - floor * 1000)} | {h.TotalCount:N0}/{expected:N0} | {lost:N0} | {dup:N0} |");
                }
            }
        }
        md.AppendLine();

        md.Append(Split(scenario, results, regions));

        md.AppendLine("## Load curve: worst region's p99 overhead (ms) against offered rate");
        md.AppendLine();
        md.AppendLine("| offered/s | " + string.Join(" | ", results.Select(r => r.Name)) + " |");
        md.AppendLine("|---:|" + string.Concat(results.Select(_ => "---:|")));
        foreach (int rate in scenario.Rates)
        {
            var cells = results.Select(r =>
            {
                int i = r.Phases.FindIndex(p => p.Phase.Rate == rate);
                if (i < 0) return "not run";
                return $"{WorstOverhead(r, i, 0.99, scenario):F1}{(Sustained(r, i, scenario) ? "" : " (not sustained)")}";
            });
            md.AppendLine(Inv, $"| {rate} | {string.Join(" | ", cells)} |");
        }
        md.AppendLine();
        md.AppendLine("*Sustained*: the publisher reached at least 95 % of the offered rate, every learner had every entry within the drain time, nothing lost.");
        md.AppendLine();

        md.AppendLine("## Bytes crossing region boundaries per entry (WAN link counters, both directions)");
        md.AppendLine();
        md.AppendLine("| system | offered/s | bytes/entry across regions | per link | × NATS | × direct |");
        md.AppendLine("|---|---:|---:|---|---:|---:|");
        foreach (var r in results)
        {
            foreach (var p in r.Phases.Concat(r.Fault is null ? [] : [r.Fault]))
            {
                double perEntry = p.CrossingBytes / (double)p.Phase.Count;
                string links = string.Join(", ", p.LinkBytes.Select(l => $"{l.Key} {l.Value / (double)p.Phase.Count:F1}"));
                md.AppendLine(Inv, $"| {r.Name} | {(p.Phase.Name == "fault" ? "fault " : "")}{p.Phase.Rate} | {perEntry:F1} | {links} | {Ratio(results, "nats", p, perEntry)} | {Ratio(results, "direct", p, perEntry)} |");
            }
        }
        md.AppendLine();

        md.AppendLine("## Leader egress and CPU");
        md.AppendLine();
        md.AppendLine("| system | entries | leader egress bytes/entry | CPU s: leader-side | CPU s: all daemons | CPU s: bench process (learners, links, publisher) |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            string leaderKey = r.Name == "nats" ? $"{scenario.LeaderRegion}-nats" : $"{scenario.LeaderRegion}-leader";
            md.AppendLine(Inv, $"| {r.Name} | {r.Entries:N0} | {(r.LeaderEgressBytes is long e ? (e / (double)r.Entries).ToString("F1", Inv) : "n/a")} | {r.CpuSeconds.GetValueOrDefault(leaderKey):F1} | {r.CpuSeconds.Values.Where(v => !double.IsNaN(v)).Sum():F1} | {r.BenchCpuSeconds:F1} |");
        }
        md.AppendLine();
        md.AppendLine("Leader egress: GeoRelay's leader counts what it sent to every datacenter (its `Summary bytes_sent` lines, warm-up included); for NATS it is the `out_bytes` of the publisher's server (`/varz`), which includes what it sent to its own region's subscribers. In *direct* mode the per-learner streams leave from the leader region's members, not the leader, so they show in the bytes across regions but not in this column.");
        md.AppendLine();
        md.AppendLine("Garbage-collection pauses of the benchmark process (learners, links, publisher) after the warm-up: they stop every learner in it at once, so they add to that system's latencies: "
            + string.Join(", ", results.Select(r => string.Create(Inv, $"{r.Name} {r.BenchGcPauseMillis:F0} ms ({r.BenchGen2Collections} gen-2)"))) + ".");
        md.AppendLine();
        md.AppendLine("CPU seconds per process over the measured run (from /proc/PID/stat; a killed process counts until its death):");
        md.AppendLine();
        foreach (var r in results)
        {
            string cpu = string.Join(", ", r.CpuSeconds.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => double.IsNaN(c.Value) ? $"{c.Key} (killed)" : $"{c.Key} {c.Value:F1}"));
            md.AppendLine(Inv, $"- {r.Name}: {cpu}");
        }
        md.AppendLine();

        if (scenario.Fault is not null)
        {
            md.AppendLine("## Fault phase");
            md.AppendLine();
            md.AppendLine("| system | region | lost | dup | p99 | max | stall (max − floor) |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (var r in results.Where(r => r.Fault is not null))
            {
                int i = r.Phases.Count;
                for (int g = 0; g < regions.Length; g++)
                {
                    var h = r.Recorder.CellOf(i, g).Latency;
                    var (lost, dup) = LostAndDuplicated(r, i, g);
                    if (h.TotalCount == 0)
                    {
                        md.AppendLine(Inv, $"| {r.Name} | {regions[g]} | {lost:N0} | {dup:N0} | – | – | no delivery in the phase |");
                        continue;
                    }
                    md.AppendLine(Inv, $"| {r.Name} | {regions[g]} | {lost:N0} | {dup:N0} | {Ms(h.Quantile(0.99))} | {Ms(h.GetMaxValue())} | {Ms(h.GetMaxValue() - scenario.FloorMs(regions[g], r.Name) * 1000)} |");
                }
            }
            md.AppendLine();
            foreach (var r in results)
                if (r.Events.Count > 0)
                    md.AppendLine(Inv, $"- {r.Name}: {string.Join("; ", r.Events)}");
            md.AppendLine();
        }

        md.AppendLine("## Plots");
        md.AppendLine();
        foreach (var (title, file) in plots)
        {
            md.AppendLine(Inv, $"### {title}");
            md.AppendLine();
            md.AppendLine(Inv, $"![{title}]({file})");
            md.AppendLine();
        }
        return md.ToString();
    }

    private static string Ratio(List<SystemResult> results, string baseline, PhaseResult p, double perEntry)
    {
        var b = results.FirstOrDefault(r => r.Name == baseline);
        var bp = b?.Phases.FirstOrDefault(x => x.Phase.Rate == p.Phase.Rate && x.Phase.Name == p.Phase.Name)
                 ?? (p.Phase.Name == "fault" ? b?.Fault : null);
        if (bp is null || bp.CrossingBytes == 0) return "–";
        return (perEntry / (bp.CrossingBytes / (double)bp.Phase.Count)).ToString("F3", Inv);
    }

    private static string Targets(Scenario scenario, List<SystemResult> results, Corpus corpus, WanOverheadBenchmark.Result emulator)
    {
        var md = new StringBuilder();
        var geo = results.FirstOrDefault(r => r.Name == "georelay");
        var nats = results.FirstOrDefault(r => r.Name == "nats");
        var direct = results.FirstOrDefault(r => r.Name == "direct");
        if (geo is null)
        {
            md.AppendLine("The georelay system was not part of this run.");
            return md.ToString();
        }
        int at20k = geo.Phases.FindIndex(p => p.Phase.Rate == 20_000);
        md.AppendLine(at20k < 0
            ? "- p99 overhead ≤ 2 ms at 20,000 entries/s: **not met** — georelay did not run the 20,000/s step (its sweep stopped earlier, or the scenario has no such rate)."
            : string.Create(Inv, $"- p99 overhead ≤ 2 ms at 20,000 entries/s: worst region {WorstOverhead(geo, at20k, 0.99, scenario):F2} ms{(Sustained(geo, at20k, scenario) ? "" : " (not sustained)")} → **{(WorstOverhead(geo, at20k, 0.99, scenario) <= 2 && Sustained(geo, at20k, scenario) ? "met" : "not met")}**."));
        // Whatever the system, every learner must receive every entry: on one machine that is loopback traffic.
        int learners = scenario.LearnersPerRegion * scenario.Regions.Count;
        double perEntry = corpus.MeanRecordBytes + Corpus.HeaderBytes;
        double needed = 20_000 * learners * perEntry / 1e6;
        md.AppendLine(Inv, $"  - What 20,000/s asks of this machine: {learners} learners × {perEntry:F0} B payload each entry = {needed:F0} MB/s of payload into learners over loopback (before any framing), every learner in one process; one bulk loopback TCP stream measured {emulator.DirectMBps:F0} MB/s at the start of this run (the emulator table above), with the whole machine to itself.");
        if (nats is not null)
        {
            var both = new List<string>();
            bool ok = true;
            for (int i = 0; i < geo.Phases.Count; i++)
            {
                int j = nats.Phases.FindIndex(p => p.Phase.Rate == geo.Phases[i].Phase.Rate);
                if (j < 0 || !Sustained(geo, i, scenario) || !Sustained(nats, j, scenario)) continue;
                double g = WorstOverhead(geo, i, 0.99, scenario), n = WorstOverhead(nats, j, 0.99, scenario);
                ok &= g <= n;
                both.Add(string.Create(Inv, $"{geo.Phases[i].Phase.Rate}/s: {g:F2} vs {n:F2} ms"));
            }
            md.AppendLine(both.Count == 0
                ? "- p99 overhead no higher than NATS at every rate both sustain: no rate was sustained by both."
                : $"- p99 overhead (worst region) no higher than NATS at every rate both sustain — georelay vs NATS: {string.Join("; ", both)} → **{(ok ? "met" : "not met")}**.");
        }
        md.Append(LatencyAtEveryRateTargets(scenario, results, nats));
        foreach (var (baseline, limit) in new[] { (nats, 0.35), (direct, 0.01) })
        {
            if (baseline is null) continue;
            var ratios = new List<string>();
            var skipped = new List<string>();
            bool ok = true;
            foreach (var p in geo.Phases)
            {
                var b = baseline.Phases.FirstOrDefault(x => x.Phase.Rate == p.Phase.Rate);
                if (b is null || b.CrossingBytes == 0) continue;
                // Link bytes are counted until the step has drained; one that did not drain sent only part of its stream.
                if (!p.Drained || !b.Drained)
                {
                    skipped.Add(string.Create(Inv, $"{p.Phase.Rate}/s ({(!b.Drained ? baseline.Name : geo.Name)} did not deliver everything within the drain time, so its bytes per entry are incomplete)"));
                    continue;
                }
                double ratio = (p.CrossingBytes / (double)p.Phase.Count) / (b.CrossingBytes / (double)b.Phase.Count);
                ok &= ratio <= limit;
                ratios.Add(string.Create(Inv, $"{p.Phase.Rate}/s: {ratio:F3}"));
            }
            if (ratios.Count > 0)
                md.AppendLine($"- Bytes across regions per entry ≤ {limit.ToString(Inv)}× {baseline.Name}: {string.Join("; ", ratios)} → **{(ok ? "met" : "not met")}**{(skipped.Count > 0 ? "; not compared at " + string.Join(", ", skipped) : "")}.");
        }
        long lost = 0, dup = 0;
        int phases = geo.Phases.Count + (geo.Fault is null ? 0 : 1);
        for (int i = 0; i < phases; i++)
            for (int g = 0; g < scenario.Regions.Count; g++)
            {
                var (l, d) = LostAndDuplicated(geo, i, g);
                lost += l;
                dup += d;
            }
        md.AppendLine(Inv, $"- Zero lost or duplicated for georelay, fault phase included: {lost:N0} lost, {dup:N0} duplicated → **{(lost == 0 && dup == 0 ? "met" : "not met")}**.");
        return md.ToString();
    }

    /// <summary>
    /// Issue #21's targets, for each delivery mode run: p50 overhead at most 1 ms in every region at 1,000/s; p50 and
    /// worst-region p99 overhead no higher than NATS's at 1,000/s and 5,000/s.
    /// </summary>
    private static string LatencyAtEveryRateTargets(Scenario scenario, List<SystemResult> results, SystemResult? nats)
    {
        var md = new StringBuilder();
        foreach (var geo in results.Where(r => r.Name is "georelay" or "georelay-durable"))
        {
            string mode = geo.Name == "georelay" ? "committed delivery" : "durable delivery";
            int at1k = geo.Phases.FindIndex(p => p.Phase.Rate == 1_000);
            if (at1k >= 0)
            {
                double p50 = WorstOverhead(geo, at1k, 0.5, scenario);
                md.AppendLine(string.Create(Inv, $"- {geo.Name} ({mode}): p50 overhead ≤ 1 ms at 1,000/s in every region: worst region {p50:F2} ms → **{(p50 <= 1 ? "met" : "not met")}**."));
            }
            if (nats is null) continue;
            foreach (int rate in new[] { 1_000, 5_000 })
            {
                int i = geo.Phases.FindIndex(p => p.Phase.Rate == rate), j = nats.Phases.FindIndex(p => p.Phase.Rate == rate);
                if (i < 0 || j < 0) continue;
                double g50 = WorstOverhead(geo, i, 0.5, scenario), n50 = WorstOverhead(nats, j, 0.5, scenario);
                double g99 = WorstOverhead(geo, i, 0.99, scenario), n99 = WorstOverhead(nats, j, 0.99, scenario);
                bool met = g50 <= n50 && g99 <= n99 && Sustained(geo, i, scenario);
                md.AppendLine(string.Create(Inv, $"- {geo.Name} ({mode}) against NATS at {rate:N0}/s, overhead of the worst region: p50 {g50:F2} vs {n50:F2} ms, p99 {g99:F2} vs {n99:F2} ms → **{(met ? "met" : "not met")}**."));
            }
        }
        return md.ToString();
    }

    /// <summary>GeoRelay's path cut at the leader's append (the entry's own timestamp): publish to append, append to learner.</summary>
    private static string Split(Scenario scenario, List<SystemResult> results, string[] regions)
    {
        var md = new StringBuilder();
        md.AppendLine("## Where GeoRelay's time goes: publish → leader append → learner (ms, overhead above the floor)");
        md.AppendLine();
        md.AppendLine("Each entry carries the leader's wall-clock time of its append; *append → learner* is the learner's wall clock minus it, minus the floor");
        md.AppendLine("(same machine, same clock); *publish → append* is the rest of the total (the publisher's client, the publish connection, the leader's read loop).");
        md.AppendLine();
        md.AppendLine("| system | offered/s | region | total p50 | append → learner p50 | publish → append p50 | total p99 | append → learner p99 |");
        md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var all = r.Phases.Concat(r.Fault is null ? [] : [r.Fault]).ToList();
            for (int i = 0; i < all.Count; i++)
                for (int g = 0; g < regions.Length; g++)
                {
                    var cell = r.Recorder.CellOf(i, g);
                    if (cell.FromLeader.TotalCount == 0) continue;
                    double floor = scenario.FloorMs(regions[g], r.Name) * 1000;
                    double total50 = cell.Latency.Quantile(0.5) - floor, leg50 = cell.FromLeader.Quantile(0.5) - floor;
                    md.AppendLine(Inv, $"| {r.Name} | {(all[i].Phase.Name == "fault" ? "fault " : "")}{all[i].Phase.Rate} | {regions[g]} | {Ms(total50)} | {Ms(leg50)} | {Ms(total50 - leg50)} | {Ms(cell.Latency.Quantile(0.99) - floor)} | {Ms(cell.FromLeader.Quantile(0.99) - floor)} |");
                }
        }
        md.AppendLine();
        return md.ToString();
    }

    private static string Ms(double micros) => (micros / 1000).ToString(Math.Abs(micros) < 10_000 ? "F2" : "F1", Inv);
}
