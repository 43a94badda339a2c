using GeoRelay.Bench.Codec;

// The learners, publishers and WAN links in this process, like the daemons (see SocketRuntime).
GeoRelay.Transport.SocketRuntime.PreferInlineCompletions();

// Each benchmark is a subcommand: `georelay-bench <name> [options]`. To add one, add a line here.
var benchmarks = new Dictionary<string, (string Summary, Func<string[], Task<int>> Run)>(StringComparer.Ordinal)
{
    ["codec"] = ("mux, zstd: wire bytes per recipient and codec throughput -> bench/results/codec.md", CodecBenchmark.RunAsync),
    ["wan"] = ("WAN emulator's own overhead: zero-delay link vs direct, delivery lateness -> bench/results/wan.md", GeoRelay.Bench.Wan.WanOverheadBenchmark.RunAsync),
    ["fanout"] = ("one relay to 10..5,000 learners vs nats-server and raw sockets -> bench/results/fanout.md; --paced R: latency at R entries/s vs NATS -> fanout-paced.md", GeoRelay.Bench.Fanout.FanoutBenchmark.RunAsync),
    ["fuzz"] = ("mutation fuzzer over every decoder and the handshake: fuzz [iterations] [--seed N] -> bench/results/fuzz.md", GeoRelay.Bench.Fuzz.FuzzBenchmark.RunAsync),
    ["cross-region"] = ("GeoRelay vs direct vs NATS supercluster over emulated WAN links -> bench/results/cross-region-<scenario>.md", GeoRelay.Bench.CrossRegion.CrossRegionBenchmark.RunAsync),
    ["datapath"] = ("publish to quorum commit on loopback, relays vs direct egress, disk vs tmpfs, leader CPU vs members (--only sweep) -> bench/results/datapath.md", GeoRelay.Bench.Datapath.DatapathBenchmark.RunAsync),
    ["failover"] = ("SIGKILL the leader under committed publishing: GeoRelay elections vs JetStream R3 over WAN -> bench/results/failover.md", GeoRelay.Bench.Failover.FailoverBenchmark.RunAsync),
    ["cli"] = ("lines paced through `georelay publish` and out of `georelay tail` vs nats-server: latency -> bench/results/cli-latency.md", GeoRelay.Bench.Cli.CliLatencyBenchmark.RunAsync),
    ["soak"] = ("deterministic simulation over many seeds (default 100,000): --sim faults (default) -> bench/results/soak.md, --sim voters | voters-durable (elections) -> soak-voters*.md", GeoRelay.Bench.Soak.SoakBenchmark.RunAsync),
    ["snapshot"] = ("a learner joining at the end of a keyed log: snapshot vs replay from index 1, bytes, time, disk: snapshot [--entries N] [--keys K] [--repeat R] -> bench/results/snapshot.md", GeoRelay.Bench.Snapshot.SnapshotBenchmark.RunAsync),
    ["dc-tree"] = ("modelled fan-out tree: 20 DCs x 10 relays x 100,000 learners, two tiers vs one, through a relay kill -> bench/results/dc-tree.md", GeoRelay.Bench.DcTree.DcTreeBenchmark.RunAsync),
};

if (args.Length == 0 || args[0] is "-h" or "--help" || !benchmarks.TryGetValue(args[0], out var benchmark))
{
    if (args.Length > 0 && args[0] is not ("-h" or "--help"))
        Console.Error.WriteLine($"unknown benchmark '{args[0]}'");
    Console.Error.WriteLine("usage: bench/run <benchmark> [options]");
    foreach (var (name, (summary, _)) in benchmarks)
        Console.Error.WriteLine($"  {name,-14} {summary}");
    return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
}
return await benchmark.Run(args[1..]);
