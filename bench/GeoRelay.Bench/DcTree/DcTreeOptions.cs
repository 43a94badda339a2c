using System.Globalization;
using GeoRelay.Bench.Harness;
using GeoRelay.LearnerClient;
using GeoRelay.Relay.Learners;
using GeoRelay.Topology;

namespace GeoRelay.Bench.DcTree;

/// <summary>How the active relay is taken away: its process dies (connections close), or it hangs (connections stay open, nothing flows).</summary>
internal enum KillMode { Dies, Silent }

/// <summary>
/// Every knob of the model, times in microseconds. Where the product has the setting, the default is read from its
/// own option record (<see cref="ClusterDefaults"/>, <see cref="LearnerClientOptions"/>, <see cref="LearnerFanoutOptions"/>),
/// so the model follows the product when a default changes.
/// </summary>
internal sealed record DcTreeOptions
{
    private static readonly ClusterDefaults Cluster = new();
    private static readonly LearnerClientOptions Client = new();
    private static readonly LearnerFanoutOptions Fanout = new();

    public int Datacenters { get; init; } = 20;
    public int RelaysPerDc { get; init; } = 10;
    public int MembersPerDc { get; init; } = 3;
    public int LearnersPerDc { get; init; } = 100_000;
    public double Seconds { get; init; } = 10;
    public int Rate { get; init; } = 1000;
    public int Seed { get; init; } = 1;

    /// <summary>When the active relay of the first datacenter is killed; default half-way through.</summary>
    public double? KillAtSeconds { get; init; }

    public KillMode[] Kills { get; init; } = [KillMode.Dies, KillMode.Silent];
    public long WanRtt { get; init; } = 80_000;
    public long DcRtt { get; init; } = 500;
    public long FailoverAfter { get; init; } = Micros(Cluster.FailoverAfter);
    public long Heartbeat { get; init; } = Micros(Cluster.Heartbeat);
    public long HandshakeTimeout { get; init; } = Micros(Cluster.HandshakeTimeout);
    public long Linger { get; init; } = Micros(Cluster.BatchLinger);
    public long BatchMaxBytes { get; init; } = Cluster.BatchMaxBytes;
    public int CompressionLevel { get; init; } = Cluster.CompressionLevel;
    public int LocalCompressionLevel { get; init; } = Cluster.LocalCompressionLevel;

    // RelayEngine.Feed backs off between rounds of parents with these (constants there, not options).
    public long FeedRetryInitial { get; init; } = 50_000;
    public long FeedRetryMax { get; init; } = 2_000_000;

    public long LearnerReconnectInitial { get; init; } = Micros(Client.ReconnectInitial);
    public long LearnerReconnectMax { get; init; } = Micros(Client.ReconnectMax);
    public long LearnerConnectTimeout { get; init; } = Micros(Client.ConnectTimeout);
    /// <summary>A learner leaves a node that heartbeats (every node does, after a second of nothing) but sent nothing for this long.</summary>
    public long LearnerSilenceTimeout { get; init; } = Micros(Client.SilenceTimeout);
    public int MaxDeliverBytes { get; init; } = Fanout.MaxDeliverBytes;
    public int MaxDeliverEntries { get; init; } = Fanout.MaxDeliverEntries;

    /// <summary>Relay-to-relay bytes per entry are averaged from here to the kill (the first batches are still in flight before).</summary>
    public long SteadyFrom { get; init; } = 1_000_000;

    public string Output { get; init; } = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "dc-tree.md");

    public long Entries => (long)Math.Round(Seconds * Rate);
    public long KillAt => (long)Math.Round((KillAtSeconds ?? Seconds / 2) * 1e6);
    public long PublishEnd => PublishedAt(Entries);
    public long WanOneWay => WanRtt / 2;
    public long DcOneWay => DcRtt / 2;

    /// <summary>Entry <paramref name="index"/> (1-based) is published at a steady pace.</summary>
    public long PublishedAt(long index) => (long)Math.Round(index * 1e6 / Rate);

    public const string Usage =
        "options: --dcs N (20), --relays N (10), --members N (3), --learners N per DC (100000), --seconds S (10), --rate N/s (1000), " +
        "--seed N (1), --kill-at S (half-way), --kill dies,silent (both), --wan-rtt MS (80), --dc-rtt MS (0.5), --failover-after MS (500), " +
        "--handshake-timeout MS (5000), --linger MS (1), --out FILE";

    public static DcTreeOptions Parse(string[] args)
    {
        var o = new DcTreeOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            double Number() => double.Parse(Next(), CultureInfo.InvariantCulture);
            long Ms() => (long)Math.Round(Number() * 1000);
            o = args[i] switch
            {
                "--dcs" => o with { Datacenters = Int() },
                "--relays" => o with { RelaysPerDc = Int() },
                "--members" => o with { MembersPerDc = Int() },
                "--learners" => o with { LearnersPerDc = Int() },
                "--seconds" => o with { Seconds = Number() },
                "--rate" => o with { Rate = Int() },
                "--seed" => o with { Seed = Int() },
                "--kill-at" => o with { KillAtSeconds = Number() },
                "--kill" => o with { Kills = ParseKills(Next()) },
                "--wan-rtt" => o with { WanRtt = Ms() },
                "--dc-rtt" => o with { DcRtt = Ms() },
                "--failover-after" => o with { FailoverAfter = Ms() },
                "--handshake-timeout" => o with { HandshakeTimeout = Ms() },
                "--linger" => o with { Linger = Ms() },
                "--out" => o with { Output = Path.GetFullPath(Next()) },
                _ => null,
            } ?? throw new ArgumentException($"unknown option {args[i]}");
        }
        if (o.Datacenters < 1 || o.RelaysPerDc < 2 || o.MembersPerDc < 1 || o.LearnersPerDc < 0 || o.Rate < 1 || o.Entries < 1)
            throw new ArgumentException("need at least 1 DC, 2 relays per DC, 1 member, 1 entry");
        if (o.KillAt <= o.SteadyFrom || o.KillAt >= o.PublishEnd)
            throw new ArgumentException($"--kill-at must fall between {o.SteadyFrom / 1e6:0.#} s and the end of publishing");
        return o;
    }

    private static KillMode[] ParseKills(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(k => k switch
            {
                "dies" => KillMode.Dies,
                "silent" => KillMode.Silent,
                _ => throw new ArgumentException($"--kill takes dies, silent or both; not '{k}'"),
            })
            .Distinct()
            .ToArray();

    private static long Micros(TimeSpan t) => (long)Math.Round(t.TotalMicroseconds);
}
