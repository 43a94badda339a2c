using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Bench.Harness;
using GeoRelay.Leader;
using GeoRelay.Cli.Demo;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using GeoRelay.Engines;

namespace GeoRelay.Bench.Datapath;

/// <summary>
/// End-to-end data path on loopback: the whole three-regions topology in this process
/// (<see cref="LocalCluster"/>), group fsync on, publishing through <c>LeaderNode.AppendAsync</c> as
/// fast as the window allows, timed from the first publish to the commit of the last entry. Each
/// size runs through the relays and then direct-to-every-member, back to back in the same process,
/// with the nodes' logs on disk and on tmpfs, in alternating order over several rounds; then the
/// leader-cost sweep over the members behind the relays (<see cref="MemberSweep"/>).
/// Writes <c>bench/results/datapath.md</c>.
/// </summary>
public static class DatapathBenchmark
{
    private const int MaxOutstanding = 65_536;
    private const double TargetEntriesPerSecond = 500_000;
    private static readonly TimeSpan FailoverAfter = TimeSpan.FromSeconds(3);

    private static LogLevel s_logLevel = LogLevel.None;

    private sealed record Load(int Size, int Count);

    private sealed record RunResult(string Mode, Load Load, TimeSpan Elapsed, TimeSpan Cpu, ulong FirstIndex, ulong LastIndex,
        List<(string Dc, string Route, long Bytes, long EntryBytes, long Batches, long Failovers)> PerDc, int Gen0, int Gen2, long Allocated,
        TimeSpan? FollowersCpu, EqualBatches Equal, long? FileBytes)
    {
        /// <summary>Bytes written to files per entry by this process (the whole cluster, in-process).</summary>
        public double? FileBytesPerEntry => FileBytes / (double)Load.Count;
        public bool Processes => FollowersCpu is not null;
        public double FollowersCpuMicrosPerEntry => FollowersCpu?.TotalMicroseconds / Load.Count ?? 0;
        public double EntriesPerSecond => Load.Count / Elapsed.TotalSeconds;
        public double MBps => (double)Load.Count * Load.Size / Elapsed.TotalSeconds / 1e6;
        public double CpuMicrosPerEntry => Cpu.TotalMicroseconds / Load.Count;
        public double AllocatedPerEntry => Allocated / (double)Load.Count;
        public long TotalBytes => PerDc.Sum(d => d.Bytes);
        public long RemoteBytes(string homeDc) => PerDc.Where(d => d.Dc != homeDc).Sum(d => d.Bytes);
    }

    /// <summary>Leader egress per DC over groups of entries each sent as exactly one batch per DC (see <see cref="EqualBatchesAsync"/>).</summary>
    private sealed record EqualBatches(int Group, long Entries, Dictionary<string, long> Bytes)
    {
        public double PerEntry(string dc) => Bytes[dc] / (double)Entries;
        public long Remote(string homeDc) => Bytes.Where(b => b.Key != homeDc).Sum(b => b.Value);
    }

    /// <summary>One throughput run with its storage and round, for the disk vs tmpfs table.</summary>
    private sealed record StorageRun(string Storage, int Round, RunResult Result);

