using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Wan;
using HdrHistogram;

namespace GeoRelay.Bench.Wan;

/// <summary>
/// What the WAN emulator itself costs: round trips of a small message and bulk throughput through a zero-delay
/// link against a direct loopback connection, interleaved; and how late a 40 ms link delivers against its due
/// time. Writes <c>bench/results/wan.md</c>; the cross-region benchmark quotes the same figures.
/// </summary>
public static class WanOverheadBenchmark
{
    public sealed record Result(HistogramBase DirectRtt, HistogramBase LinkRtt, double DirectMBps, double LinkMBps, HistogramBase DelayedLateness, int RoundTrips);

    public static async Task<int> RunAsync(string[] args)
    {
        string output = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "wan.md");
        int roundTrips = 5_000;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": roundTrips = 500; break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; options: --quick, --out FILE");
                    return 2;
            }
        }
        var result = await MeasureAsync(roundTrips);
        var text = new StringBuilder();
        text.AppendLine("# WAN emulator overhead (`bench/run wan`)");
        text.AppendLine();
        foreach (var line in MachineInfo.Describe()) text.AppendLine(line);
        text.AppendLine();
        text.Append(Table(result));
        File.WriteAllText(output, text.ToString());
        Console.Write(Table(result));
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    /// <summary>The measurement as a markdown section (a table and what it means).</summary>
    public static string Table(Result r)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(inv, $"Round trips of a 64-byte message ({r.RoundTrips} each, interleaved) and 64 MiB bulk transfers, loopback:");
        text.AppendLine();
        text.AppendLine("| path | RTT p50 µs | RTT p99 µs | RTT max µs | bulk MB/s |");
        text.AppendLine("|---|---:|---:|---:|---:|");
        text.AppendLine(inv, $"| direct | {r.DirectRtt.Quantile(0.5):F0} | {r.DirectRtt.Quantile(0.99):F0} | {r.DirectRtt.GetMaxValue():F0} | {r.DirectMBps:F0} |");
        text.AppendLine(inv, $"| zero-delay link | {r.LinkRtt.Quantile(0.5):F0} | {r.LinkRtt.Quantile(0.99):F0} | {r.LinkRtt.GetMaxValue():F0} | {r.LinkMBps:F0} |");
        text.AppendLine();
        text.Append(inv, $"One-way overhead of a link (half the RTT difference): p50 {(r.LinkRtt.Quantile(0.5) - r.DirectRtt.Quantile(0.5)) / 2:F0} µs, p99 {(r.LinkRtt.Quantile(0.99) - r.DirectRtt.Quantile(0.99)) / 2:F0} µs. ");
        text.Append(inv, $"A 40 ms link delivered {r.DelayedLateness.TotalCount} chunks late against their due time by p50 {r.DelayedLateness.Quantile(0.5):F0} µs, p99 {r.DelayedLateness.Quantile(0.99):F0} µs, max {r.DelayedLateness.GetMaxValue():F0} µs ");
        text.AppendLine("(the scheduler thread's wake-up error; it adds to every system's measured latency alike).");
        text.AppendLine();
        return text.ToString();
    }

    public static async Task<Result> MeasureAsync(int roundTrips)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var target = (IPEndPoint)listener.LocalEndPoint!;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(() => EchoServerAsync(listener, stop.Token));
        try
        {
            await using var link = WanLink.Start(new IPEndPoint(IPAddress.Loopback, 0), target);
            await using var delayed = WanLink.Start(new IPEndPoint(IPAddress.Loopback, 0), target, new WanLinkOptions { OneWayDelay = TimeSpan.FromMilliseconds(40) });
            using var direct = await DialAsync(target);
            using var viaLink = await DialAsync(link.ListenEndPoint);
            using var viaDelayed = await DialAsync(delayed.ListenEndPoint);
            var directRtt = LatencyHistogram.Create();
            var linkRtt = LatencyHistogram.Create();
            var message = new byte[64];
            for (int i = 0; i < roundTrips; i++)
            {
                directRtt.RecordMicros(await RoundTripAsync(direct, message));
                linkRtt.RecordMicros(await RoundTripAsync(viaLink, message));
            }
            // Lateness under a steady trickle across a delayed link.
            for (int i = 0; i < Math.Min(roundTrips, 200); i++)
            {
                await viaDelayed.SendAsync(message);
                await Task.Delay(2);
            }
            for (int i = 0; i < Math.Min(roundTrips, 200); i++)
                await ReceiveExactlyAsync(viaDelayed, new byte[message.Length]);

            double directMBps = 0, linkMBps = 0;
            for (int round = 0; round < 3; round++)
            {
                directMBps = Math.Max(directMBps, await BulkAsync(direct));
                linkMBps = Math.Max(linkMBps, await BulkAsync(viaLink));
            }
            return new Result(directRtt, linkRtt, directMBps, linkMBps, delayed.Lateness.Forward, roundTrips);
        }
        finally
        {
            stop.Cancel();
            listener.Dispose();
            await server.ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private static async Task<Socket> DialAsync(IPEndPoint endpoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint);
        return socket;
    }

    private static async Task<double> RoundTripAsync(Socket socket, byte[] message)
    {
        long start = Stopwatch.GetTimestamp();
        await socket.SendAsync(message);
        await ReceiveExactlyAsync(socket, new byte[message.Length]);
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds;
    }

    private static async Task<double> BulkAsync(Socket socket)
    {
        const int total = 64 << 20;
        var block = new byte[64 * 1024];
        var clock = Stopwatch.StartNew();
        var receiving = Task.Run(async () => await ReceiveExactlyAsync(socket, new byte[total]));
        for (int sent = 0; sent < total; sent += block.Length)
            await socket.SendAsync(block);
        await receiving;
        return total / clock.Elapsed.TotalSeconds / 1e6;
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer)
    {
        for (int got = 0; got < buffer.Length;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
            if (n == 0) throw new IOException("echo connection closed");
            got += n;
        }
    }

    private static async Task EchoServerAsync(Socket listener, CancellationToken cancellationToken)
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                var socket = await listener.AcceptAsync(cancellationToken);
                socket.NoDelay = true;
                connections.Add(Task.Run(async () =>
                {
                    using var _ = socket;
                    var buffer = new byte[64 * 1024];
                    int n;
                    while ((n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cancellationToken)) > 0)
                        await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellationToken);
                }, cancellationToken));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }
}
