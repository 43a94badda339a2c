using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Bench.Nats;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using HdrHistogram;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Bench.Fanout;

/// <summary>
/// `bench/run fanout --paced R`: publish-to-learner latency at a paced rate (not flat out), GeoRelay against NATS,
/// rounds in ABBA order. Target (issue 21): p50 at most 1 ms at 1,000 entries/s with 1,000 learners on loopback.
/// </summary>
/// <remarks>
/// Both sides go the way a user's code would: GeoRelay's publisher is the <see cref="PublisherClient"/> SDK on the
/// leader's publish port and its learners are <see cref="LearnerClient"/> SDK clients on the relay's learner port;
/// NATS's publisher and subscribers are NATS.Net connections. Every learner decodes every entry and records its
/// latency; the recording is per thread (see <see cref="PacedLatency"/>), merged at the end.
/// </remarks>
public static partial class FanoutBenchmark
{
    /// <param name="InlineCompletions">Socket completions run on the epoll thread (the daemons' setting) rather than on the thread pool (.NET's default).</param>
    private sealed record PacedSettings(int Rate, int Learners, double Seconds, int Rounds, double WarmupSeconds, bool InlineCompletions);

    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>A late timer wake-up publishes at most the entries due in this last stretch; older due slots are skipped.</summary>
    private static readonly TimeSpan MaxLate = TimeSpan.FromMilliseconds(2);

    /// <summary>After the last publish, how long the learners may go without receiving anything before the run is cut off.</summary>
    private static readonly TimeSpan PacedDrainStall = TimeSpan.FromSeconds(5);

    private sealed record PacedResult(string System, int Round, int Learners, int Rate, double Seconds, PaceStats Pace, long Delivered, long Expected,
        double P50Ms, double P90Ms, double P99Ms, double MaxMs, long Samples, string Cpu, string Note)
    {
        public bool Met => Delivered == Expected && Expected > 0 && P50Ms <= 1.0;
    }

    /// <summary>What the publisher did: entries published (measured), due slots skipped for a late wake-up, and its timer's wake-up intervals.</summary>
    private sealed record PaceStats(long Published, long Skipped, long WarmupPublished, double TickP50Ms, double TickP99Ms, double TickMaxMs, long Ticks);

    /// <summary>
    /// Latency recorders, one <see cref="LongHistogram"/> per thread that records (a learner's loop records on the thread
    /// it runs on): no counter is shared between threads, so 1,000 learners on two cores do not fight over cache lines,
    /// and there are a few histograms, not one per learner (one covering an hour at 0.1 % is ~190 KB).
    /// </summary>
    private sealed class PacedLatency : IDisposable
    {
        private readonly ThreadLocal<LongHistogram> _local = new(LatencyHistogram.Create, trackAllValues: true);

        public void Record(long stopwatchTimestamp) => _local.Value!.RecordSince(stopwatchTimestamp);

        /// <summary>Merges every thread's histogram; call once nothing records any more.</summary>
        public LongHistogram Merge()
        {
            var all = LatencyHistogram.Create();
            foreach (var h in _local.Values) all.Add(h);
            return all;
        }

        public void Dispose() => _local.Dispose();
    }

    /// <summary>One learner's count of measured entries, written by its own loop only.</summary>
    private sealed class PacedCounter
    {
        private long _measured;
        public long Measured => Volatile.Read(ref _measured);

        /// <summary>Records the entry's latency unless it is a warm-up entry (stamp 0).</summary>
        public void Take(ReadOnlySpan<byte> payload, PacedLatency latency)
        {
            if (payload.Length < 8) return;
            long stamp = BinaryPrimitives.ReadInt64LittleEndian(payload);
            if (stamp == 0) return;
            latency.Record(stamp);
            Volatile.Write(ref _measured, _measured + 1);
        }
    }

