using System.CommandLine;
using System.Diagnostics;
using System.Text;
using GeoRelay.Leader;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace GeoRelay.Relay.Demo;

/// <summary>
/// `georelay demo`: a leader, and every proxy and member of the topology, in this process on loopback;
/// publishes a stream for a while and shows per datacenter what was delivered and what it cost.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "Topology YAML (default: the bundled samples/three-regions.yaml)" };
        var duration = new Option<TimeSpan>("--duration") { Description = "How long to publish", DefaultValueFactory = _ => TimeSpan.FromSeconds(6) };
        var rate = new Option<int>("--rate") { Description = "Entries per second to publish", DefaultValueFactory = _ => 20_000 };
        var command = new Command("demo", "Run a whole cluster in this process and watch it deliver") { config, duration, rate };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config), parse.GetValue(duration), parse.GetValue(rate), Console.Out, ct));
        return command;
    }

    public static string DefaultConfigPath => Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml");

    public static async Task<int> RunAsync(string? configPath, TimeSpan duration, int rate, TextWriter output, CancellationToken ct)
    {
        var result = TopologyLoader.LoadFile(configPath ?? DefaultConfigPath);
        if (!result.Success)
        {
            foreach (var p in result.Problems) Console.Error.WriteLine(p);
            return 2;
        }
        using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        console.Profile.Width = Math.Max(console.Profile.Width, 120);
        await using var cluster = LocalCluster.Start(result.Config!, LeaderOptions.Default, loggers);
        console.MarkupLine($"[bold]GeoRelay demo[/]: cluster [green]{cluster.Topology.Cluster}[/], {cluster.Topology.Datacenters.Count} datacenters, {cluster.Members.Count} members, {cluster.Relays.Count} proxies; publishing {rate:N0} entries/s for {duration.TotalSeconds:0} s");

        var clock = Stopwatch.StartNew();
        var nextReport = TimeSpan.FromSeconds(1);
        long published = 0;
        ulong last = 0;
        var payload = new byte[200];
        while (clock.Elapsed < duration && !ct.IsCancellationRequested)
        {
            long due = (long)(clock.Elapsed.TotalSeconds * rate);
            while (published < due)
            {
                var text = $"{{\"order\":{published},\"sku\":\"SKU-{published % 977:D5}\",\"qty\":{published % 7 + 1},\"region\":\"{(published % 3 == 0 ? "eu" : "us")}\"}}";
                int n = Encoding.UTF8.GetBytes(text, payload);
                var append = await cluster.Leader.AppendAsync(payload.AsMemory(0, n), default, ct);
                last = append.Index;
                published++;
            }
            if (clock.Elapsed >= nextReport)
            {
                console.Write(Table(cluster, published, clock.Elapsed));
                nextReport += TimeSpan.FromSeconds(1);
            }
            await Task.Delay(5, ct);
        }

        // Let the tail arrive everywhere, bounded.
        var settle = Stopwatch.StartNew();
        while (settle.Elapsed < TimeSpan.FromSeconds(10) && !AllDelivered(cluster, last)) await Task.Delay(20, ct);
        console.Write(Table(cluster, published, clock.Elapsed));
        bool ok = AllDelivered(cluster, last);
        var status = cluster.Leader.Engine.Status();
        long sent = 0, direct = 0;
        foreach (var s in status) { sent += s.BytesSent; direct += DirectCost(cluster.Topology, s); }
        console.MarkupLine($"Summary: published {published:N0}, committed {cluster.Leader.Engine.CommitIndex:N0}; every datacenter has all entries: {(ok ? "[green]yes[/]" : "[red]no[/]")}. " +
                           $"Leader sent {Bytes(sent)}; direct fan-out would have sent about {Bytes(direct)} ({(direct > 0 ? (double)sent / direct : 0):P1}).");
        return ok ? 0 : 1;
    }

    private static bool AllDelivered(LocalCluster cluster, ulong last)
    {
        if (cluster.Leader.Engine.CommitIndex < last) return false;
        foreach (var s in cluster.Leader.Engine.Status())
            if (s.MinDurable < last) return false;
        return true;
    }

    /// <summary>What sending the same entries to each member separately, uncompressed, would have cost.</summary>
    private static long DirectCost(TopologyConfig topology, LeaderEngine.DatacenterStatus s) =>
        s.EntryBytesSent * Math.Max(1, topology.GetDatacenter(s.Name).Members.Count);

    private static Table Table(LocalCluster cluster, long published, TimeSpan elapsed)
    {
        var engine = cluster.Leader.Engine;
        var table = new Table().Title($"t={elapsed.TotalSeconds:0}s  published {published:N0}  commit {engine.CommitIndex:N0}")
            .AddColumns("datacenter", "route", "delivered", "commit lag", "bytes sent", "direct would send", "ratio", "failovers");
        foreach (var s in engine.Status())
        {
            long direct = DirectCost(cluster.Topology, s);
            long lag = (long)engine.LastIndex - (long)s.MinDurable;
            table.AddRow(s.Name, s.Route, s.MinDurable.ToString("N0"), lag.ToString("N0"), Bytes(s.BytesSent), Bytes(direct),
                direct > 0 ? ((double)s.BytesSent / direct).ToString("P1") : "-", s.Failovers.ToString());
        }
        return table;
    }

    private static string Bytes(long n) => n switch
    {
        >= 1 << 30 => $"{n / (double)(1 << 30):0.0} GiB",
        >= 1 << 20 => $"{n / (double)(1 << 20):0.0} MiB",
        >= 1 << 10 => $"{n / 1024.0:0.0} KiB",
        _ => $"{n} B",
    };
}