    public static async Task<int> RunAsync(string[] args)
    {
        var loads = new List<Load> { new(128, 300_000), new(256, 500_000), new(1024, 100_000), new(16 * 1024, 10_000) };
        string output = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "datapath.md");
        int? localLevel = null;
        var modes = new HashSet<string> { "relays", "direct" };
        var placements = new HashSet<string> { "in-process", "processes" };
        var storages = new List<string> { "disk", "tmpfs" };
        var parts = new HashSet<string> { "throughput", "sweep" };
        int rounds = 2;
        var sweep = MemberSweep.Settings.Default;

        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    loads = loads.Select(l => l with { Count = Math.Max(1000, l.Count / 20) }).ToList();
                    sweep = sweep with { FlatCount = sweep.FlatCount / 10, PacedSeconds = 2, Warmup = 2_000 };
                    break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                case "--sizes":
                    var sizes = args[++i].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToHashSet();
                    loads = loads.Where(l => sizes.Contains(l.Size)).ToList();
                    break;
                case "--count": int count = int.Parse(args[++i], CultureInfo.InvariantCulture); loads = loads.Select(l => l with { Count = count }).ToList(); break;
                case "--local-level": localLevel = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--modes": modes = args[++i].Split(',').Select(m => m == "proxies" ? "relays" : m).ToHashSet(); break; // "proxies": the old spelling
                case "--followers": placements = args[++i].Split(',').ToHashSet(); break;
                case "--storage": storages = args[++i].Split(',').ToList(); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--only": parts = [args[++i]]; break;
                case "--members": sweep = sweep with { Members = args[++i].Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray() }; break;
                case "--log": s_logLevel = Enum.Parse<LogLevel>(args[++i], ignoreCase: true); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; options: --quick, --sizes 128,256,1024,16384, --count N, --modes relays,direct, --followers in-process,processes, --storage disk,tmpfs, --rounds 2, --only throughput|sweep (prints, writes no report), --members 8,24,48 (sweep), --local-level N, --log warning, --out FILE");
                    return 2;
            }
        }

        // Every node shares two cores here, so a relay can be starved past the 500 ms default and
        // abandoned; each needless failover re-sends the window and measures the failover, not the path.
        string yaml = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml"));
        // A fixed leader in this process (LeaderNode): the data path alone, with no election to wait for.
        yaml = Regex.Replace(yaml, @"elections: *\S+", "elections: false");
        yaml = Regex.Replace(yaml, @"failover-after: *\S+", $"failover-after: {FailoverAfter.TotalSeconds:F0}s");
        if (localLevel is { } level) yaml = Regex.Replace(yaml, @"local-level: *\d+", $"local-level: {level}");
        var topology = TopologyLoader.Parse(yaml, "three-regions.yaml").GetConfigOrThrow();
        var clock = Stopwatch.StartNew();
        double diskRate = double.NaN;
        var runs = new List<StorageRun>();
        if (parts.Contains("throughput"))
        {
            if (storages.Contains("disk"))
            {
                diskRate = DiskCeiling.MeasureWriteRate();
                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] disk: {diskRate / 1e6:F0} MB/s sequential (1 MiB writes, fsync every 64 MiB)");
            }
            foreach (var processes in new[] { false, true })
            {
                if (!placements.Contains(processes ? "processes" : "in-process")) continue;
                foreach (var load in loads)
                {
                    // ABBA: storages and modes swap order every round, so a drift in the machine's load hits both alike.
                    for (int round = 1; round <= rounds; round++)
                    {
                        bool reversed = round % 2 == 0;
                        foreach (var storage in reversed ? Enumerable.Reverse(storages) : storages)
                        {
                            using var tmpfs = storage == "tmpfs" ? new TmpfsTempDirectory() : null;
                            foreach (var mode in reversed ? ["direct", "relays"] : new[] { "relays", "direct" })
                            {
                                if (!modes.Contains(mode)) continue;
                                var options = mode == "relays" ? LeaderOptions.Default : LeaderOptions.Default with { UseRelays = false };
                                var r = await RunOnceAsync(topology, yaml, processes, options, mode, load, tmpfs);
                                runs.Add(new StorageRun(storage, round, r));
                                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {storage,-5} round {round} {Describe(r)}");
                            }
                        }
                    }
                }
            }
        }
        MemberSweep.Result? sweepRuns = null;
        if (parts.Contains("sweep"))
            sweepRuns = await MemberSweep.RunAsync(sweep, modes, rounds, s_logLevel, clock);

        // The earlier sections show round 1 on disk, one run per configuration, as before.
        (RunResult Relay, RunResult Direct)? Pair(bool processes, Load load)
        {
            var relay = runs.FirstOrDefault(x => x.Storage == "disk" && x.Round == 1 && x.Result.Processes == processes && x.Result.Load == load && x.Result.Mode == "relays");
            var direct = runs.FirstOrDefault(x => x.Storage == "disk" && x.Round == 1 && x.Result.Processes == processes && x.Result.Load == load && x.Result.Mode == "direct");
            return relay is null || direct is null ? null : (relay.Result, direct.Result);
        }
        var results = loads.Select(l => Pair(false, l)).OfType<(RunResult, RunResult)>().ToList();
        var separate = loads.Select(l => Pair(true, l)).OfType<(RunResult, RunResult)>().ToList();

        bool complete = results.Count == loads.Count && separate.Count == loads.Count && storages.Contains("tmpfs") && sweepRuns is not null;
        if (!complete)
        {
            // A partial run: the lines above and the new sections for what ran are the result.
            if (runs.Any(r => r.Storage == "tmpfs") && runs.Any(r => r.Storage == "disk")) Console.WriteLine(StorageSection(runs));
            if (sweepRuns is not null) Console.WriteLine(MemberSweep.Section(sweepRuns, sweep, rounds));
            return 0;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllText(output, Report(topology, results, separate, clock.Elapsed, diskRate, rounds) + Environment.NewLine + StorageSection(runs) + MemberSweep.Section(sweepRuns!, sweep, rounds));
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    private static string Describe(RunResult r) =>
        $"{(r.Processes ? "processes" : "in-process"),-10} {r.Mode,-7} {r.Load.Size,6} B x {r.Load.Count,7}: {r.EntriesPerSecond,10:N0} entries/s {r.MBps,8:F1} MB/s cpu {r.CpuMicrosPerEntry,6:F2}{(r.Processes ? $" (followers {r.FollowersCpuMicrosPerEntry:F2})" : "")} us/entry alloc {r.AllocatedPerEntry,6:F0} B/entry files {r.FileBytesPerEntry,6:F0} B/entry leader egress {r.TotalBytes / (double)r.Load.Count,8:F1} B/entry (" +
        string.Join(", ", r.PerDc.Select(d => $"{d.Dc} {d.Bytes / (double)r.Load.Count:F1}")) + $"; failovers {r.PerDc.Sum(d => d.Failovers)}) at equal batches of {r.Equal.Group}: " +
        string.Join(", ", r.Equal.Bytes.Select(b => $"{b.Key} {b.Value / (double)r.Equal.Entries:F2}"));

    /// <param name="processes">Relays and members run as `georelay` processes (this process's CPU is the leader's), else all in this process.</param>
    /// <param name="tmpfs">Set when the nodes' logs must be on tmpfs: checked, so a temp path taken elsewhere cannot pass for it.</param>
    private static async Task<RunResult> RunOnceAsync(TopologyConfig topology, string yaml, bool processes, LeaderOptions options, string mode, Load load,
        TmpfsTempDirectory? tmpfs = null)
    {
        using var loggers = LoggerFactory.Create(b =>
        {
            if (s_logLevel == LogLevel.None) b.AddProvider(NullLoggerProvider.Instance);
            else b.SetMinimumLevel(s_logLevel).AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        });
        await using var local = processes ? null : LocalCluster.Start(topology, options, loggers);
        await using var followers = processes ? await FollowerProcesses.StartAsync(yaml, options, loggers) : null;
        var leader = local?.Leader ?? followers!.Leader;
        if (tmpfs is not null && !tmpfs.Holds(local?.DataDirectory ?? followers!.Directory))
            throw new InvalidOperationException($"node data in {local?.DataDirectory ?? followers!.Directory}, not on tmpfs under {tmpfs.Path}");
        var payloads = Pool();
        long cursor = 0;

        // Warm-up: connections up, routes settled, JIT tiered; not measured.
        int warm = Math.Min(load.Count / 10, 20_000);
        cursor = Math.Max(warm, 1000);
        await PublishAsync(leader, payloads, load.Size, 0, (int)cursor);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);

        var before = leader.Host.Invoke(_ => leader.Engine.Status());
        ulong firstIndex = leader.Host.Invoke(_ => leader.Engine.LastIndex) + 1;
        int gen0 = GC.CollectionCount(0), gen2 = GC.CollectionCount(2);
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var followersCpu0 = followers?.FollowersCpu();
        long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        long? written0 = DiskCeiling.WrittenBytes();
        var sw = Stopwatch.StartNew();
        ulong last = await PublishAsync(leader, payloads, load.Size, cursor, load.Count);
        sw.Stop();
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var followersCpu = followers?.FollowersCpu() - followersCpu0;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
        long? written = DiskCeiling.WrittenBytes() - written0;
        gen0 = GC.CollectionCount(0) - gen0;
        gen2 = GC.CollectionCount(2) - gen2;
        var after = leader.Host.Invoke(_ => leader.Engine.Status());
        ulong commit = leader.Host.Invoke(_ => leader.Engine.CommitIndex);
        if (commit < last) throw new InvalidOperationException($"commit {commit} < last {last}");
        if (last - firstIndex + 1 != (ulong)load.Count) throw new InvalidOperationException($"indices {firstIndex}..{last} for {load.Count} entries");

        var perDc = new List<(string, string, long, long, long, long)>();
        foreach (var a in after)
        {
            var b = before.First(x => x.Name == a.Name);
            perDc.Add((a.Name, a.Route, a.BytesSent - b.BytesSent, a.EntryBytesSent - b.EntryBytesSent, a.Batches - b.Batches, a.Failovers - b.Failovers));
        }
        var equal = await EqualBatchesAsync(leader, payloads, load.Size, cursor + load.Count);
        return new RunResult(mode, load, sw.Elapsed, cpu, firstIndex, last, perDc, gen0, gen2, allocated, followersCpu, equal, written);
    }

    /// <summary>
    /// Egress with batching held equal in both modes: each group of entries is appended and flushed in one
    /// engine call, so it leaves as exactly one batch per DC (relay) or one Append per member (direct), and
    /// is delivered everywhere before the next. In the throughput runs the batch sizes follow the throughput,
    /// which differs between the modes, and zstd compresses larger batches slightly better.
    /// </summary>
    private static async Task<EqualBatches> EqualBatchesAsync(GeoRelay.Server.Hosting.LeaderNode leader, byte[] pool, int size, long cursor)
    {
        const int Groups = 40;
        int group = Math.Max(1, (128 << 10) / (size + 48)); // well under batch.max-bytes, so Append never flushes by itself
        var before = leader.Host.Invoke(_ => leader.Engine.Status());
        for (int g = 0; g < Groups; g++)
        {
            ulong last = leader.Host.Invoke(_ =>
            {
                long now = WallClock.UnixMicros();
                for (int i = 0; i < group; i++) leader.Engine.Append(default, Slice(pool, size, cursor++), now);
                leader.Engine.FlushAndSend();
                return leader.Engine.LastIndex;
            });
            foreach (var dc in leader.Topology.Datacenters) await leader.DeliveredToAsync(dc.Name, last).WaitAsync(TimeSpan.FromSeconds(60));
        }
        var after = leader.Host.Invoke(_ => leader.Engine.Status());
        var bytes = new Dictionary<string, long>();
        foreach (var a in after) bytes[a.Name] = a.BytesSent - before.First(b => b.Name == a.Name).BytesSent;
        return new EqualBatches(group, (long)Groups * group, bytes);
    }

    /// <summary>Publishes <paramref name="count"/> entries, at most <see cref="MaxOutstanding"/> uncommitted; returns the last index once committed.</summary>
    internal static async Task<ulong> PublishAsync(GeoRelay.Server.Hosting.LeaderNode leader, byte[] pool, int size, long first, int count)
    {
        var ring = new Task[MaxOutstanding];
        ulong last = 0;
        Task lastCommitted = Task.CompletedTask;
        for (int i = 0; i < count; i++)
        {
            var slot = ring[i % MaxOutstanding];
            if (slot is not null && !slot.IsCompleted) await slot.ConfigureAwait(false);
            var r = await leader.AppendAsync(Slice(pool, size, first + i)).ConfigureAwait(false);
            ring[i % MaxOutstanding] = r.Committed;
            lastCommitted = r.Committed;
            last = r.Index;
        }
        await lastCommitted.ConfigureAwait(false);
        return last;
    }

    /// <summary>
    /// A 32 MiB pool of JSON-like text with random hex values; entry i is the next slice, so no entry
    /// repeats within zstd's window (level 1 on the links) and compression finds roughly what it would
    /// in real telemetry (~2x: hex digits carry 4 bits per byte), neither all-zero nor incompressible.
    /// </summary>
    internal static byte[] Pool()
    {
        var random = new Random(42);
        var pool = new byte[32 << 20];
        const string hex = "0123456789abcdef";
        int pos = 0, field = 0;
        while (pos < pool.Length)
        {
            foreach (char c in $"{{\"f{field++ % 16}\":\"")
            {
                if (pos == pool.Length) break;
                pool[pos++] = (byte)c;
            }
            for (int k = 0; k < 12 && pos < pool.Length; k++) pool[pos++] = (byte)hex[random.Next(16)];
            foreach (char c in "\"},")
            {
                if (pos == pool.Length) break;
                pool[pos++] = (byte)c;
            }
        }
        return pool;
    }

    internal static ReadOnlyMemory<byte> Slice(byte[] pool, int size, long i) =>
        pool.AsMemory((int)(i * size % (pool.Length - size)), size);

    private static string Report(TopologyConfig topology, List<(RunResult Relay, RunResult Direct)> results,
        List<(RunResult Relay, RunResult Direct)> separate, TimeSpan total, double diskRate, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# Data path: publish to quorum commit on loopback");
        md.AppendLine();
        md.AppendLine("Command: `bench/run datapath` (= `dotnet run -c Release --project bench/GeoRelay.Bench -- datapath`), source `bench/GeoRelay.Bench/Datapath/`.");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine($"- whole benchmark: {total.TotalSeconds:F0} s");
        md.AppendLine();
        md.AppendLine("## Setup");
        md.AppendLine();
        md.AppendLine($"- Topology `topology/samples/three-regions.yaml` ({topology.Datacenters.Count} DCs, {topology.Datacenters.Sum(d => d.Members.Count)} members, quorum {topology.Quorum}), on loopback with fresh ports and a temp data directory per node; group fsync **on** (`fsync: true`), batch linger 1 ms, window 64 MiB, zstd level {topology.Defaults.CompressionLevel} across regions and {(topology.Defaults.LocalCompressionLevel == 0 ? "none" : "level " + topology.Defaults.LocalCompressionLevel)} inside a DC (`compression.level` {topology.Defaults.CompressionLevel}, `compression.local-level` {topology.Defaults.LocalCompressionLevel}), `failover-after` raised to {FailoverAfter.TotalSeconds:F0} s (see below), server GC off, `GCRetainVM` on.");
        md.AppendLine("- Two placements: **in-process** — every node in this process (`LocalCluster`: leader, 4 relays, 8 members); **processes** — the 4 relays and 8 members are `georelay relay`/`georelay member` processes (`GeoRelayProcess`) and only the leader (`LeaderNode`) and the publishing loop run in the benchmark process, so that process's CPU time is the leader's own.");
        md.AppendLine("- \"relays\" = `LeaderOptions.Default` (eu-west and ap-south through their first relay); \"direct\" = `LeaderOptions.Default with { UseRelays = false }` (leader sends to every member itself). Each entry size runs both, back to back, in the same process.");
        md.AppendLine($"- Publisher: `LeaderNode.AppendAsync` in a loop as fast as the window allows, at most {MaxOutstanding:N0} uncommitted entries outstanding; time is from the first publish to the commit (quorum durable) of the last entry. A warm-up of 10% of the count (1,000..20,000 entries) on the same cluster precedes each measured run and is not counted.");
        md.AppendLine("- Payloads: consecutive slices of a 32 MiB pool of JSON-like text with random hex values (no repeats within zstd's window; compresses about 2x).");
        md.AppendLine("- CPU µs/entry = `Process.TotalProcessorTime` delta over the measured entries, divided by entries: in-process, the *whole cluster* (leader + 4 relays + 8 members, fsync syscalls and the publisher); with processes, the benchmark process (leader + publisher) and, separately, the sum over the 12 follower processes. Allocated B/entry = `GC.GetTotalAllocatedBytes` delta of the benchmark process per entry.");
        md.AppendLine("- Leader egress = `LeaderEngine.Status()` `BytesSent` deltas per DC (bytes the leader wrote toward that DC, after framing and compression) over the measured entries.");
        md.AppendLine(string.Create(inv, $"- Every configuration runs {rounds} rounds on disk and {rounds} with the logs on tmpfs (see [Disk vs tmpfs](#disk-vs-tmpfs-what-the-protocol-costs-and-what-the-disk-allows), which lists every round); the sections up to the verdicts show round 1 on disk, one run per configuration. A shared 2-core machine that other jobs load too (see the load average above): throughput has varied up to 2.5x run to run, so compare figures within one file; the egress bytes are steady unless a relay fails over."));
        md.AppendLine();

        md.AppendLine("## Throughput");
        md.AppendLine();
        md.AppendLine("All nodes in one process:");
        md.AppendLine();
        md.AppendLine("| entry size | entries | mode | elapsed s | entries/s | MB/s (payload) | CPU µs/entry (whole cluster) | allocated B/entry | file bytes written/entry | gen0 / gen2 GCs |");
        md.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (p, d) in results)
            foreach (var r in new[] { p, d })
                md.AppendLine(string.Create(inv, $"| {Size(r.Load.Size)} | {r.Load.Count:N0} | {r.Mode} | {r.Elapsed.TotalSeconds:F2} | {r.EntriesPerSecond:N0} | {r.MBps:F1} | {r.CpuMicrosPerEntry:F2} | {r.AllocatedPerEntry:F0} | {r.FileBytesPerEntry:F0} | {r.Gen0} / {r.Gen2} |"));
        md.AppendLine();
        md.AppendLine(string.Create(inv, $"File bytes written = `write_bytes` of `/proc/self/io` over the run: every node's log records (the leader and {topology.Datacenters.Sum(d => d.Members.Count)} members fsync theirs; the relays' retention logs are written, not fsynced). The same disk measured alone at the start of this run: **{diskRate / 1e6:F0} MB/s** sequential (1 MiB writes into a fresh file in the temp directory, an fsync every 64 MiB)."));
        md.AppendLine();
        md.AppendLine("## Leader CPU per entry (followers as processes)");
        md.AppendLine();
        md.AppendLine("Relays and members as `georelay` processes; the leader alone in the benchmark process (with the publishing loop, which is part of it: `AppendAsync` per entry).");
        md.AppendLine();
        md.AppendLine("| entry size | entries | mode | elapsed s | entries/s | MB/s (payload) | **leader CPU µs/entry** | followers CPU µs/entry (12 processes) | leader allocated B/entry | failovers |");
        md.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (p, d) in separate)
            foreach (var r in new[] { p, d })
                md.AppendLine(string.Create(inv, $"| {Size(r.Load.Size)} | {r.Load.Count:N0} | {r.Mode} | {r.Elapsed.TotalSeconds:F2} | {r.EntriesPerSecond:N0} | {r.MBps:F1} | **{r.CpuMicrosPerEntry:F2}** | {r.FollowersCpuMicrosPerEntry:F2} | {r.AllocatedPerEntry:F0} | {r.PerDc.Sum(x => x.Failovers)} |"));
        md.AppendLine();

        md.AppendLine("## Leader egress per DC (bytes per entry)");
        md.AppendLine();
        var dcs = results[0].Relay.PerDc.Select(x => x.Dc).ToList();
        md.AppendLine("| entry size | mode | " + string.Join(" | ", dcs.Select(dc => $"{dc} B/entry (route)")) + " | total B/entry | total MB | batches (all DCs) | failovers during run |");
        md.AppendLine("|---:|---|" + string.Concat(dcs.Select(_ => "---:|")) + "---:|---:|---:|---:|");
        foreach (var (p, d) in results)
            foreach (var r in new[] { p, d })
                md.AppendLine(string.Create(inv, $"| {Size(r.Load.Size)} | {r.Mode} | ") +
                    string.Join(" | ", r.PerDc.Select(x => string.Create(inv, $"{x.Bytes / (double)r.Load.Count:F1} ({x.Route})"))) +
                    string.Create(inv, $" | {r.TotalBytes / (double)r.Load.Count:F1} | {r.TotalBytes / 1e6:F1} | {r.PerDc.Sum(x => x.Batches):N0} | {r.PerDc.Sum(x => x.Failovers)} |"));
        md.AppendLine();

        md.AppendLine("## Leader egress: relays vs direct (same run)");
        md.AppendLine();
        string home = topology.LeaderDatacenter.Name;
        int homeMembers = topology.LeaderDatacenter.Members.Count;
        int remoteMembers = topology.Datacenters.Where(d => d.Name != home).Sum(d => d.Members.Count);
        int remoteDcs = topology.Datacenters.Count(d => d.Name != home);
        md.AppendLine($"What crosses a region boundary is what a geo relay saves: through relays the leader sends one copy per remote DC ({remoteDcs}), direct it sends one per remote member ({remoteMembers}), so the floor for the cross-region ratio is {remoteDcs}/{remoteMembers} = {remoteDcs / (double)remoteMembers:F3}. The leader's own DC ({home}, {homeMembers} members, no relay) is served directly in both modes: the same bytes in both runs, shown separately.");
        md.AppendLine();
        md.AppendLine("| entry size | relays cross-region MB | direct cross-region MB | cross-region relays / direct | ≤ 1/3 | own-DC MB (both) | total relays / direct |");
        md.AppendLine("|---:|---:|---:|---:|---|---:|---:|");
        bool egressPass = true;
        foreach (var (p, d) in results)
        {
            double ratio = p.RemoteBytes(home) / (double)d.RemoteBytes(home);
            bool ok = ratio <= 1.0 / 3;
            egressPass &= ok;
            md.AppendLine(string.Create(inv, $"| {Size(p.Load.Size)} | {p.RemoteBytes(home) / 1e6:F2} | {d.RemoteBytes(home) / 1e6:F2} | {ratio:F3} | {(ok ? "PASS" : "FAIL")} | {(p.TotalBytes - p.RemoteBytes(home)) / 1e6:F2} | {p.TotalBytes / (double)d.TotalBytes:F3} |"));
        }
        md.AppendLine();

        md.AppendLine("### At equal batching");
        md.AppendLine();
        md.AppendLine("In the throughput runs above each mode batches what arrived in its 1 ms ticks, so the batch sizes follow that mode's throughput, and zstd compresses larger batches a little better: the ratio there moves with the throughput. Here both modes send the same batches — groups of entries appended and flushed in one engine call (one batch per DC, or one Append per member), each delivered everywhere before the next (40 groups, in-process cluster, after the throughput run) — so the ratio shows what the encoding costs.");
        md.AppendLine();
        md.AppendLine("| entry size | entries per batch | relays cross-region B/entry (per proxied DC) | direct cross-region B/entry (per DC) | cross-region relays / direct | < 1/3 |");
        md.AppendLine("|---:|---:|---:|---:|---:|---|");
        bool equalPass = true;
        foreach (var (p, d) in results)
        {
            double ratio = p.Equal.Remote(home) / (double)d.Equal.Remote(home);
            bool ok = ratio < 1.0 / 3;
            equalPass &= ok;
            md.AppendLine(string.Create(inv, $"| {Size(p.Load.Size)} | {p.Equal.Group:N0} | {p.Equal.Remote(home) / (double)p.Equal.Entries / remoteDcs:F2} | {d.Equal.Remote(home) / (double)d.Equal.Entries / remoteDcs:F2} | {ratio:F4} | {(ok ? "PASS" : "FAIL")} |"));
        }
        md.AppendLine();
        md.AppendLine("## Verdicts");
        md.AppendLine();
        var r256 = results.FirstOrDefault(x => x.Relay.Load.Size == 256).Relay;
        if (r256 is not null)
        {
            bool ok = r256.EntriesPerSecond >= TargetEntriesPerSecond;
            md.AppendLine(string.Create(inv, $"- **{(ok ? "PASS" : "FAIL")}** — throughput target ≥ {TargetEntriesPerSecond:N0} entries/s of 256 B committed (group fsync on): measured **{r256.EntriesPerSecond:N0} entries/s** ({r256.MBps:F1} MB/s) through the relays with every node in one process, {r256.EntriesPerSecond / TargetEntriesPerSecond:P0} of target."));
            if (r256.FileBytesPerEntry is { } perEntry && perEntry > 0)
                md.AppendLine(string.Create(inv, $"- The disk's ceiling for that run: the cluster wrote {perEntry:F0} B of log files per 256 B entry, so {diskRate / 1e6:F0} MB/s of sequential writes allow at most **{diskRate / perEntry:N0} entries/s** with nothing else running; {TargetEntriesPerSecond:N0}/s would need {TargetEntriesPerSecond * perEntry / 1e9:F2} GB/s."));
        }
        var s256 = separate.FirstOrDefault(x => x.Relay.Load.Size == 256).Relay;
        if (s256 is not null)
            md.AppendLine(string.Create(inv, $"- With the followers as processes: **{s256.EntriesPerSecond:N0} entries/s** of 256 B through the relays; the leader's own CPU **{s256.CpuMicrosPerEntry:F2} µs/entry** (500,000/s on one core would need ≤ 2 µs), the 12 followers {s256.FollowersCpuMicrosPerEntry:F2} µs/entry together."));
        md.AppendLine(string.Create(inv, $"- **{(equalPass ? "PASS" : "FAIL")}** — cross-region leader egress strictly below 1/3 of direct at equal batching: ratios ") +
            string.Join(", ", results.Select(x => string.Create(inv, $"{Size(x.Relay.Load.Size)} {x.Relay.Equal.Remote(home) / (double)x.Direct.Equal.Remote(home):F4}"))) + ".");
        md.AppendLine($"- **{(egressPass ? "PASS" : "FAIL")}** — cross-region leader egress ≤ 1/3 of the direct run's in the throughput runs: ratios " +
            string.Join(", ", results.Select(x => string.Create(inv, $"{Size(x.Relay.Load.Size)} {x.Relay.RemoteBytes(home) / (double)x.Direct.RemoteBytes(home):F3}"))) +
            $" (floor {remoteDcs}/{remoteMembers}: the relay stream is one zstd-compressed copy, each direct member stream is one too).");
        long failovers = results.Sum(x => x.Relay.PerDc.Sum(d => d.Failovers));
        if (failovers > 0)
            md.AppendLine($"- Observed: {failovers} relay failovers during the measured relay runs ({string.Join(", ", results.Where(x => x.Relay.PerDc.Sum(d => d.Failovers) > 0).Select(x => Size(x.Relay.Load.Size)))}): with every node sharing 2 saturated cores, a relay's acks/heartbeats can stay silent past `failover-after` ({FailoverAfter.TotalSeconds:F0} s here), the leader switches relay and re-sends, which costs throughput and adds egress. The direct runs have no relays to fail over.");
        return md.ToString();
    }

    private const double TargetClusterMicrosPerEntry = 8; // issue #21: whole cluster, 256 B, through relays, logs on tmpfs

    /// <summary>Every round of every configuration, disk and tmpfs side by side.</summary>
    private static string StorageSection(List<StorageRun> runs)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("## Disk vs tmpfs: what the protocol costs and what the disk allows");
        md.AppendLine();
        md.AppendLine("- The same configurations as above, once with every node's data directory on the disk (the temp directory, as above) and once in a fresh directory under `/dev/shm` (tmpfs; `TMPDIR` pointed there for the run, each node's directory checked to lie in it, all deleted afterwards). Group fsync stays **on** in both: on tmpfs an fsync returns at once, so the tmpfs runs show what the protocol and the code cost, the disk runs what the disk allows.");
        md.AppendLine("- Order for each entry size: round 1 disk (relays, direct) then tmpfs (relays, direct); round 2 the reverse (tmpfs direct, relays; disk direct, relays), and so on alternately. Every round is listed; none is dropped.");
        md.AppendLine("- CPU µs/entry as above: in-process the whole cluster, with processes the benchmark process (leader + publisher) and the 12 follower processes summed.");
        md.AppendLine();
        foreach (bool processes in new[] { false, true })
        {
            var keys = runs.Where(r => r.Result.Processes == processes && r.Storage == "disk")
                .Select(r => (r.Result.Load, r.Result.Mode, r.Round)).Distinct().ToList();
            if (keys.Count == 0) continue;
            md.AppendLine(processes ? "Followers as processes (leader alone in the benchmark process):" : "All nodes in one process:");
            md.AppendLine();
            md.AppendLine(processes
                ? "| entry size | mode | round | disk entries/s | tmpfs entries/s | tmpfs / disk | disk leader CPU µs/entry | **tmpfs leader CPU µs/entry** | disk followers CPU µs/entry | tmpfs followers CPU µs/entry | failovers disk / tmpfs |"
                : "| entry size | mode | round | disk entries/s | tmpfs entries/s | tmpfs / disk | disk CPU µs/entry (whole cluster) | **tmpfs CPU µs/entry (whole cluster)** | failovers disk / tmpfs |");
            md.AppendLine(processes ? "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|" : "|---:|---|---:|---:|---:|---:|---:|---:|---|");
            foreach (var (load, mode, round) in keys.OrderBy(k => k.Load.Size).ThenBy(k => k.Mode == "direct").ThenBy(k => k.Round))
            {
                var d = runs.First(r => r.Storage == "disk" && r.Result.Processes == processes && r.Result.Load == load && r.Result.Mode == mode && r.Round == round).Result;
                var t = runs.FirstOrDefault(r => r.Storage == "tmpfs" && r.Result.Processes == processes && r.Result.Load == load && r.Result.Mode == mode && r.Round == round)?.Result;
                if (t is null) continue;
                string failovers = $"{d.PerDc.Sum(x => x.Failovers)} / {t.PerDc.Sum(x => x.Failovers)}";
                md.AppendLine(processes
                    ? string.Create(inv, $"| {Size(load.Size)} | {mode} | {round} | {d.EntriesPerSecond:N0} | {t.EntriesPerSecond:N0} | {t.EntriesPerSecond / d.EntriesPerSecond:F2} | {d.CpuMicrosPerEntry:F2} | **{t.CpuMicrosPerEntry:F2}** | {d.FollowersCpuMicrosPerEntry:F2} | {t.FollowersCpuMicrosPerEntry:F2} | {failovers} |")
                    : string.Create(inv, $"| {Size(load.Size)} | {mode} | {round} | {d.EntriesPerSecond:N0} | {t.EntriesPerSecond:N0} | {t.EntriesPerSecond / d.EntriesPerSecond:F2} | {d.CpuMicrosPerEntry:F2} | **{t.CpuMicrosPerEntry:F2}** | {failovers} |"));
            }
            md.AppendLine();
        }
        var target = runs.Where(r => r.Storage == "tmpfs" && !r.Result.Processes && r.Result.Load.Size == 256 && r.Result.Mode == "relays").OrderBy(r => r.Round).ToList();
        if (target.Count > 0)
        {
            int met = target.Count(r => r.Result.CpuMicrosPerEntry <= TargetClusterMicrosPerEntry);
            md.AppendLine(string.Create(inv, $"- **{(met == target.Count ? "MET" : "MISSED")}** — whole cluster in one process, 256 B through the relays, logs on tmpfs: CPU ≤ {TargetClusterMicrosPerEntry:F0} µs/entry (issue #21): ") +
                string.Join(", ", target.Select(r => string.Create(inv, $"round {r.Round} **{r.Result.CpuMicrosPerEntry:F2} µs**"))) +
                string.Create(inv, $" (met in {met} of {target.Count} rounds; {target.Average(r => r.Result.EntriesPerSecond):N0} entries/s on average)."));
            md.AppendLine();
        }
        return md.ToString();
    }

    private static string Size(int bytes) => bytes >= 1024 ? $"{bytes / 1024} KiB" : $"{bytes} B";

}
