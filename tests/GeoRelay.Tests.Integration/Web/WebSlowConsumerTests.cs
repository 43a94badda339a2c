using System.Net.WebSockets;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// A web client that stops reading: the web endpoint stops reading its upstream subscription, the node's own
/// learner-backlog cut applies, and the web client is then closed with a reason that says so.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebSlowConsumerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task AWebClientThatStopsReadingIsCutByTheNodeAndClosedSayingSlowConsumer()
    {
        using var cluster = new ClusterFixture("web.yaml", yaml => yaml.Replace("  fsync: false", "  fsync: false\n  learner-backlog: 1MiB"));
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        using var deadline = new CancellationTokenSource(Patience);
        var payload = new byte[16 << 10];
        Random.Shared.NextBytes(payload);
        await using var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()] });
        // One entry committed first: m1 is fed by then (a member the leader has not fed yet sends caught-up learners away).
        await publisher.PublishAsync([new PublishEntry("bulk"u8.ToArray(), payload)], WaitLevel.Committed, deadline.Token);
        using var stream = await WebSocketStream.OpenAsync($"ws://{cluster.Topology.GetNode("m1").Web}/stream?from=1", deadline.Token);
        await m1.WaitForLineAsync("Web client web-m1-.* WebSocket from index 1", Patience);

        // Far more than the socket buffers, the endpoint's small buffer and the node's backlog hold, while nothing is read.
        for (int batch = 0; batch < 40 && !m1.Output.Contains("cut as a slow consumer", StringComparison.Ordinal); batch++)
        {
            var entries = Enumerable.Range(0, 64).Select(i => new PublishEntry("bulk"u8.ToArray(), payload)).ToList();
            await publisher.PublishAsync(entries, WaitLevel.Committed, deadline.Token);
        }
        await m1.WaitForLineAsync(@"Learner web-m1-\S+ \(connection \d+\) cut as a slow consumer", Patience);

        // Reading again, the client gets what was sent before the cut, in order, and then the close that says why.
        ulong last = 0;
        while (await stream.NextAsync(deadline.Token) is { } message)
        {
            Assert.That(message.Index, Is.GreaterThan(last));
            last = message.Index;
        }
        Assert.That((int?)stream.Socket.CloseStatus, Is.EqualTo(4429));
        // Either the node's SlowConsumer close reached the endpoint, or (had the client stayed stalled past the node's
        // close timeout) the node dropped the connection with entries still waiting: both say slow consumer.
        Assert.That(stream.Socket.CloseStatusDescription, Does.StartWith("slow consumer: ").And.Contain("m1"));
        await m1.WaitForLineAsync(@"Web client web-m1-\S+ ended at index \d+: slow-consumer: slow consumer", Patience);
    }
}
