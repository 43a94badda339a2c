using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Bench.Nats;
using GeoRelay.Cli.Demo;
using GeoRelay.Leader;
using GeoRelay.Server.Web;
using GeoRelay.Topology;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using HdrHistogram;

namespace GeoRelay.Bench.Fanout;

/// <summary>
/// The WebSocket column: the same stream to N WebSocket clients, through a relay's web endpoint (<c>GET /stream</c>,
/// one JSON text message per entry) and through nats-server's own WebSocket listener (NATS.Net over <c>ws://</c>).
/// </summary>
public static partial class FanoutBenchmark
{
    /// <summary>The payload opens with the publish timestamp as this many decimal digits (text, so the JSON carries it as is).</summary>
    internal const int StampDigits = 19;

    /// <summary>256 bytes of text: the timestamp in <see cref="StampDigits"/> digits, then filler.</summary>
    private static byte[] StampedPayload()
    {
        var payload = new byte[EntryBytes];
        payload.AsSpan().Fill((byte)'x');
        return payload;
    }

    private static void Stamp(byte[] payload)
    {
        long now = Stopwatch.GetTimestamp();
        for (int i = StampDigits - 1; i >= 0; i--, now /= 10) payload[i] = (byte)('0' + now % 10);
    }

    /// <summary>Rounds of GeoRelay's web endpoint and NATS's WebSocket listener in turn, at <paramref name="n"/> clients.</summary>
    private static async Task<List<Result>> RunWebSocketRoundsAsync(Stopwatch clock, int n, int entries, int repeat)
    {
        var rounds = new List<Result>();
        for (int round = 0; round < repeat; round++)
        {
            var single = await RunGeoRelayWebAsync(n, entries, batch: false);
            Print(clock, single);
            var nats = await RunNatsAsync(n, entries, webSocket: true);
            Print(clock, nats);
            var batched = await RunGeoRelayWebAsync(n, entries, batch: true);
            Print(clock, batched);
            rounds.AddRange([single, nats, batched]);
        }
        return rounds;
    }

    private const string WebSingle = "GeoRelay web", WebBatched = "GeoRelay web batch", NatsWeb = "NATS ws";

    private static async Task<Result> RunGeoRelayWebAsync(int n, int entries, bool batch)
    {
        using var loggers = LoggerFactory.Create(b => { b.SetMinimumLevel(LogLevel.Warning); if (Environment.GetEnvironmentVariable("GEORELAY_BENCH_LOG") is "1") b.AddSimpleConsole(); else b.AddProvider(NullLoggerProvider.Instance); });
        var payload = StampedPayload();
        var (started, from) = await StartClusterAsync(loggers, payload);
        await using var cluster = started;
        var leader = cluster.Leader!;
        var relay = cluster.Relays["p1"];

        var web = cluster.Topology.GetNode("p1").Web!.Value.ToEndPoint();
        await using var server = await WebLearnerServer.StartAsync(web, cluster.Topology, "p1", relay.Host.Security, WebEndpointOptions.Default, loggers);
        var latency = LatencyHistogram.Create();
        var receivers = new WebSocketCounter[n];
        for (int i = 0; i < n; i++)
            receivers[i] = await WebSocketCounter.ConnectAsync(server.EndPoint, from, batch, i == 0 ? latency : null);

        using var stop = new CancellationTokenSource();
        var reading = receivers.Select(r => Task.Run(() => r.RunAsync(entries, stop.Token))).ToArray();
        double cpu = ProcessCpu.Seconds(Environment.ProcessId);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < entries; i++)
        {
            if (i % 512 == 0) await PaceAsync(i, () => MinOf(receivers));
            Stamp(payload);
            await leader.AppendAsync(payload);
        }
        string note = await WhenAllReceivedAsync(reading, () => MinOf(receivers), entries);
        sw.Stop();
        cpu = ProcessCpu.Seconds(Environment.ProcessId) - cpu;
        stop.Cancel();
        await Task.WhenAll(reading.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        foreach (var r in receivers) r.Socket.Dispose();
        var (p50, p99) = Percentiles(latency);
        long delivered = receivers.Sum(r => Math.Min(r.Messages, entries));
        if (batch) note += Inv($" {receivers.Sum(r => r.Messages) / (double)Math.Max(1, receivers.Sum(r => r.Frames)):F1} entries/message");
        return new Result(batch ? WebBatched : WebSingle, n, entries, delivered, sw.Elapsed, p50, p99, note.Trim(), Inv($"{cpu:F1}"));
    }

