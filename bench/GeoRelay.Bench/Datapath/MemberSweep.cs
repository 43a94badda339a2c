using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Leader;
using GeoRelay.Server.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Bench.Datapath;

/// <summary>
/// Leader CPU per entry as the members behind the two relayed datacenters grow (issue #21): every relay and member a
/// `georelay` process, the leader alone in this process, through the relays and direct, flat out and at a paced rate.
/// </summary>
internal static class MemberSweep
{
    private const int HomeMembers = 2;          // us-east, served directly, as in three-regions.yaml
    private const int RelaysPerDatacenter = 2;  // as in three-regions.yaml: the active one and a standby
    private const int Quorum = 5;               // the sample's majority of 8, at every size
    private const double TargetSameRate = 1.1;  // 24 members within 1.1x of 8 at the same offered rate
    private const double TargetVsDirect = 3;    // at 24 members, at least 3x less than direct sends
    private const double SettledFollowerMillisPerSecond = 30; // an idle follower measured here used ~20 ms/s
    private const string StartedKey = "georelay-bench.sweep.started"; // on a timeout after the processes started
    private const int MaxUndelivered = 10_000;  // entries published but not yet on every member (~2 MB of 195 B entries)

    public sealed record Settings(int[] Members, int EntrySize, int FlatCount, int PacedRate, int PacedSeconds, int Warmup, double IdleSeconds, TimeSpan StartTimeout, TimeSpan SettleTimeout, TimeSpan MaxPublishTime)
    {
        public static Settings Default { get; } = new([8, 24, 48], 195, 100_000, 5_000, 10, 20_000, 3, TimeSpan.FromSeconds(240), TimeSpan.FromSeconds(90), TimeSpan.FromSeconds(12));
        public int PacedCount => PacedRate * PacedSeconds;
    }

    /// <param name="Rate">Entries per second offered, or null for flat out.</param>
    public sealed record SweepRun(int Members, string Mode, int? Rate, int Round, int Entries, TimeSpan Elapsed, TimeSpan LeaderCpu,
        TimeSpan FollowersCpu, TimeSpan RelaysCpu, int Followers, long Allocated, long Egress, long Failovers, TimeSpan StartTime, TimeSpan Settled, double IdleLeaderCpu, double IdleFollowersCpu)
    {
        public double EntriesPerSecond => Entries / Elapsed.TotalSeconds;
        public double LeaderMicrosPerEntry => LeaderCpu.TotalMicroseconds / Entries;
        public double FollowersMicrosPerEntry => FollowersCpu.TotalMicroseconds / Entries;
        public double RelaysMicrosPerEntry => RelaysCpu.TotalMicroseconds / Entries;
    }

    public sealed record Result(List<SweepRun> Runs, List<string> Notes, TimeSpan Elapsed);

    /// <summary>
    /// The three-regions shape with <paramref name="members"/> members in all: two in the leader's DC, the rest split
    /// between the two relayed DCs. Only what the data path needs is listed (peer ports; the leader's publish port).
    /// </summary>
    public static string Yaml(int members)
    {
        if (members < HomeMembers + 2) throw new ArgumentOutOfRangeException(nameof(members), members, "at least one member in each DC");
        int remote = members - HomeMembers;
        var dcs = new (string Name, string Prefix, int Members, int Relays)[]
        {
            ("us-east", "us", HomeMembers, 0), ("eu-west", "eu", (remote + 1) / 2, RelaysPerDatacenter), ("ap-south", "ap", remote / 2, RelaysPerDatacenter),
        };
        int port = 20_000; // placeholders: FollowerProcesses swaps every distinct port for a free one
        var yaml = new StringBuilder();
        yaml.AppendLine($"cluster: sweep-{members}");
        yaml.AppendLine("leader: us-leader");
        yaml.AppendLine($"quorum: {Quorum}");
        yaml.AppendLine("insecure: true");
        yaml.AppendLine("defaults:");
        yaml.AppendLine("  failover-after: 3s");
        yaml.AppendLine("  fsync: false");
        yaml.AppendLine("  elections: false");
        yaml.AppendLine("datacenters:");
        var nodes = new StringBuilder();
        nodes.AppendLine($"  us-leader: {{ dc: us-east, publish: 127.0.0.1:{port++}, listen: 127.0.0.1:{port++} }}");
        foreach (var dc in dcs)
        {
            var relays = Enumerable.Range(1, dc.Relays).Select(i => $"{dc.Prefix}-p{i}").ToList();
            var ids = Enumerable.Range(1, dc.Members).Select(i => $"{dc.Prefix}-m{i}").ToList();
            yaml.AppendLine($"  {dc.Name}:");
            yaml.AppendLine($"    relays: [{string.Join(", ", relays)}]");
            yaml.AppendLine($"    members: [{string.Join(", ", ids)}]");
            foreach (var id in relays.Concat(ids)) nodes.AppendLine($"  {id}: {{ dc: {dc.Name}, listen: 127.0.0.1:{port++} }}");
        }
        yaml.AppendLine("nodes:");
        yaml.Append(nodes);
        return yaml.ToString();
    }

