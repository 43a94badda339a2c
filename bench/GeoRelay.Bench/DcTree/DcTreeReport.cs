using System.Globalization;
using System.Text;
using GeoRelay.Bench.Codec;
using GeoRelay.Bench.Harness;
using GeoRelay.Codec.Compression;

namespace GeoRelay.Bench.DcTree;

/// <summary>The markdown of <c>bench/results/dc-tree.md</c>: one column per shape.</summary>
internal static class DcTreeReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The model broke its own invariant: a gap or duplicate, shapes that cost the leader differently, or (relay dies) a learner left short.</summary>
    public static bool Broken(List<TreeRunResult> results) =>
        results.Any(r => r.LearnersWithViolations > 0 || r.RelayViolations > 0 || (r.Kill == KillMode.Dies && r.IncompleteLearners > 0))
        || results.GroupBy(r => r.Kill).Any(g => g.Select(r => r.LeaderBytes).Distinct().Count() > 1);

    public static string Write(DcTreeOptions o, string[] args, Corpus corpus, EntryLog log, List<TreeRunResult> results, TimeSpan took)
    {
        var md = new StringBuilder();
        var first = results.Where(r => r.Kill == o.Kills[0]).ToArray();
        var shapes = first.Select(r => r.Shape).ToArray();
        double meanRecord = log.Bytes.Length / (double)corpus.Payloads.Length;
        long learners = (long)o.LearnersPerDc * o.Datacenters;

        md.AppendLine("# dc-tree: a datacenter fan-out tree at scale, modelled (issue #19)");
        md.AppendLine();
        md.AppendLine(Inv, $"`bench/run dc-tree{(args.Length > 0 ? " " + string.Join(' ', args) : "")}`; took {took.TotalSeconds:F0} s.");
        md.AppendLine();
        md.AppendLine(Inv, $"A deterministic discrete-event model (seed {o.Seed}), no sockets and no sleeps: {o.Datacenters} DCs, each with {o.MembersPerDc} members, " +
            $"{o.RelaysPerDc} relays and {o.LearnersPerDc:N0} learners spread evenly over its relays ({learners:N0} learners); {o.Entries:N0} entries at {o.Rate:N0}/s " +
            $"for {o.Seconds:0.#} s; at {o.KillAt / 1e6:0.###} s the active relay of dc01 is killed. Learners of one relay with the same endpoint list receive the " +
            $"same frames, so each such cohort ({first[0].Cohorts:N0} in all) is one object and its deliveries are counted once per learner. " +
            $"Every frame is encoded with the real codec: the leader's per-DC Batch (mux, then zstd through the connection's own stream, as PeerChannel.Frame), " +
            $"a relay's Append to each member (uncompressed, `compression.local-level` 0), and the Deliver frames of the learner stream that relays send to " +
            $"learners and to other relays (uncompressed, one encoding per range shared by every receiver, cut as LearnerFanout cuts them).");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine(Inv, $"- zstd: {Zstd.Description}");
        md.AppendLine(Inv, $"- entries: {corpus.Description}; encoded records (gap, epoch, time, key, payload) average {meanRecord:F1} B");
        foreach (var shape in shapes) md.AppendLine(Inv, $"- **{shape.Name}**: {shape.Describe()}");
        md.AppendLine();

        md.AppendLine("## Bytes and depth");
        md.AppendLine();
        Header(md, shapes);
        var dies = results.Where(r => r.Kill == KillMode.Dies).ToArray();
        var silent = results.Where(r => r.Kill == KillMode.Silent).ToArray();
        foreach (var (runs, what) in new[] { (dies, "relay dies"), (silent, "relay goes silent") })
        {
            if (runs.Length == 0) continue;
            bool same = runs.Select(r => r.LeaderBytes).Distinct().Count() == 1;
            Row(md, $"leader egress per entry, all {o.Datacenters} DCs, whole run ({what}; same for both shapes: {(same ? "yes" : "**NO**")})",
                runs.Select(r => $"{r.LeaderBytes / (double)r.Entries:N1} B"));
        }
        Row(md, $"leader egress per entry per DC, before the kill (entry records average {meanRecord:F0} B)",
            first.Select(r => $"{r.LeaderSteadyPerEntry / o.Datacenters:N1} B"));
        Row(md, "most bytes one relay sends per entry, before the kill", first.Select(r => Egress(r.BusiestBefore)));
        Row(md, "&nbsp;&nbsp;of which to learners / to relays / to members", first.Select(r => Split(r.BusiestBefore)));
        Row(md, $"&nbsp;&nbsp;at {o.Rate:N0} entries/s", first.Select(r => $"{r.BusiestBefore.Total * o.Rate * 8 / 1e9:F1} Gbit/s"));
        foreach (var (runs, what) in new[] { (dies, "relay dies"), (silent, "relay goes silent") })
        {
            if (runs.Length == 0) continue;
            Row(md, $"most bytes one relay sends per entry, kill to end of publishing ({what})", runs.Select(r => Egress(r.BusiestAfter)));
            Row(md, "&nbsp;&nbsp;of which to learners / to relays / to members", runs.Select(r => Split(r.BusiestAfter)));
        }
        Row(md, "delivery depth before the kill, leader→learner hops: max / learner-weighted mean", first.Select(r => DepthText(r.DepthBefore)));
        foreach (var (runs, what) in new[] { (dies, "relay dies"), (silent, "relay goes silent") })
            if (runs.Length > 0) Row(md, $"delivery depth in dc01, entries published in the last second ({what})", runs.Select(r => DepthText(r.DepthAfter)));
        md.AppendLine();

        foreach (var (runs, title) in new[] { (dies, "The active relay dies (its connections close)"), (silent, "The active relay goes silent (hangs; connections stay open)") })
        {
            if (runs.Length == 0) continue;
            md.AppendLine(Inv, $"## {title}");
            md.AppendLine();
            md.AppendLine(Inv, $"Killed: {runs[0].KilledRelay}; the leader moves to {runs[0].TakeoverRelay}. A gap is the longest time between two consecutive " +
                $"entries reaching one learner (the publish interval is {1000.0 / o.Rate:0.###} ms), with when it began relative to the kill.");
            md.AppendLine();
            Header(md, shapes);
            Row(md, "leader notices / takeover relay fed / its first batch arrives (ms after the kill)",
                runs.Select(r => $"{Ms(r.LeaderLostAfter)} / {Ms(r.TakeoverFedAfter)} / {Ms(r.FirstBatchAfter)}"));
            foreach (var group in Enum.GetValues<StallGroup>())
                Row(md, $"longest gap: {GroupName(group)}", runs.Select(r => Stall(r.Groups[(int)group], o.Entries, 1_000_000 / o.Rate)));
            Row(md, "learners that saw an index twice or skipped one (relays too)",
                runs.Select(r => $"{r.LearnersWithViolations:N0} of {r.Learners:N0} ({r.RelayViolations:N0})"));
            Row(md, "learners without every entry at the end", runs.Select(r => $"{r.IncompleteLearners:N0}"));
            Row(md, "learner reconnects; most learners on one relay at the end", runs.Select(r => $"{r.LearnerReconnects:N0}; {r.MostLearnersAtEnd.Learners:N0} ({r.MostLearnersAtEnd.Relay})"));
            Row(md, "model: events, wall time", runs.Select(r => $"{r.Events:N0}, {r.Took.TotalSeconds:F1} s"));
            md.AppendLine();
        }

        md.AppendLine("## Parameters");
        md.AppendLine();
        md.AppendLine(Inv, $"- WAN RTT {Ms(o.WanRtt)} ms (one-way {Ms(o.WanOneWay)}), between the leader and every DC; in-DC RTT {Ms(o.DcRtt)} ms (one-way {Ms(o.DcOneWay)})");
        md.AppendLine(Inv, $"- `failover-after` {Ms(o.FailoverAfter)} ms, `heartbeat` {Ms(o.Heartbeat)} ms, `handshake-timeout` {Ms(o.HandshakeTimeout)} ms, " +
            $"`batch.linger` {Ms(o.Linger)} ms, `batch.max-bytes` {o.BatchMaxBytes:N0}, `compression.level` {o.CompressionLevel}, `compression.local-level` {o.LocalCompressionLevel} (ClusterDefaults)");
        md.AppendLine(Inv, $"- relay feed re-dial back-off {Ms(o.FeedRetryInitial)} ms doubling to {Ms(o.FeedRetryMax)} ms, +0–20% jitter (RelayEngine.Feed, engines/Backoff.cs)");
        md.AppendLine(Inv, $"- learner SDK: reconnect back-off {Ms(o.LearnerReconnectInitial)} ms doubling to {Ms(o.LearnerReconnectMax)} ms, +0–20% jitter, " +
            $"connect timeout {Ms(o.LearnerConnectTimeout)} ms, silence timeout {Ms(o.LearnerSilenceTimeout)} ms (LearnerClientOptions); Deliver frames of at most {o.MaxDeliverBytes:N0} B / {o.MaxDeliverEntries:N0} entries (LearnerFanoutOptions)");
        md.AppendLine(Inv, $"- relay bytes per entry: bytes sent in the window / entries published in it; \"before the kill\" is {o.SteadyFrom / 1e6:0.#} s to the kill");
        md.AppendLine();

        md.AppendLine("## Rules of the model");
        md.AppendLine();
        foreach (var rule in Rules(o)) md.AppendLine("- " + rule);
        return md.ToString();
    }

    private static IEnumerable<string> Rules(DcTreeOptions o)
    {
        yield return "Leader: one Batch per DC per send to the DC's active relay (the first healthy tier-1 relay in priority order), packet 0 for the " +
            "relay's retention plus one packet per member, all the same range; natural batching with `batch.linger`. The commit index it carries is " +
            "what was published one WAN RTT earlier. The leader's fsync and CPU are not modelled, nor are acks' bytes.";
        yield return "Active relay: forwards each member its Append, and one Deliver frame per received range to its standbys, its tier-2 children and " +
            "its learners. Every relay serves learners; learners get entries as soon as their relay has them (as with `delivery: durable`; with " +
            "`committed` every delivery shifts by the commit's lag alike). No CPU, queueing or bandwidth limit: a relay forwards the instant it receives.";
        yield return "Relay dies: every peer sees the close one one-way delay later. The leader dials the next tier-1 relay at once: a WAN RTT for TCP, " +
            "one for the handshake (the relay is fed from then), a one-way for its first DcAck, which says what it holds (a standby's retention is " +
            "warm), and the resend arrives a one-way later, on a new zstd stream.";
        yield return "Relay goes silent: the leader gives up failover-after after the last ack it got (sent when the last batch arrived); a child relay " +
            "failover-after after the last frame from its parent (parents heartbeat their children; RelayEngine.Feed). A dial to the hung " +
            "relay connects but its handshake times out (handshake-timeout; the SDK's connect timeout for learners). Its own learners hear nothing " +
            "(a hung process's kernel still answers TCP keep-alives); nodes heartbeat idle learners every second, so the SDK leaves it once it has " +
            "heard nothing for its silence timeout, and reconnects elsewhere.";
        yield return "Child relays (standbys and tier 2) whose feed is lost try their list at once, in order, starting after the parent just lost " +
            "(a tier-1 standby's list: the other tier-1 relays in priority order; tier 2: its `feed-from`); when a whole round refused, they back off " +
            $"({Ms(o.FeedRetryInitial)} ms, doubling, capped at {Ms(o.FeedRetryMax)} ms, jitter from the seed) before the next round. A parent serves a standby only if " +
            "the leader feeds it, a tier-2 relay only if it is fed at all; a refusal or a reset SYN costs one in-DC RTT; an accepted dial attaches after " +
            "TCP + handshake (two in-DC RTTs) + the child's position (a one-way), and the parent sends from there (catch-up from retention).";
        yield return "Learners list every relay of their DC, their own first; the second choices are spread evenly (so the killed relay's learners " +
            "scatter over the other relays), then the rest in order. As LearnerClient: after a connection that delivered entries it redials at once, " +
            "trying the endpoints in order; the back-off applies only after a whole round fails (or after a connection that delivered nothing), and a relay that went silent on it is left out of the next round's first pass. " +
            "A relay unfed for longer than failover-after refuses learners and sends its caught-up ones away (RelayEngine); a dead one resets the SYN.";
        yield return "Each learner cohort checks that every frame starts at the index after the last it got (no gap, no duplicate), and at the end " +
            "that it has every entry; relays check that they never receive a range with a hole.";
    }

    private static void Header(StringBuilder md, TreeShape[] shapes)
    {
        md.AppendLine("| | " + string.Join(" | ", shapes.Select(s => s.Name)) + " |");
        md.AppendLine("|---|" + string.Concat(shapes.Select(_ => "---:|")));
    }

    private static void Row(StringBuilder md, string label, IEnumerable<string> cells) =>
        md.AppendLine("| " + label + " | " + string.Join(" | ", cells) + " |");

    private static string Egress(RelayEgress e) => $"{e.Total:N0} B ({e.Relay})";

    private static string Split(RelayEgress e) => $"{e.Learners:N0} / {e.Relays:N0} / {e.Members:N0} B";

    private static string DepthText(Depth d) => d.Deliveries == 0 ? "—" : $"{d.Max} / {d.Mean:F2}";

    private static string Ms(long micros) => micros < 0 ? "never" : (micros / 1000.0).ToString(micros % 1000 == 0 ? "0" : "0.0##", Inv);

    private static string GroupName(StallGroup group) => group switch
    {
        StallGroup.KilledRelay => "learners of the killed relay",
        StallGroup.TakeoverRelay => "learners of the relay that takes over",
        StallGroup.OtherStandbys => "learners of the other tier-1 standbys",
        StallGroup.Tier2ParentKilled => "tier-2 learners whose relay fed from the killed one",
        StallGroup.Tier2ParentLived => "tier-2 learners whose relay fed from another",
        StallGroup.OtherDatacenters => "learners in the other DCs",
        _ => group.ToString(),
    };

    private static string Stall(GroupStall g, long entries, long interval)
    {
        if (g.Learners == 0) return "—";
        if (g.Incomplete > 0)
            return $"**{g.Incomplete:N0} of {g.Learners:N0} stuck**: no entry after {Signed(g.IncompleteLastArrival)} ms (next index {g.IncompleteNext:N0} of {entries:N0})";
        // A gap of a publish interval or two is no stall: when it first happened says nothing.
        string from = g.MaxGap > 2 * interval ? $" (from {Signed(g.MaxGapFrom)} ms)" : "";
        return $"{Ms(g.MaxGap)} ms{from}, {g.Learners:N0} learners";
    }

    private static string Signed(long micros) => (micros >= 0 ? "+" : "−") + Ms(Math.Abs(micros));
}
