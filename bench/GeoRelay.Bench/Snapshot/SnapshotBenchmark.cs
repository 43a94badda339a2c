using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;

namespace GeoRelay.Bench.Snapshot;

// Inside the namespace: under GeoRelay.*, `LearnerClient` alone would name the namespace GeoRelay.LearnerClient.
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// `bench/run snapshot [--entries N] [--keys K] [--repeat R]`: a learner joining at the end of a long keyed log. Two
/// loopback clusters of real daemons (<see cref="SnapshotCluster"/>), one after the other: <b>snapshot</b> with
/// <c>compaction: keyed</c> and a 64 MiB retention window, <b>replay</b> without compaction and a window that keeps the
/// whole log. The same N writes over K keys go to each (<see cref="KeyedWorkload"/>); then a learner at the relay takes
/// a complete state: from <c>SubscribeFrom.Snapshot</c> in the first, by replaying from index 1 in the second. Bytes
/// are the relay's learner-port bytes sent (<c>/status</c>), time is from connecting to holding every key's last
/// write. Every node's disk is sampled throughout. Writes bench/results/snapshot.md.
/// </summary>
public static class SnapshotBenchmark
{
    private const string Usage = "usage: bench/run snapshot [--entries N] [--keys K] [--repeat R] [--batch B] [--out FILE]";
    private const long WindowBytes = 64L << 20;
    private const long SegmentBytes = WindowBytes / 4; // a quarter of the window (docs/configuration.md, retention.max-bytes)
    private const int OutstandingBatches = 64;
    private static readonly TimeSpan SampleEvery = TimeSpan.FromMilliseconds(200);

    private sealed record PublishRun(TimeSpan Elapsed, ulong FirstIndex, ulong LastIndex, bool Contiguous)
    {
        public double PerSecond(long entries) => entries / Elapsed.TotalSeconds;
    }

    private sealed record LearnRun(TimeSpan Elapsed, long WireBytes, long SnapshotEntries, long StreamEntries, long OtherEntries, long RecordBytes,
        ulong SnapshotThrough, TimeSpan FirstEntryAt, TimeSpan? SnapshotEndAt, int SnapshotBegins, int WrongKeys, double RelayCpuSeconds, double LearnerCpuSeconds, string? Failure);

    private sealed record ClusterRun(int Run, string Mode, int Position, PublishRun Publish, LearnRun Learn, Dictionary<string, SnapshotCluster.DiskPeak> Disk);