    public static async Task<Result> RunAsync(Settings settings, HashSet<string> modes, int rounds, LogLevel logLevel, Stopwatch clock)
    {
        var started = clock.Elapsed;
        var pool = DatapathBenchmark.Pool();
        var runs = new List<SweepRun>();
        var notes = new List<string>();
        var unfit = new HashSet<int>();
        for (int round = 1; round <= rounds; round++)
        {
            // Sizes, modes and rates all swap order every round, so a drift in the machine's load hits both sides alike.
            bool reversed = round % 2 == 0;
            foreach (int members in reversed ? settings.Members.Reverse() : settings.Members)
            {
                foreach (var mode in reversed ? ["direct", "relays"] : new[] { "relays", "direct" })
                {
                    if (!modes.Contains(mode) || unfit.Contains(members)) continue;
                    try
                    {
                        var cluster = await RunClusterAsync(settings, members, mode, round, reversed, pool, logLevel);
                        runs.AddRange(cluster);
                        foreach (var r in cluster) Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {Describe(r)}");
                    }
                    catch (TimeoutException e)
                    {
                        // Too many processes for this machine, or a cluster too slow to finish: say so and go on with what fits.
                        bool running = e.Data.Contains(StartedKey);
                        if (!running) unfit.Add(members);
                        string note = running
                            ? $"{members} members ({mode}, round {round}): {e.Message.Split('\n')[0]}"
                            : $"{members} members ({mode}, round {round}): the {members + 2 * RelaysPerDatacenter} follower processes did not all start within {settings.StartTimeout.TotalSeconds:F0} s; this size is left out from here on. {e.Message.Split('\n')[0]}";
                        notes.Add(note);
                        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] not measured: {note}");
                    }
                }
            }
        }
        return new Result(runs, notes, clock.Elapsed - started);
    }

    private static async Task<List<SweepRun>> RunClusterAsync(Settings settings, int members, string mode, int round, bool reversed, byte[] pool, LogLevel logLevel)
    {
        using var loggers = LoggerFactory.Create(b =>
        {
            if (logLevel == LogLevel.None) b.AddProvider(NullLoggerProvider.Instance);
            else b.SetMinimumLevel(logLevel).AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        });
        var options = mode == "relays" ? LeaderOptions.Default : LeaderOptions.Default with { UseRelays = false };
        // Logs in memory: with fsync off the disk would only add its writeback, which is not the leader's cost.
        using var tmpfs = new TmpfsTempDirectory();
        var start = Stopwatch.StartNew();
        await using var followers = await FollowerProcesses.StartAsync(Yaml(members), options, loggers, settings.StartTimeout);
        var startTime = start.Elapsed;
        if (!tmpfs.Holds(followers.Directory)) throw new InvalidOperationException($"node data in {followers.Directory}, not on tmpfs under {tmpfs.Path}");
        var leader = followers.Leader;
        try
        {
            return await MeasureAsync(settings, followers, members, mode, round, reversed, pool, startTime);
        }
        catch (TimeoutException e)
        {
            e.Data[StartedKey] = true;
            throw;
        }
    }

    private static async Task<List<SweepRun>> MeasureAsync(Settings settings, FollowerProcesses followers, int members, string mode, int round,
        bool reversed, byte[] pool, TimeSpan startTime)
    {
        var leader = followers.Leader;

        // Warm-up: connections up, routes settled, JIT tiered; not measured.
        long cursor = await PublishAsync(leader, pool, settings.EntrySize, 0, settings.Warmup, null, settings.MaxPublishTime);

        var settled = await SettleAsync(followers, settings.SettleTimeout);

        // Idle: what the cluster costs per second with nothing to send (heartbeats, timers), which a paced run pays per entry too.
        var idle = await IdleCpuAsync(followers, settings.IdleSeconds);

        var runs = new List<SweepRun>();
        foreach (int? rate in reversed ? [settings.PacedRate, null] : new int?[] { null, settings.PacedRate })
        {
            int count = rate is null ? settings.FlatCount : settings.PacedCount;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            var before = leader.Host.Invoke(_ => leader.Engine.Status());
            var process = Process.GetCurrentProcess();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var followersCpu0 = followers.FollowersCpu();
            var relaysCpu0 = followers.FollowersCpu(relaysOnly: true);
            long allocated0 = GC.GetTotalAllocatedBytes(precise: true);
            var sw = Stopwatch.StartNew();
            int published = await PublishAsync(leader, pool, settings.EntrySize, cursor, count, rate, settings.MaxPublishTime);
            sw.Stop();
            process.Refresh();
            var cpu = process.TotalProcessorTime - cpu0;
            var followersCpu = followers.FollowersCpu() - followersCpu0;
            var relaysCpu = followers.FollowersCpu(relaysOnly: true) - relaysCpu0;
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated0;
            var after = leader.Host.Invoke(_ => leader.Engine.Status());
            cursor += published;
            long egress = 0, failovers = 0;
            foreach (var a in after)
            {
                var b = before.First(x => x.Name == a.Name);
                egress += a.BytesSent - b.BytesSent;
                failovers += a.Failovers - b.Failovers;
            }
            runs.Add(new SweepRun(members, mode, rate, round, published, sw.Elapsed, cpu, followersCpu, relaysCpu, followers.Count, allocated, egress, failovers, startTime,
                settled, idle.Leader, idle.Followers));
        }
        return runs;
    }

    /// <summary>
    /// Waits until the followers are down to what idle processes use (under <see cref="SettledFollowerMillisPerSecond"/> per
    /// process for two seconds running), at most <paramref name="max"/>. Fresh processes recompile their hot code at the
    /// next JIT tier once traffic has run, about a CPU second each, which on two cores keeps the machine busy for many
    /// seconds after the warm-up; measured then, the runs would compete with it. Returns the time waited.
    /// </summary>
    private static async Task<TimeSpan> SettleAsync(FollowerProcesses followers, TimeSpan max)
    {
        var sw = Stopwatch.StartNew();
        for (int calm = 0; calm < 2 && sw.Elapsed < max;)
        {
            var cpu0 = followers.FollowersCpu();
            await Task.Delay(1000);
            double millis = (followers.FollowersCpu() - cpu0).TotalMilliseconds;
            calm = millis < SettledFollowerMillisPerSecond * followers.Count ? calm + 1 : 0;
        }
        return sw.Elapsed;
    }

    /// <summary>CPU seconds per second of the benchmark process and of the followers over <paramref name="seconds"/> with nothing published.</summary>
    private static async Task<(double Leader, double Followers)> IdleCpuAsync(FollowerProcesses followers, double seconds)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var followers0 = followers.FollowersCpu();
        var sw = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        process.Refresh();
        double elapsed = sw.Elapsed.TotalSeconds;
        return ((process.TotalProcessorTime - cpu0).TotalSeconds / elapsed, (followers.FollowersCpu() - followers0).TotalSeconds / elapsed);
    }

    /// <summary>
    /// Publishes <paramref name="count"/> entries from <paramref name="first"/>, flat out (<paramref name="rate"/> null) or at
    /// <paramref name="rate"/> per second, and returns once every member holds the last one; stops publishing early after
    /// <paramref name="maxTime"/> (a cluster too slow for the count or the rate). At most <see cref="MaxUndelivered"/> entries
    /// are not yet on every member, so flat out means as fast as the slowest member takes them and the final wait is short.
    /// Paced, it does not spin (a spin would count as leader CPU): on each timer tick (about 1 ms) the entries due by then
    /// are appended, then the loop sleeps. Returns the number published.
    /// </summary>
    private static async Task<int> PublishAsync(LeaderNode leader, byte[] pool, int size, long first, int count, int? rate, TimeSpan maxTime)
    {
        const int Group = 500;
        var undelivered = new Queue<Task>();
        var clock = Stopwatch.StartNew();
        ulong last = 0;
        int i = 0;
        while (i < count && clock.Elapsed < maxTime)
        {
            long due = rate is { } perSecond ? Math.Min(count, (long)(clock.Elapsed.TotalSeconds * perSecond) + 1) : count;
            for (; i < due && clock.Elapsed < maxTime; i++)
            {
                if (undelivered.Count * Group >= MaxUndelivered) await undelivered.Dequeue().ConfigureAwait(false);
                last = (await leader.AppendAsync(DatapathBenchmark.Slice(pool, size, first + i)).ConfigureAwait(false)).Index;
                if ((i + 1) % Group == 0) undelivered.Enqueue(DeliveredEverywhereAsync(leader, last));
            }
            if (rate is not null && i < count) await Task.Delay(1).ConfigureAwait(false);
        }
        try
        {
            await DeliveredEverywhereAsync(leader, last).WaitAsync(TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"entry {last} was not on every member 120 s after the last publish ({i:N0} published{(rate is null ? " flat out" : $" at {rate}/s")})");
        }
        return i;
    }

    private static Task DeliveredEverywhereAsync(LeaderNode leader, ulong index) =>
        Task.WhenAll(leader.Topology.Datacenters.Select(dc => leader.DeliveredToAsync(dc.Name, index)));

    private static string RateName(int? rate) => rate is { } r ? string.Create(CultureInfo.InvariantCulture, $"{r:N0}/s") : "flat out";

    private static string Describe(SweepRun r) => string.Create(CultureInfo.InvariantCulture,
        $"sweep {r.Members,2} members {r.Mode,-6} {RateName(r.Rate),-8} round {r.Round}: {r.Entries:N0} entries {r.EntriesPerSecond,9:N0}/s leader cpu {r.LeaderMicrosPerEntry,6:F2} us/entry followers {r.FollowersMicrosPerEntry,7:F2} us/entry (relays {r.RelaysMicrosPerEntry:F2}; {r.Followers} processes, started in {r.StartTime.TotalSeconds:F0} s, settled in {r.Settled.TotalSeconds:F0} s) idle cpu leader {r.IdleLeaderCpu * 1000:F0} ms/s followers {r.IdleFollowersCpu * 1000:F0} ms/s alloc {r.Allocated / (double)r.Entries:F0} B/entry egress {r.Egress / (double)r.Entries:F1} B/entry failovers {r.Failovers}");

    public static string Section(Result result, Settings settings, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        var runs = result.Runs;
        var md = new StringBuilder();
        md.AppendLine("## Leader CPU vs members behind the relays (followers as processes)");
        md.AppendLine();
        md.AppendLine(string.Create(inv, $"- Topology generated for each size (`MemberSweep.Yaml`), the shape of `three-regions.yaml`: us-east holds the leader and {HomeMembers} members (served directly); eu-west and ap-south each {RelaysPerDatacenter} relays and half the other members ({string.Join(", ", settings.Members.Select(m => $"{m} = {HomeMembers} + {(m - HomeMembers + 1) / 2} + {(m - HomeMembers) / 2}"))}). Nodes list only their peer port (and the leader its publish port). `quorum: {Quorum}` at every size: the sample's majority of 8, since the topology has no non-voting members (every member counts toward a majority) and elections are off here, so commit needs the same acks at every size."));
        md.AppendLine(string.Create(inv, $"- Every relay and member a `georelay relay`/`georelay member` process, the leader (`LeaderNode`) and the publisher in the benchmark process; fsync **off**, every node's log on tmpfs (a fresh directory under `/dev/shm`, deleted afterwards), `failover-after` 3 s, compression as the sample (zstd 1 across regions, none inside a DC). Entries of {settings.EntrySize} B from the same JSON-like pool."));
        md.AppendLine(string.Create(inv, $"- \"relays\" = `LeaderOptions.Default`; \"direct\" = `LeaderOptions.Default with {{ UseRelays = false }}` (the leader sends to every member itself; the relays still run, idle)."));
        md.AppendLine(string.Create(inv, $"- Flat out: {settings.FlatCount:N0} entries as fast as the slowest member takes them (at most {MaxUndelivered:N0} entries not yet on every member). Paced: {settings.PacedRate:N0} entries/s for {settings.PacedSeconds} s ({settings.PacedCount:N0} entries): on each timer tick (about 1 ms) the publisher appends the entries due by then and sleeps, no spinning (natural batching: those entries leave together). Either stops publishing after {settings.MaxPublishTime.TotalSeconds:F0} s (a cluster too slow for it; the entries column says how many went)."));
        md.AppendLine(string.Create(inv, $"- Time and CPU from the first publish until the last entry is durable on every member of every DC (`DeliveredToAsync` for each DC), not just on a quorum, so what the leader still sends to the slower DC counts. Leader CPU µs/entry = benchmark process `TotalProcessorTime` delta / entries (the leader engine and its connections, the publisher, and the threads reading the children's output); followers = the sum over the follower processes. Egress = the leader's `BytesSent` over all DCs. Idle CPU = CPU ms per second of the benchmark process and of all followers over {settings.IdleSeconds:F0} s with nothing published, after the warm-up (heartbeats and timers; a paced run pays it per entry too)."));
        md.AppendLine(string.Create(inv, $"- Order: each cluster (size × mode × round) is started afresh, warmed up with {settings.Warmup:N0} entries (not measured), left until the followers' CPU is down to what idle processes use (under {SettledFollowerMillisPerSecond:F0} ms/s each for 2 s, at most {settings.SettleTimeout.TotalSeconds:F0} s: fresh processes recompile their hot code at the next JIT tier after the warm-up, about a CPU second each, which on two cores takes many seconds), then runs flat out and paced on the same processes. Round 1: sizes ascending, relays before direct, flat out before paced; round 2 reverses all three; {rounds} rounds. Every round listed. Sweep time: {result.Elapsed.TotalSeconds:F0} s."));
        md.AppendLine();
        md.AppendLine("| members (us + eu + ap) | processes | started / settled in s | mode | rate | round | entries | entries/s | **leader CPU µs/entry** | followers CPU µs/entry (of which the 4 relays) | leader allocated B/entry | leader egress B/entry | failovers | idle CPU ms/s leader / followers |");
        md.AppendLine("|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in runs.OrderBy(r => r.Members).ThenBy(r => r.Mode == "direct").ThenBy(r => r.Rate is not null).ThenBy(r => r.Round))
            md.AppendLine(string.Create(inv, $"| {r.Members} ({HomeMembers} + {(r.Members - HomeMembers + 1) / 2} + {(r.Members - HomeMembers) / 2}) | {r.Followers} | {r.StartTime.TotalSeconds:F0} / {r.Settled.TotalSeconds:F0} | {r.Mode} | {RateName(r.Rate)} | {r.Round} | {r.Entries:N0} | {r.EntriesPerSecond:N0} | **{r.LeaderMicrosPerEntry:F2}** | {r.FollowersMicrosPerEntry:F1} ({r.RelaysMicrosPerEntry:F1}) | {r.Allocated / (double)r.Entries:F0} | {r.Egress / (double)r.Entries:F1} | {r.Failovers} | {r.IdleLeaderCpu * 1000:F0} / {r.IdleFollowersCpu * 1000:F0} |"));
        md.AppendLine();
        foreach (var r in runs.Where(r => r.Rate is { } offered && r.EntriesPerSecond < 0.95 * offered))
            md.AppendLine(string.Create(inv, $"- Did not keep up: {r.Members} members, {r.Mode}, round {r.Round}: {r.EntriesPerSecond:N0} entries/s against {RateName(r.Rate)} offered{(r.Entries < settings.PacedCount ? $" (publishing stopped at {settings.MaxPublishTime.TotalSeconds:F0} s, {r.Entries:N0} of {settings.PacedCount:N0} entries)" : "")}."));
        foreach (var note in result.Notes) md.AppendLine($"- Not measured: {note}");
        if (result.Notes.Count > 0 || runs.Any(r => r.Rate is { } offered && r.EntriesPerSecond < 0.95 * offered)) md.AppendLine();

        var roundNumbers = Enumerable.Range(1, rounds).ToList();
        SweepRun? Find(int members, string mode, int? rate, int round) =>
            runs.FirstOrDefault(r => r.Members == members && r.Mode == mode && r.Rate == rate && r.Round == round);
        string Ratios(IEnumerable<(int Round, double Ratio)> ratios) => string.Join(", ", ratios.Select(x => string.Create(inv, $"round {x.Round} {x.Ratio:F2}")));
        md.AppendLine("Leader CPU µs/entry at a glance (the rounds in order, from the table above):");
        md.AppendLine();
        md.AppendLine($"| members | relays flat out | relays {RateName(settings.PacedRate)} | direct flat out | direct {RateName(settings.PacedRate)} | direct / relays flat out | direct / relays {RateName(settings.PacedRate)} |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (int members in settings.Members)
        {
            string Cell(string mode, int? rate) => string.Join(" / ", roundNumbers.Select(n => Find(members, mode, rate, n)).OfType<SweepRun>().Select(r => r.LeaderMicrosPerEntry.ToString("F2", inv)));
            string Ratio(int? rate) => string.Join(" / ", roundNumbers.Select(n => (Find(members, "direct", rate, n), Find(members, "relays", rate, n)))
                .Where(x => x.Item1 is not null && x.Item2 is not null).Select(x => (x.Item1!.LeaderMicrosPerEntry / x.Item2!.LeaderMicrosPerEntry).ToString("F1", inv)));
            md.AppendLine($"| {members} | {Cell("relays", null)} | {Cell("relays", settings.PacedRate)} | {Cell("direct", null)} | {Cell("direct", settings.PacedRate)} | {Ratio(null)} | {Ratio(settings.PacedRate)} |");
        }
        md.AppendLine();
        md.AppendLine("Targets (issue #21), judged round by round on the relays path; met only when met in every round:");
        md.AppendLine();
        foreach (int? rate in new int?[] { settings.PacedRate, null })
        {
            var ratios = roundNumbers.Select(n => (n, Find(24, "relays", rate, n), Find(8, "relays", rate, n)))
                .Where(x => x.Item2 is not null && x.Item3 is not null)
                .Select(x => (Round: x.n, Ratio: x.Item2!.LeaderMicrosPerEntry / x.Item3!.LeaderMicrosPerEntry)).ToList();
            if (ratios.Count == 0) continue;
            bool met = ratios.All(x => x.Ratio <= TargetSameRate);
            md.AppendLine(rate is not null
                ? string.Create(inv, $"- **{(met ? "MET" : "MISSED")}** — at the same offered rate ({RateName(rate)}), leader CPU/entry with 24 members within {TargetSameRate:F1}x of 8: 24 / 8 = {Ratios(ratios)}.")
                : string.Create(inv, $"- (flat out, for reference: the offered rate is what each cluster takes, so not the same rate) 24 / 8 = {Ratios(ratios)}; {(met ? "within" : "not within")} {TargetSameRate:F1}x."));
        }
        foreach (int members in settings.Members)
        {
            var ratios = roundNumbers.Select(n => (n, Find(members, "relays", settings.PacedRate, n), Find(members, "relays", null, n)))
                .Where(x => x.Item2 is not null && x.Item3 is not null)
                .Select(x => (Round: x.n, Ratio: x.Item2!.LeaderMicrosPerEntry / x.Item3!.LeaderMicrosPerEntry)).ToList();
            if (ratios.Count == 0) continue;
            bool met = ratios.All(x => x.Ratio <= 1);
            md.AppendLine(string.Create(inv, $"- **{(met ? "MET" : "MISSED")}** — {members} members: at {RateName(settings.PacedRate)} no more leader CPU per entry than flat out: paced / flat = {Ratios(ratios)}."));
        }
        foreach (int? rate in new int?[] { null, settings.PacedRate })
        {
            var ratios = roundNumbers.Select(n => (n, Find(24, "direct", rate, n), Find(24, "relays", rate, n)))
                .Where(x => x.Item2 is not null && x.Item3 is not null)
                .Select(x => (Round: x.n, Ratio: x.Item2!.LeaderMicrosPerEntry / x.Item3!.LeaderMicrosPerEntry)).ToList();
            if (ratios.Count == 0) continue;
            bool met = ratios.All(x => x.Ratio >= TargetVsDirect);
            md.AppendLine(string.Create(inv, $"- **{(met ? "MET" : "MISSED")}** — 24 members, {RateName(rate)}: leader CPU/entry through the relays at least {TargetVsDirect:F0}x less than direct: direct / relays = {Ratios(ratios)}."));
        }
        md.AppendLine();
        return md.ToString();
    }
}
