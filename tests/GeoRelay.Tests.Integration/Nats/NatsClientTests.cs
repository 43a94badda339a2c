using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using GeoRelay.Bench.Nats;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Nats;

/// <summary>The benchmarks' NATS client against a real nats-server started by <see cref="NatsServerProcess"/>.</summary>
[TestFixture]
public sealed class NatsClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task EveryPublishedMessageArrivesOnceInOrderAtEverySubscriber()
    {
        await using var server = await NatsServerProcess.StartAsync(new NatsServerConfig { ServerName = "test", ClusterName = "c", Gateway = true });
        await using var publisher = await NatsClient.ConnectAsync(server.ClientEndPoint, "publisher");
        const int count = 5_000;
        var subscribers = new List<(NatsClient Client, List<int> Seen, TaskCompletionSource Done)>();
        for (int s = 0; s < 3; s++)
        {
            var client = await NatsClient.ConnectAsync(server.ClientEndPoint, $"subscriber-{s}");
            var seen = new List<int>(count);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            client.Subscribe("bench.>", (in NatsServerOp m) =>
            {
                Span<byte> number = stackalloc byte[4];
                m.Payload.Slice(0, 4).CopyTo(number);
                seen.Add(BinaryPrimitives.ReadInt32LittleEndian(number));
                if (seen.Count == count) done.TrySetResult();
            });
            await client.PingAsync();
            subscribers.Add((client, seen, done));
        }

        var payload = new byte[300];
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(payload, i);
            await publisher.PublishAsync("bench.entries", payload);
        }
        await publisher.PingAsync();
        foreach (var (client, seen, done) in subscribers)
        {
            await done.Task.WaitAsync(Patience);
            Assert.That(seen, Is.EqualTo(Enumerable.Range(0, count)));
            Assert.That(client.MessagesReceived, Is.EqualTo(count));
            await client.DisposeAsync();
        }
    }

    [Test]
    public async Task AMessageCrossesAGatewayToASubscriberInTheOtherCluster()
    {
        var east = new NatsServerConfig { ServerName = "east-1", ClusterName = "east", Gateway = true }.WithFreePorts();
        var west = new NatsServerConfig { ServerName = "west-1", ClusterName = "west", Gateway = true }.WithFreePorts();
        east = east with { Remotes = [new NatsGatewayRemote("west", [new(System.Net.IPAddress.Loopback, west.GatewayPort)])] };
        west = west with { Remotes = [new NatsGatewayRemote("east", [new(System.Net.IPAddress.Loopback, east.GatewayPort)])] };
        await using var eastServer = await NatsServerProcess.StartAsync(east);
        await using var westServer = await NatsServerProcess.StartAsync(west);
        await using var publisher = await NatsClient.ConnectAsync(eastServer.ClientEndPoint);
        await using var subscriber = await NatsClient.ConnectAsync(westServer.ClientEndPoint);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.Subscribe("geo.>", (in NatsServerOp m) => received.TrySetResult(Encoding.ASCII.GetString(m.Payload)));
        await subscriber.PingAsync();
        // Until the gateways are up, a publish goes nowhere (core NATS is at-most-once): repeat until one arrives.
        using var deadline = new CancellationTokenSource(Patience);
        while (!received.Task.IsCompleted)
        {
            await publisher.PublishAsync("geo.hello", "across"u8.ToArray(), deadline.Token);
            await publisher.PingAsync(deadline.Token);
            await Task.WhenAny(received.Task, Task.Delay(100, deadline.Token));
        }
        Assert.That(await received.Task, Is.EqualTo("across"));
    }

    [Test]
    public async Task AConnectionThatTheServerDropsEndsWithAFailure()
    {
        await using var server = await NatsServerProcess.StartAsync(new NatsServerConfig { ServerName = "test", MaxPayload = 1024 });
        await using var client = await NatsClient.ConnectAsync(server.ClientEndPoint);
        Assert.Throws<ArgumentException>(() => client.PublishAsync("x", new byte[2048]).AsTask().GetAwaiter().GetResult());
        Assert.Throws<ArgumentException>(() => client.PublishAsync("two words", new byte[8]).AsTask().GetAwaiter().GetResult());
        Assert.That(client.Closed.IsCompleted, Is.False);
        server.Kill();
        Assert.ThrowsAsync<IOException>(async () => await client.Closed.WaitAsync(Patience));
        Assert.ThrowsAsync<IOException>(async () => await client.PingAsync().WaitAsync(Patience));
    }
}
