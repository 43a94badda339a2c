using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.CrossRegion;
using GeoRelay.Bench.Harness;

namespace GeoRelay.Bench.Failover;

/// <summary>What one failover run does; every figure has a command-line flag.</summary>
public sealed record FailoverSettings
{
    public string[] Regions { get; init; } = ["us-east", "eu-west", "ap-south"];

    /// <summary>One-way delays between the regions, ms (those of bench/scenarios/default.yaml).</summary>
    public (string A, string B, double DelayMs)[] Links { get; init; } =
        [("us-east", "eu-west", 40), ("us-east", "ap-south", 100), ("eu-west", "ap-south", 65)];

    public int Rounds { get; init; } = 3;
    public int Rate { get; init; } = 1000;
    public double WarmupSeconds { get; init; } = 8;
    public double AfterKillSeconds { get; init; } = 8;
    public double DrainSeconds { get; init; } = 20;
    public double ElectionTimeoutSeconds { get; init; } = 1;
    public string[] Systems { get; init; } = ["georelay", "jetstream"];

    /// <summary>The targets of issue #18.</summary>
    public const double TargetUnavailableMs = 2000;

    public double DelayMs(string a, string b) => Links.First(l => (l.A == a && l.B == b) || (l.A == b && l.B == a)).DelayMs;

    public Scenario AsScenario() => new()
    {
        Name = "failover",
        LeaderRegion = Regions[0],
        Regions = Regions.ToDictionary(r => r, _ => new Scenario.RegionSpec()),
        Links = Links.Select(l => new Scenario.LinkSpec { Between = [l.A, l.B], DelayMs = l.DelayMs }).ToList(),
    };
}

