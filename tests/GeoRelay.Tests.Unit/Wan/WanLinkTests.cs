using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using GeoRelay.TestUtilities;
using GeoRelay.Wan;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Wan;

/// <summary>The WAN emulator over real loopback sockets: order, delay floor, bandwidth floor, cut and heal, bounded buffering.</summary>
[TestFixture]
public sealed class WanLinkTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    /// <summary>A listening socket and the connected pair (client through the link, server side accepted).</summary>
    private sealed class Pair : IAsyncDisposable
    {
        public required Socket Listener, Client, Server;

        public static async Task<(Socket Listener, IPEndPoint Target)> ListenAsync()
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(AnyLoopback);
            listener.Listen(16);
            await Task.CompletedTask;
            return (listener, (IPEndPoint)listener.LocalEndPoint!);
        }

        public static async Task<Pair> ConnectAsync(Socket listener, IPEndPoint via)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await client.ConnectAsync(via);
            var server = await listener.AcceptAsync().WaitAsync(Patience);
            server.NoDelay = true;
            return new Pair { Listener = listener, Client = client, Server = server };
        }

        public ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private static byte Pattern(long offset) => (byte)(offset * 7 + (offset >> 8));

    private static async Task SendPatternAsync(Socket socket, long total, int seed)
    {
        var random = new Random(seed);
        var buffer = new byte[70_000];
        for (long offset = 0; offset < total;)
        {
            int n = (int)Math.Min(random.Next(1, buffer.Length), total - offset);
            for (int i = 0; i < n; i++) buffer[i] = Pattern(offset + i);
            for (int sent = 0; sent < n;) sent += await socket.SendAsync(buffer.AsMemory(sent, n - sent));
            offset += n;
        }
    }

    /// <summary>Reads <paramref name="total"/> bytes and returns the offset of the first byte out of place, or -1.</summary>
    private static async Task<long> ReceivePatternAsync(Socket socket, long total)
    {
        var buffer = new byte[64 * 1024];
        for (long offset = 0; offset < total;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, total - offset)));
            if (n == 0) return offset;
            for (int i = 0; i < n; i++)
                if (buffer[i] != Pattern(offset + i)) return offset + i;
            offset += n;
        }
        return -1;
    }

    [Test]
    public async Task EveryByteArrivesInOrderBothWaysUnderLoadWithJitter()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        await using var link = WanLink.Start(AnyLoopback, target, new WanLinkOptions
        {
            OneWayDelay = TimeSpan.FromMilliseconds(2), Jitter = TimeSpan.FromMilliseconds(3), ReadChunkBytes = 4096, Seed = 7,
        });
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        const long total = 6 << 20;
        var forward = ReceivePatternAsync(pair.Server, total);
        var reverse = ReceivePatternAsync(pair.Client, total);
        await Task.WhenAll(SendPatternAsync(pair.Client, total, 1), SendPatternAsync(pair.Server, total, 2)).WaitAsync(Patience);
        Assert.That(await forward.WaitAsync(Patience), Is.EqualTo(-1), "forward: first byte out of place");
        Assert.That(await reverse.WaitAsync(Patience), Is.EqualTo(-1), "reverse: first byte out of place");
        var counters = link.Counters;
        Assert.That(counters.Forward.Bytes, Is.EqualTo(total));
        Assert.That(counters.Reverse.Bytes, Is.EqualTo(total));
        Assert.That(counters.Forward.Chunks, Is.GreaterThanOrEqualTo(total / 4096));
        Assert.That(counters.ConnectionsAccepted, Is.EqualTo(1));
    }

    [Test]
    public async Task NoMessageArrivesSoonerThanTheOneWayDelayEitherWay()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        var delay = TimeSpan.FromMilliseconds(25);
        await using var link = WanLink.Start(AnyLoopback, target, new WanLinkOptions { OneWayDelay = delay, Jitter = TimeSpan.FromMilliseconds(5) });
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        var one = new byte[1];
        for (int i = 0; i < 10; i++)
        {
            foreach (var (from, to) in new[] { (pair.Client, pair.Server), (pair.Server, pair.Client) })
            {
                var clock = Stopwatch.StartNew();
                await from.SendAsync(new byte[] { (byte)i });
                Assert.That(await to.ReceiveAsync(one.AsMemory()).AsTask().WaitAsync(Patience), Is.EqualTo(1));
                Assert.That(one[0], Is.EqualTo((byte)i));
                Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(delay));
            }
        }
        Assert.That(link.Lateness.Forward.TotalCount, Is.EqualTo(10));
    }

    [Test]
    public async Task ABandwidthCapMakesATransferTakeAtLeastItsSizeOverTheRate()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        const int rate = 4 << 20, burst = 64 << 10, total = 1 << 20;
        await using var link = WanLink.Start(AnyLoopback, target, new WanLinkOptions { BandwidthBytesPerSecond = rate, BurstBytes = burst });
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        var clock = Stopwatch.StartNew();
        var received = ReceivePatternAsync(pair.Server, total);
        await SendPatternAsync(pair.Client, total, 3);
        Assert.That(await received.WaitAsync(Patience), Is.EqualTo(-1));
        Assert.That(clock.Elapsed.TotalSeconds, Is.GreaterThanOrEqualTo((double)(total - burst - 70_000) / rate));
    }

    [Test]
    public async Task ResetClosesConnectionsAndRefusesNewOnesUntilHealed()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        await using var link = WanLink.Start(AnyLoopback, target);
        await using var before = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        link.Cut(WanCutMode.Reset);
        Assert.That(link.IsCut);
        Assert.That(await ReadsEndAsync(before.Client), Is.True, "the client side of a reset connection ends");
        Assert.That(await ReadsEndAsync(before.Server), Is.True, "the server side of a reset connection ends");

        using var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Assert.That(await ConnectsOnlyToBeClosedAsync(refused, link.ListenEndPoint), Is.True, "a connection during the cut is closed at once");

        link.Heal();
        await using var after = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        var received = ReceivePatternAsync(after.Server, 1000);
        await SendPatternAsync(after.Client, 1000, 4);
        Assert.That(await received.WaitAsync(Patience), Is.EqualTo(-1));
    }

    [Test]
    public async Task AResetFromOneSideResetsTheOtherAfterTheBytesAheadOfIt()
    {
        // A SIGKILLed process with unread data resets its connections; a peer behind the link must see that too,
        // or it waits on a dead node for as long as it has no reason to send.
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        await using var link = WanLink.Start(AnyLoopback, target, new WanLinkOptions { OneWayDelay = TimeSpan.FromMilliseconds(20) });
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        await SendPatternAsync(pair.Client, 1000, 5); // left unread: closing now sends RST, not FIN
        var lastWords = ReceivePatternAsync(pair.Client, 100);
        await SendPatternAsync(pair.Server, 100, 6);
        Assert.That(await lastWords.WaitAsync(Patience), Is.EqualTo(-1), "what the server sent before the reset arrives");
        pair.Server.LingerState = new LingerOption(true, 0);
        pair.Server.Close();
        Assert.That(await ReadsEndAsync(pair.Client), Is.True, "the client's side ends too");
    }

    private static async Task<bool> ConnectsOnlyToBeClosedAsync(Socket socket, IPEndPoint endpoint)
    {
        try
        {
            await socket.ConnectAsync(endpoint).WaitAsync(Patience);
        }
        catch (SocketException)
        {
            return true; // the link's reset overtook the connect's completion
        }
        return await ReadsEndAsync(socket);
    }

    private static async Task<bool> ReadsEndAsync(Socket socket)
    {
        try
        {
            return await socket.ReceiveAsync(new byte[16].AsMemory()).AsTask().WaitAsync(Patience) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    [Test]
    public async Task BlackholeHoldsBytesUntilHealedThenDeliversThemInOrder()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        await using var link = WanLink.Start(AnyLoopback, target);
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        link.Cut(WanCutMode.Blackhole);
        var received = ReceivePatternAsync(pair.Server, 5000);
        await SendPatternAsync(pair.Client, 5000, 5);
        await Poll.UntilAsync(() => link.Counters.Forward.PeakBufferedBytes == 5000, "the link to read what was sent", Patience);
        Assert.That(received.IsCompleted, Is.False);
        Assert.That(link.Counters.Forward.Bytes, Is.Zero, "nothing crosses a cut link");
        link.Heal();
        Assert.That(await received.WaitAsync(Patience), Is.EqualTo(-1));
        Assert.That(link.Counters.Forward.Bytes, Is.EqualTo(5000));
    }

    [Test]
    public async Task AReceiverThatStopsReadingBoundsWhatTheLinkHoldsAndStallsTheSender()
    {
        var (listener, target) = await Pair.ListenAsync();
        using var _ = listener;
        var options = new WanLinkOptions { OneWayDelay = TimeSpan.FromMilliseconds(1), MaxBufferedBytes = 256 << 10, ReadChunkBytes = 16 << 10 };
        await using var link = WanLink.Start(AnyLoopback, target, options);
        await using var pair = await Pair.ConnectAsync(listener, link.ListenEndPoint);
        const long total = 48L << 20; // far more than the kernel's socket buffers on both hops plus the link's bound
        var sending = SendPatternAsync(pair.Client, total, 6);
        await Poll.UntilAsync(() => link.Counters.Forward.PeakBufferedBytes >= options.MaxBufferedBytes - options.ReadChunkBytes, "the link's buffer to fill", Patience);
        Assert.That(sending.IsCompleted, Is.False, "the sender is held back");
        Assert.That(link.Counters.Forward.PeakBufferedBytes, Is.LessThanOrEqualTo(options.MaxBufferedBytes));

        Assert.That(await ReceivePatternAsync(pair.Server, total).WaitAsync(Patience), Is.EqualTo(-1));
        await sending.WaitAsync(Patience);
        Assert.That(link.Counters.Forward.PeakBufferedBytes, Is.LessThanOrEqualTo(options.MaxBufferedBytes));
    }
}