    private static long MinOf(WebSocketCounter[] receivers)
    {
        long min = long.MaxValue;
        foreach (var r in receivers) min = Math.Min(min, r.Messages);
        return min;
    }

    /// <summary>Records the time since the stamp that opens <paramref name="payload"/>.</summary>
    internal static void RecordStamp(HistogramBase latency, ReadOnlySpan<byte> payload)
    {
        if (payload.Length >= StampDigits && System.Buffers.Text.Utf8Parser.TryParse(payload[..StampDigits], out long stamp, out _))
            latency.RecordSince(stamp);
    }

    private static void AppendWebSocketSection(StringBuilder md, List<Result> rounds, int repeat)
    {
        if (rounds.Count == 0) return;
        int n = rounds[0].Subscribers;
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"## WebSocket: {n:N0} web learners");
        md.AppendLine();
        md.AppendLine($"The same stream of 256-byte entries (text: the publish timestamp in {StampDigits} digits, then filler) to {n:N0} WebSocket clients, {repeat} rounds of each in turn:");
        md.AppendLine();
        md.AppendLine("- **GeoRelay web**: the same in-process cluster with the relay's web endpoint (`WebLearnerServer`, `GET /stream?from=N`, defaults), one JSON text message per entry (`{\"index\":N,\"key\":\"\",\"payload\":\"…\"}`); each client a `ClientWebSocket` without compression that counts whole messages.");
        md.AppendLine("- **GeoRelay web batch**: the same with `&batch=1` (what the JavaScript client asks for): a message is a JSON array of the entries that arrived together (up to 256 KiB); each client counts the entries of each array.");
        md.AppendLine($"- **NATS ws**: nats-server's own WebSocket listener (`websocket {{ no_tls: true, compression: false }}`); each client NATS.Net {NatsClientVersion()} over `ws://`, a core subscription as in the table above; the publisher on the TCP client port. (nats-server, like GeoRelay with `batch=1`, puts what is pending for a client into one WebSocket frame.)");
        md.AppendLine();
        md.AppendLine("Every round, in the order run (deliveries/s, publish-to-client latency of the first client, CPU seconds of this process (+ nats-server)); the ratio is to the NATS ws run of the same round:");
        md.AppendLine();
        md.AppendLine("| round | system | deliveries/s | p50 ms | p99 ms | CPU s | / NATS ws | notes |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|---:|---|");
        for (int i = 0; i < rounds.Count; i++)
        {
            var r = rounds[i];
            var nats = rounds[i - i % 3 + 1];
            string ratio = r.System == NatsWeb ? "" : (r.PerSecond / nats.PerSecond).ToString("F2", CultureInfo.InvariantCulture) + "x";
            md.AppendLine(CultureInfo.InvariantCulture, $"| {i / 3 + 1} | {r.System} | {r.PerSecond:N0} | {r.P50Ms:F2} | {r.P99Ms:F2} | {r.Cpu} | {ratio} | {r.Note} |");
        }
        var natsMedian = Median(rounds.Where(r => r.System == NatsWeb).ToList());
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Target (issue 24): at {n:N0} web learners at least 1.5x NATS's WebSocket deliveries/s. Median rounds: NATS ws {natsMedian.PerSecond:N0}/s;");
        foreach (var system in new[] { WebBatched, WebSingle })
        {
            var median = Median(rounds.Where(r => r.System == system).ToList());
            double ratio = median.PerSecond / natsMedian.PerSecond;
            md.AppendLine(CultureInfo.InvariantCulture, $"{system} {median.PerSecond:N0}/s, {ratio:F2}x ({(ratio >= 1.5 ? "met" : "not met")}).");
        }
    }

    private static string WebSocketReport(List<Result> rounds, int repeat, TimeSpan total, string loadBefore, string loadAfter)
    {
        var md = new StringBuilder();
        md.AppendLine("# Fan-out to web learners: GeoRelay's web endpoint against nats-server's WebSocket listener");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"`bench/run fanout --only websocket --web-learners {rounds.FirstOrDefault()?.Subscribers ?? 0} --repeat {repeat}`: every system in this process's two cores with its clients (and GeoRelay with its leader, relay and members; NATS with nats-server beside). Time runs from the first publish to the last client's last entry; the publisher stays at most {Window:N0} entries ahead of the slowest client. Load average {loadBefore} at the start, {loadAfter} at the end: the machine is shared, so read the ratios of each round, not the absolute figures.");
        AppendWebSocketSection(md, rounds, repeat);
        AppendMachine(md, total);
        return md.ToString();
    }
}