/// <summary>
/// `bench/run failover`: SIGKILL the leader of a replicated log under steady committed publishing, GeoRelay (elections)
/// against NATS JetStream (R3 stream), both over the same emulated WAN, alternating which goes first each round.
/// Measures write unavailability (kill → first acknowledgement of a publish sent after it), the longest delivery
/// stall per region, acknowledged entries lost and entries stored twice. Writes bench/results/failover.md.
/// </summary>
public static class FailoverBenchmark
{
    private const string Usage = """
        usage: bench/run failover [--rounds N] [--rate N] [--warmup S] [--after-kill S] [--election-timeout S] [--systems georelay,jetstream] [--out-dir DIR]
          SIGKILLs the leader under steady publishing (wait: committed) with emulated WAN delays between 3 regions
          (us-east-eu-west 40 ms, us-east-ap-south 100 ms, eu-west-ap-south 65 ms, one way), GeoRelay with elections vs
          NATS JetStream R3 (3 nats-servers, clustered), each round both systems, alternating which runs first.
          --rounds N            rounds (default 3)
          --rate N              publishes per second, one entry each (default 1000)
          --warmup S            seconds of publishing before the kill (default 8)
          --after-kill S        seconds of publishing after the kill (default 8)
          --election-timeout S  GeoRelay's election-timeout (default 1)
          --systems LIST        which systems (default georelay,jetstream)
          --out-dir DIR         where failover.md goes (default bench/results)
        GEORELAY_BENCH_LOGS=DIR keeps every server's log there.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var settings = new FailoverSettings();
        string? outDir = null;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
                double Number() => double.Parse(Next(), CultureInfo.InvariantCulture);
                switch (args[i])
                {
                    case "-h" or "--help": Console.WriteLine(Usage); return 0;
                    case "--rounds": settings = settings with { Rounds = (int)Number() }; break;
                    case "--rate": settings = settings with { Rate = (int)Number() }; break;
                    case "--warmup": settings = settings with { WarmupSeconds = Number() }; break;
                    case "--after-kill": settings = settings with { AfterKillSeconds = Number() }; break;
                    case "--election-timeout": settings = settings with { ElectionTimeoutSeconds = Number() }; break;
                    case "--systems": settings = settings with { Systems = Next().Split(',', StringSplitOptions.RemoveEmptyEntries) }; break;
                    case "--out-dir": outDir = Path.GetFullPath(Next()); break;
                    default: throw new FormatException($"unknown option {args[i]}");
                }
            }
            if (settings.Rounds < 1 || settings.Rate < 1 || settings.WarmupSeconds <= 0 || settings.AfterKillSeconds <= 0 || settings.ElectionTimeoutSeconds <= 0)
                throw new FormatException("rounds, rate, warmup, after-kill and election-timeout must be positive");
            if (settings.Systems.Any(s => s is not ("georelay" or "jetstream")))
                throw new FormatException("systems: georelay and/or jetstream");
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        string root = Paths.RepositoryRoot();
        outDir ??= Path.Combine(root, "bench", "results");
        Directory.CreateDirectory(outDir);
        DebianPackages.Require(Nats.NatsServerProcess.Binary, "nats-server");

        var clock = Stopwatch.StartNew();
        var results = new List<RoundResult>();
        for (int round = 1; round <= settings.Rounds; round++)
        {
            var order = round % 2 == 1 ? settings.Systems : settings.Systems.Reverse().ToArray();
            foreach (var system in order)
            {
                RoundResult result;
                try
                {
                    result = await RunOnceAsync(system, round, settings, clock);
                }
                catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
                {
                    Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {system} round {round} failed: {e.Message}");
                    result = new RoundResult(system, round, double.NaN, new double[settings.Regions.Length], new double[settings.Regions.Length],
                        0, 0, 0, 0, 0, 0, 0, 0, [], [], [], [$"the round failed: {e.GetType().Name}: {e.Message}"]);
                }
                results.Add(result);
                Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {Row(result, settings)}");
            }
        }
        string report = FailoverReport.Write(settings, results, clock.Elapsed, string.Join(" ", args));
        string output = Path.Combine(outDir, "failover.md");
        File.WriteAllText(output, report);
        Console.WriteLine(FailoverReport.Table(settings, results));
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] wrote {output}");
        return 0;
    }

    private static string Row(RoundResult r, FailoverSettings settings) =>
        $"{r.System} round {r.Round}: unavailable {r.UnavailableMs:F0} ms, stalls " +
        string.Join(", ", settings.Regions.Select((region, i) => $"{region} {r.StallMs[i]:F0} ms")) +
        $", acked {r.Acked}/{r.Published}, lost {r.Lost}, stored twice {r.DoubleAppended}, redelivered {r.Redelivered}, retries {r.Retries} ({r.UnknownOutcomeRetries} unknown outcome)";

    /// <summary>Starts the cluster the round measures were a cluster that never committed anything before the kill; see <see cref="RunOnceAsync"/>.</summary>
    public static List<string> StuckStarts { get; } = new();

    /// <summary>
    /// One round of one system. A cluster that acknowledged nothing during the whole warm-up is not a failover to
    /// measure: it is stopped, its start noted (<see cref="StuckStarts"/>, with what its processes logged), and a fresh
    /// one started, at most twice; the third attempt is measured whatever happens.
    /// </summary>
    private static async Task<RoundResult> RunOnceAsync(string name, int round, FailoverSettings settings, Stopwatch clock)
    {
        for (int attempt = 1; ; attempt++)
        {
            var result = await RunAttemptAsync(name, round, settings, clock, abortIfStuck: attempt < 3);
            if (result.Stuck is null) return result.Result!;
            StuckStarts.Add($"{name} round {round}, start {attempt}: {result.Stuck}");
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name} round {round}: nothing acknowledged during the warm-up; restarting the cluster");
        }
    }

    private static async Task<(RoundResult? Result, string? Stuck)> RunAttemptAsync(string name, int round, FailoverSettings settings, Stopwatch clock, bool abortIfStuck)
    {
        var startWall = DateTime.Now;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        long total = (long)(settings.Rate * (settings.WarmupSeconds + settings.AfterKillSeconds));
        var recorder = new FailoverRecorder(settings.Regions, total);
        await using var mesh = new WanMesh(settings.AsScenario());
        IFailoverSystem system = name == "georelay" ? new GeoRelayVoters(settings, mesh) : new JetStreamCluster(settings, mesh);
        await using (system)
        {
            await system.StartAsync(recorder, timeout.Token);
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {name} round {round}: started");
            var pace = Stopwatch.StartNew();
            long warmupCount = (long)(settings.Rate * settings.WarmupSeconds);
            long sent = 0;
            long killAt = 0, publishEndAt;
            DateTime killWall = default;
            string killed = "";
            while (sent < total)
            {
                long due = Math.Min(total, (long)(pace.Elapsed.TotalSeconds * settings.Rate) + 1);
                if (killAt == 0 && sent >= warmupCount)
                {
                    if (abortIfStuck && !Enumerable.Range(1, (int)warmupCount).Any(s => recorder.IsAcked(s)))
                        return (null, $"no publish acknowledged in {settings.WarmupSeconds:0.#} s of warm-up; the voters' /status then:\n" +
                            await system.DiagnoseAsync() + "election lines of the start (relative to it):\n" + string.Join("\n", system.Timeline(startWall)));
                    killWall = DateTime.Now;
                    killAt = Stopwatch.GetTimestamp();
                    killed = await system.KillLeaderAsync();
                    recorder.Event($"+0 ms: SIGKILL {killed}; load average {LoadAverage()}");
                }
                if (due <= sent)
                {
                    await Task.Delay(1); // pacing the offered load, not synchronisation
                    continue;
                }
                for (; sent < due && (killAt != 0 || sent < warmupCount); sent++) system.Publish(sent + 1);
            }
            publishEndAt = Stopwatch.GetTimestamp();
            var drain = Stopwatch.StartNew();
            while (drain.Elapsed.TotalSeconds < settings.DrainSeconds && !(AllAcked(recorder, total) && recorder.AllDelivered(total)))
                await Task.Delay(100, timeout.Token);
            recorder.Event(AllAcked(recorder, total)
                ? $"every publish acknowledged; drained {drain.Elapsed.TotalSeconds:F1} s after publishing ended"
                : $"not every publish was acknowledged {settings.DrainSeconds} s after publishing ended");
            await Task.Delay(300); // stragglers of the last deliveries
            var timeline = system.Timeline(killWall);
            return (recorder.Summarize(name, round, killAt, publishEndAt, total, timeline) with { Events = recorder.Events.ToList() }, null);
        }
    }

    private static string LoadAverage()
    {
        try { return string.Join(" / ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }

    private static bool AllAcked(FailoverRecorder recorder, long total)
    {
        for (long s = 1; s <= total; s++)
            if (!recorder.IsAcked(s)) return false;
        return true;
    }
}