    private static async Task<int> RunPacedAsync(PacedSettings settings, string output)
    {
        RaiseFileLimit(settings.Learners * 3 + 1000);
        await EnsureNatsServerAsync();
        string loadBefore = LoadAverage();
        var clock = Stopwatch.StartNew();
        var results = new List<PacedResult>();
        for (int round = 1; round <= settings.Rounds; round++)
        {
            // ABBA: GeoRelay first in odd rounds, NATS first in even ones, so a drift in the machine's load falls on both.
            bool geoFirst = round % 2 == 1;
            for (int k = 0; k < 2; k++)
            {
                var r = (k == 0) == geoFirst ? await RunGeoRelayPacedAsync(settings, round) : await RunNatsPacedAsync(settings, round);
                PrintPaced(clock, r);
                results.Add(r);
            }
            var geo = results.Single(r => r.Round == round && r.System == "GeoRelay");
            var nats = results.Single(r => r.Round == round && r.System == "NATS");
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] round {round}: {TargetLine(settings, geo)}; GeoRelay / NATS p50 {Ratio(geo.P50Ms, nats.P50Ms)}, p99 {Ratio(geo.P99Ms, nats.P99Ms)}");
        }
        WriteReport(output, PacedReport(settings, results, clock.Elapsed, loadBefore, LoadAverage()));
        return 0;
    }

    private static string TargetLine(PacedSettings s, PacedResult geo) =>
        Inv($"p50 ≤ 1 ms at {s.Rate:N0}/s with {s.Learners:N0} learners: {(geo.Met ? "met" : "not met")} (p50 {geo.P50Ms:F3} ms, {geo.Delivered:N0}/{geo.Expected:N0} delivered)");

    private static string Ratio(double a, double b) => double.IsNaN(a) || double.IsNaN(b) || b <= 0 ? "n/a" : Inv($"{a / b:F2}x");

    private static void PrintPaced(Stopwatch clock, PacedResult r) =>
        Console.WriteLine(Inv($"[{clock.Elapsed:mm\\:ss}] round {r.Round} {r.System,-8} {r.Learners,5} learners at {r.Rate:N0}/s: {r.Pace.Published:N0} published ({r.Pace.Skipped:N0} slots skipped), {r.Delivered:N0}/{r.Expected:N0} delivered, p50 {r.P50Ms:F3} p90 {r.P90Ms:F3} p99 {r.P99Ms:F3} max {r.MaxMs:F3} ms; timer tick p50 {r.Pace.TickP50Ms:F3} p99 {r.Pace.TickP99Ms:F3} max {r.Pace.TickMaxMs:F3} ms; CPU {r.Cpu} s {r.Note}"));

    /// <summary>
    /// Publishes at <paramref name="rate"/> per second on a dedicated thread: warm-up entries (stamp 0) for the warm-up
    /// seconds, then measured entries, each stamped with <see cref="Stopwatch.GetTimestamp"/> just before its publish call.
    /// The thread sleeps 1 ms between wake-ups (no spinning) and publishes the entries due by then; due slots older than
    /// <see cref="MaxLate"/> are skipped, not published late, so a late wake-up does not send a burst.
    /// </summary>
    private static Task<PaceStats> PublishPacedAsync(PacedSettings s, Action<long> publish) => Task.Factory.StartNew(() =>
    {
        long warmSlots = (long)(s.Rate * s.WarmupSeconds), slots = warmSlots + (long)(s.Rate * s.Seconds);
        long f = Stopwatch.Frequency, maxLate = (long)(MaxLate.TotalSeconds * f);
        var ticks = LatencyHistogram.Create();
        long published = 0, warm = 0, skipped = 0, next = 0, tickCount = 0;
        long start = Stopwatch.GetTimestamp(), lastWake = start;
        while (next < slots)
        {
            long now = Stopwatch.GetTimestamp();
            if (tickCount++ > 0) ticks.RecordMicros((now - lastWake) * 1e6 / f);
            lastWake = now;
            long elapsed = now - start;
            // Slot i is due at start + i / rate: by now slots [0, due) are; those due before now - maxLate are skipped.
            long due = Math.Min(slots, (long)(elapsed * (double)s.Rate / f) + 1);
            long stale = elapsed > maxLate ? Math.Min(due, (long)((elapsed - maxLate) * (double)s.Rate / f) + 1) : 0;
            if (stale > next)
            {
                skipped += stale - Math.Max(next, warmSlots) > 0 ? stale - Math.Max(next, warmSlots) : 0;
                next = stale;
            }
            for (; next < due; next++)
            {
                if (next < warmSlots) { publish(0); warm++; }
                else { publish(Stopwatch.GetTimestamp()); published++; }
            }
            if (next < slots) Thread.Sleep(1);
        }
        return new PaceStats(published, skipped, warm, ticks.Quantile(0.5) / 1000, ticks.Quantile(0.99) / 1000, ticks.GetMaxValue() / 1000.0, tickCount);
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>After the last publish, the longest the learners may take to get everything, even while it still trickles in.</summary>
    private static readonly TimeSpan PacedDrainMax = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Waits until every learner has <paramref name="published"/> measured entries, or none moved for <see cref="PacedDrainStall"/>,
    /// or <see cref="PacedDrainMax"/> has passed.
    /// </summary>
    private static async Task<string> WhenAllMeasuredAsync(PacedCounter[] counters, long published)
    {
        long last = -1;
        var moved = Stopwatch.StartNew();
        var since = Stopwatch.StartNew();
        while (true)
        {
            long min = long.MaxValue, sum = 0;
            foreach (var c in counters) { long m = c.Measured; min = Math.Min(min, m); sum += m; }
            if (min >= published) return "";
            if (sum != last) { last = sum; moved.Restart(); }
            else if (moved.Elapsed > PacedDrainStall) return Inv($"INCOMPLETE: slowest learner stopped at {min:N0} of {published:N0}");
            if (since.Elapsed > PacedDrainMax) return Inv($"INCOMPLETE: slowest learner at {min:N0} of {published:N0} {PacedDrainMax.TotalSeconds:0} s after the last publish");
            await Task.Delay(10);
        }
    }

    /// <param name="cpu">CPU seconds of this process from the first (warm-up) publish to the end of the drain.</param>
    /// <param name="serverCpu">The same for nats-server; null for GeoRelay (its cluster is in this process).</param>
    private static PacedResult PacedResultOf(string system, int round, PacedSettings s, PaceStats pace, PacedCounter[] counters, LongHistogram latency, double cpu, double? serverCpu, string note)
    {
        long delivered = counters.Sum(c => Math.Min(c.Measured, pace.Published));
        // CPU per delivery over the whole window, warm-up included: what the two cores must give per entry and learner.
        double deliveries = Math.Max(1, (pace.Published + pace.WarmupPublished) * (double)s.Learners);
        string perDelivery = Inv($"CPU µs/delivery {cpu * 1e6 / deliveries:F1}") + (serverCpu is { } sc ? Inv($" + nats-server {sc * 1e6 / deliveries:F1}") : "");
        note = string.Join(", ", new[] { note.Trim().TrimStart(',', ' '), perDelivery }.Where(part => part.Length > 0));
        string cpuText = serverCpu is { } server ? Inv($"{cpu:F1}+{server:F1}") : Inv($"{cpu:F1}");
        bool any = latency.TotalCount > 0;
        return new PacedResult(system, round, s.Learners, s.Rate, s.Seconds, pace, delivered, pace.Published * s.Learners,
            any ? latency.Quantile(0.50) / 1000 : double.NaN, any ? latency.Quantile(0.90) / 1000 : double.NaN,
            any ? latency.Quantile(0.99) / 1000 : double.NaN, any ? latency.GetMaxValue() / 1000.0 : double.NaN, latency.TotalCount, cpuText, note);
    }

    // ---- GeoRelay: the cluster in this process; PublisherClient on the leader's publish port, LearnerClient learners on the relay ----

    private static async Task<PacedResult> RunGeoRelayPacedAsync(PacedSettings s, int round)
    {
        using var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddProvider(NullLoggerProvider.Instance));
        var payload = new byte[EntryBytes];
        var (started, from) = await StartClusterAsync(loggers, payload);
        await using var cluster = started;
        var relay = cluster.Relays["p1"];
        string learnerPort = cluster.Topology.GetNode("p1").Learners!.Value.ToEndPoint().ToString()!;
        string publishPort = cluster.Topology.Leader.Publish!.Value.ToEndPoint().ToString()!;

        using var latency = new PacedLatency();
        var counters = new PacedCounter[s.Learners];
        var clients = new GeoRelay.LearnerClient.LearnerClient[s.Learners];
        var loops = new Task[s.Learners];
        using var stop = new CancellationTokenSource();
        try
        {
            for (int i = 0; i < s.Learners; i++)
            {
                var counter = counters[i] = new PacedCounter();
                var client = clients[i] = await GeoRelay.LearnerClient.LearnerClient.ConnectAsync(new LearnerClientOptions
                {
                    Endpoints = [learnerPort],
                    NodeId = $"paced-learner-{i}",
                    // Each entry is read at once and nothing kept, as the NATS subscribers release each pooled payload.
                    ReuseBuffers = true,
                });
                loops[i] = Task.Run(async () =>
                {
                    try
                    {
                        await foreach (var entry in client.SubscribeAsync(from, stop.Token))
                            counter.Take(entry.Payload.Span, latency);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
                });
            }
            await WaitLiveAsync(relay, s.Learners);
            await using var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [publishPort], NodeId = "paced-publisher" });
            long framesEncoded = relay.Host.Invoke(_ => relay.Engine.Learners.FramesEncoded), framesSent = relay.Host.Invoke(_ => relay.Engine.Learners.FramesSent);

            // Acknowledgements (accepted: in the leader's log) are not waited for one by one: the publisher goes on at its pace.
            var acks = new Queue<Task<PublishResult>>();
            long failed = 0;
            double cpu = ProcessCpu.Seconds(Environment.ProcessId);
            var pace = await PublishPacedAsync(s, stamp =>
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, stamp);
                var ack = publisher.PublishAsync(ReadOnlyMemory<byte>.Empty, payload, WaitLevel.Accepted);    // copies the payload
                if (!ack.IsCompletedSuccessfully) acks.Enqueue(ack.AsTask());
                while (acks.Count > 0 && acks.Peek().IsCompleted)
                    if (!acks.Dequeue().IsCompletedSuccessfully) failed++;
            });
            string note = await WhenAllMeasuredAsync(counters, pace.Published);
            cpu = ProcessCpu.Seconds(Environment.ProcessId) - cpu;
            try { await Task.WhenAll(acks).WaitAsync(TimeSpan.FromSeconds(5)); }
            catch (Exception) { }
            failed += acks.Count(a => !a.IsCompletedSuccessfully);
            if (failed > 0) note += $" {failed} publishes failed";
            long entries = pace.Published + pace.WarmupPublished;
            framesEncoded = relay.Host.Invoke(_ => relay.Engine.Learners.FramesEncoded) - framesEncoded;
            framesSent = relay.Host.Invoke(_ => relay.Engine.Learners.FramesSent) - framesSent;
            long cuts = relay.Host.Invoke(_ => relay.Engine.Learners.SlowConsumerCuts);
            if (cuts > 0) note += $" {cuts} slow-consumer cuts";
            note += Inv($", relay: {entries / (double)Math.Max(1, framesEncoded):F2} entries/frame encoded, {entries * (double)s.Learners / Math.Max(1, framesSent):F2} entries/frame sent");
            // A learner whose subscription ended with an error is not counted: say how many, and the first error.
            var broken = loops.Where(l => l.IsFaulted).ToList();
            if (broken.Count > 0) note += $"; {broken.Count} learners' subscriptions failed, the first: {broken[0].Exception!.InnerException!.GetType().Name}: {broken[0].Exception!.InnerException!.Message}";
            stop.Cancel();
            await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
            return PacedResultOf("GeoRelay", round, s, pace, counters, latency.Merge(), cpu, null, note);
        }
        finally
        {
            stop.Cancel();
            foreach (var c in clients)
                if (c is not null) await c.DisposeAsync();
        }
    }

    private static async Task WaitLiveAsync(GeoRelay.Server.Hosting.RelayNode relay, int n)
    {
        var subscribing = Stopwatch.StartNew();
        int live;
        while ((live = relay.Host.Invoke(_ => relay.Engine.Learners.Status().Count(st => st.State == GeoRelay.Relay.Learners.LearnerState.Live))) < n)
        {
            if (subscribing.Elapsed > Stall)
                throw new InvalidOperationException($"only {live} of {n} learners are live on the relay after {Stall.TotalSeconds:0} s");
            await Task.Delay(20);
        }
    }

    // ---- NATS: nats-server; one NATS.Net publisher and N NATS.Net subscribers ----

    private static async Task<PacedResult> RunNatsPacedAsync(PacedSettings s, int round)
    {
        await using var server = await NatsServerProcess.StartAsync(new NatsServerConfig { ServerName = "fanout-paced" }.WithFreePorts());
        using var latency = new PacedLatency();
        var counters = new PacedCounter[s.Learners];
        var subscribers = new List<NatsSubscriber>(s.Learners);
        try
        {
            for (int i = 0; i < s.Learners; i++)
            {
                var counter = counters[i] = new PacedCounter();
                subscribers.Add(await NatsSubscriber.StartAsync(server.ClientEndPoint, "fanout", $"paced-sub-{i}", p => counter.Take(p, latency)));
            }
            foreach (var sub in subscribers) await sub.PingAsync();    // every SUB is registered
            await using var publisher = await BenchNats.ConnectAsync(server.ClientEndPoint, "paced-pub");
            var payload = new byte[EntryBytes];
            double cpu = ProcessCpu.Seconds(Environment.ProcessId), serverCpu = ProcessCpu.Seconds(server.ProcessId);
            var pace = await PublishPacedAsync(s, stamp =>
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, stamp);
                var sent = publisher.PublishRawAsync("fanout", payload);   // returns once the bytes are in the connection's buffer
                if (!sent.IsCompletedSuccessfully) sent.AsTask().GetAwaiter().GetResult();   // on the publisher's own thread
            });
            await publisher.PingAsync();
            string note = await WhenAllMeasuredAsync(counters, pace.Published);
            cpu = ProcessCpu.Seconds(Environment.ProcessId) - cpu;
            serverCpu = ProcessCpu.Seconds(server.ProcessId) - serverCpu;
            int cut = subscribers.Count(x => x.Disconnected);
            if (cut > 0) note += $" {cut} subscribers disconnected (slow consumer)";
            await DisposeAllAsync(subscribers);    // every subscriber's loop has ended after this
            return PacedResultOf("NATS", round, s, pace, counters, latency.Merge(), cpu, serverCpu, note);
        }
        finally
        {
            await DisposeAllAsync(subscribers);
        }
    }

    // ---- report ----

    private static string PacedReport(PacedSettings s, List<PacedResult> results, TimeSpan total, string loadBefore, string loadAfter)
    {
        var md = new StringBuilder();
        md.AppendLine("# Fan-out at a paced rate: publish-to-learner latency, GeoRelay against nats-server");
        md.AppendLine();
        md.AppendLine(Inv($"`bench/run fanout --paced {s.Rate} --learners {s.Learners} --seconds {s.Seconds:0.###} --rounds {s.Rounds} --warmup {s.WarmupSeconds:0.###} --inline-completions {(s.InlineCompletions ? "on" : "off")}` — one stream of {EntryBytes}-byte entries published at {s.Rate:N0} entries/s (not flat out) to {s.Learners:N0} learners on loopback, everything in this process except nats-server:"));
        md.AppendLine();
        md.AppendLine("- **GeoRelay**: leader, relay and members in the bench process (`LocalCluster`, fsync off, the topology of the flat-out table in `fanout.md`); the publisher is the `PublisherClient` SDK on the leader's publish port (waits for acknowledgement `accepted`, not one by one: it goes on at its pace); each learner is a `LearnerClient` SDK client on the relay's learner port (`ReuseBuffers`, otherwise defaults), its own connection, read with `await foreach (var e in client.SubscribeAsync(from))` as the README shows. The SDK rather than plain sockets: it is what a user's latency goes through (its socket reader, frame decoding, the hand-over to the enumerator).");
        md.AppendLine($"- **NATS**: `nats-server` (Debian package) on loopback; the publisher one NATS.Net {NatsClientVersion()} connection (`PublishAsync` with raw `byte[]`), each learner its own NATS.Net connection with a core subscription on subject `fanout` (pooled raw payloads from its bounded channel, full mode Wait).");
        md.AppendLine();
        md.AppendLine(Inv($"Pacing: a dedicated publisher thread wakes every ~1 ms (`Thread.Sleep(1)`, no spinning) and publishes the entries due by then (entry i is due at i / {s.Rate:N0} s after the start); due entries more than {MaxLate.TotalMilliseconds:0} ms old are skipped, not published late, so a late wake-up never sends a burst (the table counts them; the learners expect only what was published). The timer's wake-up intervals are in the table (tick p50 / p99 / max): that is the timer granularity; it moves when an entry goes out, not its measured latency, which starts at the publish call. Each payload's first 8 bytes are a `Stopwatch` timestamp taken just before its publish call; latency is from that to the moment the learner's loop has the entry."));
        md.AppendLine();
        md.AppendLine(Inv($"Warm-up: each run first publishes {s.WarmupSeconds:0.###} s at the same pace (payload stamp 0, not measured) on the same connections, after the cluster's own start-up entries; the process's JIT-compiled code carries over from run to run, so the first round runs on the least-warm code. Then {s.Seconds:0.###} s are measured: every learner decodes every entry and records its latency (HdrHistogram, µs, 3 significant digits, one histogram per recording thread merged at the end, so no counter is shared). A run ends when every learner has every measured entry, or after {PacedDrainStall.TotalSeconds:0} s with nothing arriving, or {PacedDrainMax.TotalSeconds:0} s after the last publish."));
        md.AppendLine();
        md.AppendLine(s.InlineCompletions
            ? "Socket completions: inline on the epoll thread (`DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1`, `--inline-completions on`), the daemons' setting. Here it applies to the whole process: the leader, relay and members, every learner (the SDK's socket reader and, through its synchronous hand-over, the learner's loop) and the NATS.Net clients share the epoll thread(s) (one on two cores), which the daemons' own note says is not for a process hosting several engines."
            : "Socket completions: on the thread pool (`DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0`, the default of `--inline-completions off`), .NET's default and so what a learner's own process does. The daemons run them inline, but here the leader, relay, members and every learner share one process, and inline they would all queue on one epoll thread (on two cores), which `SocketRuntime`'s note says is not for a process hosting several engines. The same setting holds for the NATS.Net clients.");
        md.AppendLine();
        md.AppendLine(Inv($"Rounds in ABBA order (round 1 GeoRelay then NATS, round 2 NATS then GeoRelay, ...), {s.Rounds} round{(s.Rounds == 1 ? "" : "s")}; every run is listed in the order run. Latency percentiles are over all learners' entries of the run; delivered / expected counts entries × learners."));
        md.AppendLine();
        md.AppendLine("| round | system | published (skipped) | delivered / expected | p50 ms | p90 ms | p99 ms | max ms | timer tick p50 / p99 / max ms | CPU s | notes |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in results)
            md.AppendLine(Inv($"| {r.Round} | {r.System} | {r.Pace.Published:N0} = {r.Pace.Published / r.Seconds:N0}/s ({r.Pace.Skipped:N0}) | {r.Delivered:N0} / {r.Expected:N0} | {r.P50Ms:F3} | {r.P90Ms:F3} | {r.P99Ms:F3} | {r.MaxMs:F3} | {r.Pace.TickP50Ms:F2} / {r.Pace.TickP99Ms:F2} / {r.Pace.TickMaxMs:F2} | {r.Cpu} | {r.Note} |"));
        md.AppendLine();
        md.AppendLine(Inv($"Target (issue 21): publish-to-learner p50 at most 1 ms at {s.Rate:N0} entries/s with {s.Learners:N0} learners on loopback (the issue's figures are 1,000/s and 1,000 learners), every entry delivered. Per round, with GeoRelay / NATS (a ratio below 1 means GeoRelay is faster):"));
        md.AppendLine();
        foreach (var round in results.GroupBy(r => r.Round))
        {
            var geo = round.Single(r => r.System == "GeoRelay");
            var nats = round.Single(r => r.System == "NATS");
            md.AppendLine($"- round {round.Key}: {TargetLine(s, geo)}; GeoRelay / NATS: p50 {Ratio(geo.P50Ms, nats.P50Ms)}, p90 {Ratio(geo.P90Ms, nats.P90Ms)}, p99 {Ratio(geo.P99Ms, nats.P99Ms)}.");
        }
        md.AppendLine();
        md.AppendLine("Read with care:");
        md.AppendLine();
        md.AppendLine(Inv($"- The machine is shared (load average {loadBefore} at the start, {loadAfter} at the end, on {Environment.ProcessorCount} cores), and each system shares this process's cores with all its learners (GeoRelay also with its leader, relay and members, NATS with nats-server beside): learners in the same process as the server are not free, and at many learners their wake-ups, not the server, can dominate the latency. Read the rounds side by side."));
        md.AppendLine("- CPU s is this process's CPU from the first warm-up publish to the end of the drain (for NATS + nats-server's); it includes the learners. The notes divide it by the deliveries of that window (warm-up included): at 1,000 entries/s and N learners the two cores can give at most 2,000,000 / (1,000 × N) µs per delivery (2 µs at 1,000 learners); above that, queues grow until batching brings the cost down, and latency with them.");
        md.AppendLine("- Skipped slots: the publisher thread woke more than 2 ms after an entry was due (it waited for a core); the published column gives the rate it kept.");
        md.AppendLine("- GeoRelay's relay notes: entries per Deliver frame encoded, and per frame queued on a learner connection; near 1 means each entry goes out on its own (a send per learner per entry).");
        AppendMachine(md, total);
        return md.ToString();
    }
}
