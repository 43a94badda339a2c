using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;

namespace GeoRelay.Bench.Failover;

/// <summary>bench/results/failover.md: every round of both systems, the targets, and what the processes logged.</summary>
public static class FailoverReport
{
    public static string Table(FailoverSettings settings, List<RoundResult> results)
    {
        var t = new StringBuilder();
        t.Append("| round | system | unavailable (ms) | ");
        foreach (var region in settings.Regions) t.Append(CultureInfo.InvariantCulture, $"longest stall {region} (ms) | ");
        t.AppendLine("acked / published | acked lost | stored twice | redelivered | retries (unknown outcome) |");
        t.Append("| ---: | --- | ---: | ");
        foreach (var _ in settings.Regions) t.Append("---: | ");
        t.AppendLine("---: | ---: | ---: | ---: | ---: |");
        foreach (var r in results)
        {
            t.Append(CultureInfo.InvariantCulture, $"| {r.Round} | {r.System} | {Ms(r.UnavailableMs)} | ");
            for (int i = 0; i < settings.Regions.Length; i++) t.Append(CultureInfo.InvariantCulture, $"{r.StallMs[i]:F0} (from {Math.Round(r.StallStartMs[i]):+0;-0;+0}) | ");
            t.AppendLine(CultureInfo.InvariantCulture, $"{r.Acked:N0} / {r.Published:N0} | {r.Lost} | {r.DoubleAppended} | {r.Redelivered} | {r.Retries} ({r.UnknownOutcomeRetries}) |");
        }
        return t.ToString();
    }