    public static async Task<int> RunAsync(string[] args)
    {
        long entries = 10_000_000;
        int keys = 100_000, repeat = 1, batch = 1_000;
        string output = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "snapshot.md");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--entries": entries = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--keys": keys = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--repeat": repeat = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--batch": batch = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                case "-h" or "--help": Console.WriteLine(Usage); return 0;
                default: Console.Error.WriteLine($"unknown option '{args[i]}'\n{Usage}"); return 2;
            }
        }
        if (keys < 1 || keys > 1_000_000 || entries < keys || repeat < 1 || batch < 1)
        {
            Console.Error.WriteLine($"--keys 1..1,000,000, --entries at least --keys, --repeat and --batch at least 1\n{Usage}");
            return 2;
        }
        string command = "bench/run snapshot " + string.Join(" ", args);
        var workload = new KeyedWorkload(entries, keys);
        var clock = Stopwatch.StartNew();
        var runs = new List<ClusterRun>();
        for (int run = 1; run <= repeat; run++)
        {
            // Alternating order: whichever goes second runs on a warmer machine (and a fuller page cache).
            var order = run % 2 == 1 ? new[] { "snapshot", "replay" } : new[] { "replay", "snapshot" };
            for (int position = 0; position < order.Length; position++)
            {
                var result = await RunClusterAsync(run, order[position], position + 1, workload, batch, clock);
                runs.Add(result);
                Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {run} {result.Mode}: published {entries:N0} in {result.Publish.Elapsed.TotalSeconds:F1} s " +
                    $"({result.Publish.PerSecond(entries):N0}/s); learner: {result.Learn.Elapsed.TotalSeconds:F2} s, {result.Learn.WireBytes:N0} bytes, " +
                    $"{result.Learn.SnapshotEntries:N0} snapshot + {result.Learn.StreamEntries:N0} stream entries, wrong keys {result.Learn.WrongKeys}");
            }
        }
        string md = Report(command, workload, batch, runs, clock.Elapsed);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        await File.WriteAllTextAsync(output, md);
        Console.WriteLine(md);
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    private static async Task<ClusterRun> RunClusterAsync(int run, string mode, int position, KeyedWorkload workload, int batch, Stopwatch clock)
    {
        bool keyed = mode == "snapshot";
        string defaults = keyed
            ? $"  retention: {{ max-bytes: {WindowBytes >> 20}MiB, max-age: 24h }}\n  compaction: keyed"
            : "  retention: { max-bytes: 64GiB, max-age: 24h }";
        Func<long, long>? bound = keyed ? state => WindowBytes + SegmentBytes + state : null;
        await using var cluster = await SnapshotCluster.StartAsync(mode, defaults, bound, SampleEvery);
        Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {run} {mode}: cluster up, publishing");
        var published = await PublishAsync(cluster, workload, batch, clock);
        var patience = TimeSpan.FromSeconds(120 + workload.Entries / 5_000);
        await cluster.WaitForRelayAsync(published.LastIndex, patience);
        Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {run} {mode}: relay holds {published.LastIndex}, learner joins");
        var learned = await LearnAsync(cluster, workload, published.LastIndex, keyed, patience);
        if (learned.Failure is not null)
        {
            string logs = Path.Combine(Path.GetTempPath(), $"georelay-snapshot-failure-run{run}-{mode}");
            Directory.CreateDirectory(logs);
            foreach (var node in SnapshotCluster.NodeIds) await File.WriteAllTextAsync(Path.Combine(logs, node + ".log"), cluster.Output(node));
            Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}] run {run} {mode}: learner failed: {learned.Failure}; node logs in {logs}");
        }
        return new ClusterRun(run, mode, position, published, learned, cluster.Peaks());
    }

    /// <summary>The workload in requests of <paramref name="batch"/> writes, committed, at most <see cref="OutstandingBatches"/> unacknowledged.</summary>
    private static async Task<PublishRun> PublishAsync(SnapshotCluster cluster, KeyedWorkload workload, int batch, Stopwatch clock)
    {
        await using var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
        {
            Endpoints = [cluster.Publish],
            ExactlyOnce = false,
            MaxInFlightBytes = 64L << 20,
            MaxInFlightEntries = 1 << 20,
        });
        // Requests are encoded when PublishAsync is called, so one set of buffers serves every batch.
        var keyBuffers = new byte[batch][];
        var payloadBuffers = new byte[batch][];
        for (int i = 0; i < batch; i++)
        {
            keyBuffers[i] = new byte[KeyedWorkload.KeyBytes];
            payloadBuffers[i] = new byte[KeyedWorkload.PayloadBytes];
        }
        var pending = new Queue<Task<PublishResult>>();
        ulong first = 0, last = 0, expectedNext = 0;
        bool contiguous = true;
        void Acked(PublishResult r)
        {
            if (first == 0) first = r.FirstIndex;
            else if (r.FirstIndex != expectedNext) contiguous = false;
            expectedNext = r.LastIndex + 1;
            last = Math.Max(last, r.LastIndex);
        }
        var sw = Stopwatch.StartNew();
        long nextReport = workload.Entries / 10;
        for (long write = 0; write < workload.Entries; write += batch)
        {
            int count = (int)Math.Min(batch, workload.Entries - write);
            var request = new PublishEntry[count];
            for (int i = 0; i < count; i++)
            {
                workload.WriteKey(write + i, keyBuffers[i]);
                workload.WritePayload(write + i, payloadBuffers[i]);
                request[i] = new PublishEntry(keyBuffers[i], payloadBuffers[i]);
            }
            pending.Enqueue(publisher.PublishAsync(request, WaitLevel.Committed).AsTask());
            while (pending.Count >= OutstandingBatches) Acked(await pending.Dequeue());
            if (write + count >= nextReport)
            {
                Console.WriteLine($"[{clock.Elapsed:hh\\:mm\\:ss}]   {write + count:N0} written, {(write + count) / sw.Elapsed.TotalSeconds:N0}/s");
                nextReport += workload.Entries / 10;
            }
        }
        while (pending.Count > 0) Acked(await pending.Dequeue());
        sw.Stop();
        return new PublishRun(sw.Elapsed, first, last, contiguous && last - first + 1 == (ulong)workload.Entries);
    }

    /// <summary>
    /// A learner at the relay builds the whole state (each key's payload, copied into a slot of its own) until it holds
    /// the last write: from a snapshot (then the stream past the snapshot's index, if any), or from index 1.
    /// </summary>
    private static async Task<LearnRun> LearnAsync(SnapshotCluster cluster, KeyedWorkload workload, ulong lastIndex, bool fromSnapshot, TimeSpan patience)
    {
        long bytesBefore = await cluster.LearnerBytesSentAsync("p1");
        double relayCpu = ProcessCpu.Seconds(cluster.RelayPid), learnerCpu = ProcessCpu.Seconds(Environment.ProcessId);
        var state = new byte[workload.Keys][];
        var lastWrite = new long[workload.Keys];
        for (int k = 0; k < workload.Keys; k++)
        {
            state[k] = new byte[KeyedWorkload.PayloadBytes];
            lastWrite[k] = -1;
        }
        long snapshotEntries = 0, streamEntries = 0, other = 0, recordBytes = 0;
        ulong snapshotThrough = 0;
        TimeSpan? snapshotEndAt = null, firstAt = null;
        int begins = 0;
        using var limit = new CancellationTokenSource(patience);
        string? failure = null;
        var sw = Stopwatch.StartNew();
        try
        {
        await using (var learner = await LearnerClient.ConnectAsync(LearnerClientOptions.Default with
            { Endpoints = [cluster.RelayLearners], NodeId = fromSnapshot ? "snapshot-learner" : "replay-learner" }, limit.Token))
        {
            await foreach (var e in learner.SubscribeAsync(fromSnapshot ? SubscribeFrom.Snapshot : 1, limit.Token))
            {
                firstAt ??= sw.Elapsed;
                if (e.IsSnapshotBegin)
                {
                    // A newer snapshot starts over (after a reconnect to a node that no longer has ours).
                    begins++;
                    snapshotEntries = 0;
                    Array.Fill(lastWrite, -1);
                    continue;
                }
                if (e.IsSnapshotEnd)
                {
                    snapshotThrough = e.Index;
                    snapshotEndAt = sw.Elapsed;
                    if (e.Index >= lastIndex) break;
                    continue;
                }
                if (e.IsSnapshot) snapshotEntries++; else streamEntries++;
                recordBytes += e.Key.Length + e.Payload.Length;
                int key = workload.KeyNumber(e.Key.Span);
                if (key < 0 || e.Payload.Length != KeyedWorkload.PayloadBytes) other++;
                else
                {
                    e.Payload.Span.CopyTo(state[key]);
                    System.Buffers.Text.Utf8Parser.TryParse(e.Payload.Span[..12], out lastWrite[key], out _);
                }
                if (!e.IsSnapshot && e.Index >= lastIndex) break;
            }
        }
        }
        catch (SnapshotRequiredException e)
        {
            failure = $"{e.GetType().Name}: {e.Message}"; // reported in the results: the learner got no state
        }
        sw.Stop();
        relayCpu = ProcessCpu.Seconds(cluster.RelayPid) - relayCpu;
        learnerCpu = ProcessCpu.Seconds(Environment.ProcessId) - learnerCpu;
        long wireBytes = await cluster.LearnerBytesSentAsync("p1") - bytesBefore;

        int wrong = 0;
        var expected = new byte[KeyedWorkload.PayloadBytes];
        for (int k = 0; k < workload.Keys; k++)
        {
            long write = workload.LastWriteOf(k);
            workload.WritePayload(write, expected);
            if (lastWrite[k] != write || !expected.AsSpan().SequenceEqual(state[k])) wrong++;
        }
        return new LearnRun(sw.Elapsed, wireBytes, snapshotEntries, streamEntries, other, recordBytes, snapshotThrough, firstAt ?? sw.Elapsed, snapshotEndAt, begins, wrong,
            relayCpu, learnerCpu, failure);
    }

    private static string Report(string command, KeyedWorkload workload, int batch, List<ClusterRun> runs, TimeSpan total)
    {
        var inv = CultureInfo.InvariantCulture;
        long compacted = workload.CompactedStateBytes;
        var md = new StringBuilder();
        md.AppendLine("# Snapshot: a learner joining at the end of a keyed log, from a snapshot vs replaying the log");
        md.AppendLine();
        md.AppendLine($"Command: `{command.TrimEnd()}`; source `bench/GeoRelay.Bench/Snapshot/`; took {total.TotalMinutes:F1} min.");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine();
        md.AppendLine("## Setup");
        md.AppendLine();
        md.AppendLine($"- Two loopback clusters of real `georelay` processes, the `bench/run cli` shape: leader and member m1 in `home`, relay p1 and member m2 in `edge` (quorum: both members); `elections: false`, **`fsync: false`** (the page cache, not the disk: this measures the transfer, not fsync), an admin port on each node. Each cluster is started, loaded, measured and torn down before the next; runs alternate the order.");
        md.AppendLine(string.Create(inv, $"  - **snapshot**: `compaction: keyed`, `retention: {{ max-bytes: {WindowBytes >> 20}MiB, max-age: 24h }}` (segments of {SegmentBytes >> 20} MiB)."));
        md.AppendLine("  - **replay**: no compaction, `retention: { max-bytes: 64GiB, max-age: 24h }`: the whole log stays, so a learner can start from index 1.");
        md.AppendLine(string.Create(inv, $"- Writes: {workload.Entries:N0} over {workload.Keys:N0} keys (`key-%06d`, write i sets key i mod {workload.Keys:N0}: {workload.Entries / (double)workload.Keys:N0} versions each), {KeyedWorkload.PayloadBytes}-byte payloads (the write's number in 12 digits, then random hex text, about 2x compressible), no tombstones. Published with `PublisherClient` (`ExactlyOnce = false`), {batch:N0} writes a request, `WaitLevel.Committed`, at most {OutstandingBatches} requests unacknowledged."));
        md.AppendLine(string.Create(inv, $"- **Compacted state** = sum over live keys of key + payload bytes = {workload.Keys:N0} x ({KeyedWorkload.KeyBytes} + {KeyedWorkload.PayloadBytes}) = **{compacted:N0} bytes**."));
        md.AppendLine("- The learner: `LearnerClient` at relay p1, once p1 retains the last index (its `/status` `indexes.retained`). **snapshot** subscribes from `SubscribeFrom.Snapshot`, takes the snapshot to its end marker and then the stream up to the last published index if the snapshot ends before it; **replay** subscribes from 1 and reads to the last published index. Both copy every entry's payload into its key's slot (the state a state machine would hold); afterwards every key's slot is checked against its last write (\"wrong keys\").");
        md.AppendLine("- **Time** = from `LearnerClient.ConnectAsync` to holding the last write (the learner in this process). **Bytes** = p1's `/status` `peers[learners].bytesSent` after minus before (what the relay wrote on its learner port: frames, headers, compression as negotiated; this learner is its only one). First entry at = when the first entry or marker reached the learner (connect, handshake, subscribe: the fixed cost in both). Relay CPU = p1's user+system time over the same span (/proc), learner CPU = this process's.");
        md.AppendLine(string.Create(inv, $"- **Disk**: every node's data directory sampled every {SampleEvery.TotalMilliseconds:F0} ms from the cluster's start to its teardown: segments (`*.log`), `keyed-state` and `keyed-state.tmp` (a persist in progress). The bound for the snapshot cluster, per sample: retention max-bytes + one segment + the keyed-state file then = {WindowBytes >> 20} MiB + {SegmentBytes >> 20} MiB + keyed-state."));
        md.AppendLine();

        md.AppendLine("## Learner joining at the end");
        md.AppendLine();
        md.AppendLine("| run | mode (order) | publish s | publish entries/s | learner time s | first entry at s | bytes received | bytes / compacted state | entries received (snapshot + stream) | snapshot at | snapshot end at s | relay CPU s | learner CPU s | wrong keys |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in runs)
        {
            var l = r.Learn;
            md.AppendLine(string.Create(inv, $"| {r.Run} | {r.Mode} ({r.Position}) | {r.Publish.Elapsed.TotalSeconds:F1} | {r.Publish.PerSecond(workload.Entries):N0} | {l.Elapsed.TotalSeconds:F3} | {l.FirstEntryAt.TotalSeconds:F3} | {l.WireBytes:N0} | {l.WireBytes / (double)compacted:F3} | {l.SnapshotEntries:N0} + {l.StreamEntries:N0}{(l.OtherEntries > 0 ? $" ({l.OtherEntries:N0} not ours)" : "")} | {(r.Mode == "snapshot" ? l.SnapshotThrough.ToString("N0", inv) : "-")} | {(l.SnapshotEndAt is { } at ? at.TotalSeconds.ToString("F3", inv) : "-")} | {l.RelayCpuSeconds:F2} | {l.LearnerCpuSeconds:F2} | {l.WrongKeys} |"));
        }
        md.AppendLine();

        md.AppendLine("### Side by side (snapshot vs replay, each run)");
        md.AppendLine();
        md.AppendLine("| run | snapshot bytes | replay bytes | snapshot bytes / compacted state (target ≤ 1.2) | snapshot time s | replay time s | replay time / snapshot time (target ≥ 10) |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        bool bytesMet = true, timeMet = true, correct = true;
        foreach (var group in runs.GroupBy(r => r.Run))
        {
            var s = group.First(r => r.Mode == "snapshot");
            var p = group.First(r => r.Mode == "replay");
            double bytesRatio = s.Learn.WireBytes / (double)compacted, speedup = p.Learn.Elapsed / s.Learn.Elapsed;
            bytesMet &= bytesRatio <= 1.2;
            timeMet &= speedup >= 10;
            correct &= s.Learn.Failure is null && p.Learn.Failure is null && s.Learn.WrongKeys == 0 && p.Learn.WrongKeys == 0 && s.Publish.Contiguous && p.Publish.Contiguous;
            md.AppendLine(string.Create(inv, $"| {group.Key} | {s.Learn.WireBytes:N0} | {p.Learn.WireBytes:N0} | **{bytesRatio:F3}** | {s.Learn.Elapsed.TotalSeconds:F3} | {p.Learn.Elapsed.TotalSeconds:F3} | **{speedup:F1}** |"));
        }
        md.AppendLine();

        foreach (var r in runs.Where(r => r.Learn.Failure is not null))
            md.AppendLine($"- **Run {r.Run} {r.Mode}: the learner failed** — {r.Learn.Failure} (its row shows what it had by then).");
        md.AppendLine();
        md.AppendLine("## Disk per node (whole run)");
        md.AppendLine();
        md.AppendLine("Largest total; for the snapshot cluster also the sample closest to (or furthest over) the bound. MiB.");
        md.AppendLine();
        md.AppendLine("| run | mode | node | samples | largest: segments + keyed-state + .tmp = total | closest to bound: segments + keyed-state + .tmp = total / bound | over bound |");
        md.AppendLine("|---:|---|---|---:|---|---|---:|");
        bool diskMet = true;
        foreach (var r in runs)
            foreach (var node in SnapshotCluster.NodeIds)
            {
                if (!r.Disk.TryGetValue(node, out var peak)) continue;
                var c = peak.Closest;
                bool over = c.Over > 0;
                if (r.Mode == "snapshot") diskMet &= !over;
                md.AppendLine(string.Create(inv, $"| {r.Run} | {r.Mode} | {node} | {peak.Samples:N0} | {Sample(peak.Largest)} | {(c.Bound is { } b ? $"{Sample(c)} / {Mib(b)}" : "-")} | {(c.Over is { } o ? (o > 0 ? $"**+{Mib(o)}**" : "no") : "-")} |"));
            }
        md.AppendLine();

        md.AppendLine("## Verdicts");
        md.AppendLine();
        md.AppendLine($"- State correct (every key's last write, both modes, indexes contiguous): **{(correct ? "yes" : "NO")}**.");
        md.AppendLine($"- Bytes at most 1.2x the compacted state: **{(bytesMet ? "met" : "missed")}**.");
        md.AppendLine($"- Disk of every node of the snapshot cluster under the bound for the whole run: **{(diskMet ? "met" : "missed")}**.");
        md.AppendLine($"- Time at least 10x shorter than the replay: **{(timeMet ? "met" : "missed")}**. Without the fixed cost (connect, handshake, subscribe: \"first entry at\") replay / snapshot would be " +
            string.Join(", ", runs.GroupBy(r => r.Run).Select(g =>
            {
                var s = g.First(r => r.Mode == "snapshot").Learn;
                var p = g.First(r => r.Mode == "replay").Learn;
                return string.Create(inv, $"{(p.Elapsed - p.FirstEntryAt) / (s.Elapsed - s.FirstEntryAt):F1} (run {g.Key}; fixed {s.FirstEntryAt.TotalSeconds:F3} s of the snapshot's {s.Elapsed.TotalSeconds:F3} s)");
            })) + ".");
        var keyedRate = runs.Where(r => r.Mode == "snapshot").Average(r => r.Publish.PerSecond(workload.Entries));
        var plainRate = runs.Where(r => r.Mode == "replay").Average(r => r.Publish.PerSecond(workload.Entries));
        md.AppendLine(string.Create(inv, $"- Publishing (not a target): {keyedRate:N0} entries/s into the keyed cluster against {plainRate:N0}/s into the plain one (mean over runs), {plainRate / keyedRate:F2}x."));
        return md.ToString();
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    private static string Sample(SnapshotCluster.DiskSample s) => $"{Mib(s.Segments)} + {Mib(s.State)} + {Mib(s.StateTemporary)} = {Mib(s.Total)}";
}