    private static string Ms(double ms) => double.IsNaN(ms) ? "none" : ms.ToString("F0", CultureInfo.InvariantCulture);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string Write(FailoverSettings settings, List<RoundResult> results, TimeSpan took, string arguments)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# Failover: SIGKILL of the leader, GeoRelay (elections) vs NATS JetStream (R3)");
        md.AppendLine();
        md.AppendLine(inv, $"`bench/run failover{(arguments.Length > 0 ? " " + arguments : "")}` (issue #18); {settings.Rounds} rounds, took {took.TotalMinutes:F1} min. Each round runs both systems from scratch, one after the other, alternating which goes first.");
        md.AppendLine();
        md.AppendLine("## Setup");
        md.AppendLine();
        md.AppendLine($"- Regions {string.Join(", ", settings.Regions)}; WAN emulator links (one-way delay, no jitter, no bandwidth limit): " +
            string.Join(", ", settings.Links.Select(l => $"{l.A}–{l.B} {l.DelayMs:0} ms (RTT {2 * l.DelayMs:0} ms)")) + ". JetStream has one server per region; GeoRelay has one member per region plus the preferred leader in the first region; every connection between regions goes through a link.");
        md.AppendLine(inv, $"- Publisher in {settings.Regions[0]} (the leader's region): {settings.Rate:N0} publishes/s, one entry (256 B) each, waiting for *committed* (a quorum, so a WAN round trip); {settings.WarmupSeconds:0.#} s of publishing, then SIGKILL of the process that leads, then {settings.AfterKillSeconds:0.#} s more; publishes that fail or time out are retried until acknowledged. One subscriber per region, connected to its region's server first and to the others (through the links) when that one is gone.");
        foreach (var system in settings.Systems)
            md.AppendLine(inv, $"- **{system}**: {(system == "georelay" ? GeoRelayDescription(settings) : JetStreamDescription())}");
        md.AppendLine("- **unavailable**: from the SIGKILL to the first acknowledgement of a publish attempt sent after it (so sent to, and committed by, the new leader). " +
            "**longest stall**: the longest gap between consecutive deliveries to the region's subscriber that ends after 1 s before the kill and begins before publishing ended, and where it began relative to the kill. " +
            "**acked lost**: acknowledged entries some region's subscriber never got (checked up to 20 s after publishing ended). " +
            "**stored twice**: application sequence numbers delivered at two different log indexes / stream sequences (a double append). " +
            "**redelivered**: the same index / stream sequence delivered again (the subscriber's duplicate, not the log's). " +
            "**retries**: publish attempts that failed and were sent again; *unknown outcome* ones had reached the connection, so the entry may have been appended already.");
        md.AppendLine();
        md.AppendLine("### The floor (physics)");
        md.AppendLine();
        double t = settings.ElectionTimeoutSeconds * 1000;
        string home = settings.Regions[0];
        var others = settings.Regions.Skip(1).ToArray();
        double Rtt(string a, string b) => a == b ? 0 : 2 * settings.DelayMs(a, b);
        // Each surviving voter as the new leader: its farthest other survivor (votes and commits need all three survivors),
        // and the publisher's round trip to it.
        var cases = settings.Regions.Select(r => (Region: r, Farthest: settings.Regions.Max(o => Rtt(r, o)), Publisher: Rtt(home, r))).ToList();
        // The survivors campaign in file order (the preferred leader first, then members): the first survivor asks first.
        var rank0 = cases[0];
        md.AppendLine($"GeoRelay: the SIGKILL closes the leader's connections, so the followers do not wait out the election timeout (T = {t:0} ms, which only a silent leader costs): " +
            $"each survivor campaigns {t / 4:0} ms × its rank after the first (the first survivor in file order, {home}-m1, at once, with up to {t / 16:0} ms of jitter). " +
            "With four voters a majority is three, so the candidate needs the votes of both other survivors: a pre-vote and a vote round trip to the farthest of them; " +
            "then the publisher, refused by the followers until one leads, connects to the new leader and its publish is committed once both other survivors hold it (one more round trip to the farthest). " +
            $"When {home}-m1 wins: 2×{rank0.Farthest:0} (election) + {2 * rank0.Publisher:0} (connect and publish) + {rank0.Farthest:0} (commit) = {3 * rank0.Farthest + 2 * rank0.Publisher:0} ms, plus the time the close takes to arrive and the jitter: " +
            $"the floor is about {3 * rank0.Farthest + 2 * rank0.Publisher:0} ms, well under the 2 s target. " +
            $"Were the leader silenced instead (no close), a follower would first wait T after the last heartbeat (every 100 ms), drawn in its rank's slice of [T, 2T): at least T + {3 * rank0.Farthest + 2 * rank0.Publisher:0} ms. " +
            "The simulation of the same protocol (`VoterFailoverTests`, 1,000 seeds of the three-region sample) gives the distribution for both (docs/consensus.md).");
        md.AppendLine();
        md.AppendLine("JetStream (nats-server 2.9) runs its own Raft timings, internal to the server (nothing in its configuration file sets them, as far as we found), so its figure is what a default JetStream cluster does; its stream leader's election shows in its servers' log lines below.");
        md.AppendLine();
        md.AppendLine("## Every round");
        md.AppendLine();
        md.Append(Table(settings, results));
        md.AppendLine();
        md.AppendLine("## Targets");
        md.AppendLine();
        var geo = results.Where(r => r.System == "georelay").ToList();
        var js = results.Where(r => r.System == "jetstream").ToList();
        if (geo.Count > 0)
        {
            int within = geo.Count(r => r.UnavailableMs <= FailoverSettings.TargetUnavailableMs);
            md.AppendLine(inv, $"- unavailability ≤ {FailoverSettings.TargetUnavailableMs:0} ms (election-timeout {settings.ElectionTimeoutSeconds:0.###} s): GeoRelay {within} of {geo.Count} rounds (median {Ms(Median(geo.Select(r => r.UnavailableMs)))} ms, worst {Ms(geo.Max(r => double.IsNaN(r.UnavailableMs) ? double.PositiveInfinity : r.UnavailableMs))} ms) — **{(within == geo.Count ? "met" : "missed")}**");
            foreach (var miss in geo.Where(r => !(r.UnavailableMs <= FailoverSettings.TargetUnavailableMs)))
            {
                var why = new List<string>();
                int lost = miss.Timeline.Count(l => l.Contains("election lost", StringComparison.Ordinal));
                if (lost > 0) why.Add($"{lost} election round(s) lost (split votes: two survivors campaigned at once, and with 4 voters a winner needs all 3 survivors)");
                var late = miss.Timeline.Where(l => l.Contains("Timers ran", StringComparison.Ordinal)).ToList();
                if (late.Count > 0) why.Add($"{late.Count} 'Timers ran … late' warnings from the voters (processes not running: CPU starved), so votes were answered hundreds of ms late");
                int terms = miss.Timeline.Count(l => l.Contains("BecameCandidate", StringComparison.Ordinal));
                if (terms > 1) why.Add($"{terms} candidacies before one won");
                if (why.Count == 0) why.Add("no split vote or late timer logged: the election timeouts drawn, plus the round trips of the floor above");
                why.Add(Breakdown(miss));
                md.AppendLine(inv, $"  - round {miss.Round} ({Ms(miss.UnavailableMs)} ms): {string.Join("; ", why)} (its log below)");
            }
            if (js.Count > 0)
            {
                int better = geo.Count(g => js.FirstOrDefault(j => j.Round == g.Round) is { } j && (g.UnavailableMs <= j.UnavailableMs || double.IsNaN(j.UnavailableMs)));
                md.AppendLine(inv, $"- no worse than JetStream's: GeoRelay was at most JetStream's in {better} of {geo.Count} rounds (JetStream median {Ms(Median(js.Select(r => r.UnavailableMs)))} ms) — **{(better == geo.Count ? "met" : "missed")}**");
            }
            md.AppendLine(inv, $"- 0 acknowledged entries lost: GeoRelay {geo.Sum(r => r.Lost)} in all rounds{(js.Count > 0 ? $", JetStream {js.Sum(r => r.Lost)}" : "")} — **{(geo.All(r => r.Lost == 0) ? "met" : "missed")}**");
            md.AppendLine($"- 0 duplicates: GeoRelay stored {geo.Sum(r => r.DoubleAppended)} entries twice and redelivered {geo.Sum(r => r.Redelivered)}{(js.Count > 0 ? $"; JetStream stored {js.Sum(r => r.DoubleAppended)} twice and redelivered {js.Sum(r => r.Redelivered)}" : "")} — **{(geo.All(r => r.DoubleAppended == 0 && r.Redelivered == 0) ? "met" : "missed")}**. " +
                "GeoRelay's publisher is the SDK's PublisherClient with every voter's address: it follows the leader by itself and sends what was not acknowledged again with the same producer sequences (exactly-once, the default), so the new leader answers a request it already holds with where it is. JetStream deduplicates a resend by its Msg-Id.");
        }
        md.AppendLine();
        md.AppendLine("## Clusters that never committed");
        md.AppendLine();
        if (FailoverBenchmark.StuckStarts.Count == 0)
        {
            md.AppendLine("Every cluster started acknowledged publishes during its warm-up.");
        }
        else
        {
            md.AppendLine(inv, $"{FailoverBenchmark.StuckStarts.Count} cluster start(s) acknowledged nothing during the whole warm-up; each was stopped and the round started again on a fresh cluster, so the table above measures failovers of working clusters only. What their processes logged at the start:");
            md.AppendLine();
            foreach (var stuck in FailoverBenchmark.StuckStarts)
            {
                md.AppendLine("```");
                md.AppendLine(stuck);
                md.AppendLine("```");
            }
        }
        md.AppendLine();
        md.AppendLine("## Events and logs, per round");
        md.AppendLine();
        md.AppendLine("Bench events (times relative to the SIGKILL), then the election-related lines the surviving processes logged (their own clocks, same machine).");
        md.AppendLine();
        foreach (var r in results)
        {
            md.AppendLine(inv, $"<details><summary>round {r.Round}, {r.System}: unavailable {Ms(r.UnavailableMs)} ms</summary>");
            md.AppendLine();
            md.AppendLine("```");
            foreach (var e in r.Events) md.AppendLine(e);
            if (r.LostSample.Count > 0) md.AppendLine("lost (first 10): " + string.Join(", ", r.LostSample));
            if (r.DoubledSample.Count > 0) md.AppendLine("stored twice (first 10): " + string.Join(", ", r.DoubledSample));
            md.AppendLine("--- logs");
            foreach (var line in r.Timeline.Take(80)) md.AppendLine(line);
            md.AppendLine("```");
            md.AppendLine();
            md.AppendLine("</details>");
            md.AppendLine();
        }
        md.AppendLine("## Machine");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine("- shared with other engineers' builds and benchmarks: figures are noisy; both systems run in the same round, alternating order.");
        return md.ToString();
    }

    /// <summary>Where the time went, from the timeline and the events: first pre-candidacy, leader, publisher connected, first ack.</summary>
    private static string Breakdown(RoundResult r)
    {
        static double? At(IEnumerable<string> lines, string what, bool last = false)
        {
            var hits = lines.Where(l => l.Contains(what, StringComparison.Ordinal)).ToList();
            if (hits.Count == 0) return null;
            var line = last ? hits[^1] : hits[0];
            var number = line.Split(' ')[0].TrimStart('+');
            return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) ? ms : null;
        }
        var preVote = At(r.Timeline, "BecamePreCandidate");
        var leads = At(r.Timeline, " leads term", last: true);
        var connected = At(r.Events, "publisher connected", last: true);
        string F(double? ms) => ms is { } v ? $"+{v:0} ms" : "?";
        return $"first pre-candidate {F(preVote)}, leader {F(leads)}, publisher connected {F(connected)}, first commit acknowledged +{r.UnavailableMs:0} ms";
    }

    private static string GeoRelayDescription(FailoverSettings settings) => GeoRelayVoters.Describe(settings);
    private static string JetStreamDescription() => JetStreamCluster.Describe();
}
