using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// Live web clients share one subscription of the node per key prefix (the shared feed): each still gets every entry
/// once and in order, a client starting behind catches up on its own subscription and then moves onto the feed, one
/// that falls a learner-backlog behind is closed as a slow consumer and resumes without a gap, and a feed client's
/// token is held to the node's rules (a revocation ends its stream) though the node never sees it.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebSharedFeedTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static IEnumerable<(byte[], byte[])> Entries(string prefix, int first, int last, int payloadBytes = 0) =>
        Enumerable.Range(first, last - first + 1).Select(i => (Encoding.UTF8.GetBytes($"{prefix}{i}"),
            Encoding.UTF8.GetBytes(payloadBytes == 0 ? $"entry {i}" : $"entry {i} " + new string('x', payloadBytes))));

    /// <summary>Messages until one with <paramref name="key"/>; asserts indexes rise and returns them all.</summary>
    private static async Task<List<WebMessage>> TakeThroughAsync(WebSocketStream stream, string key, CancellationToken ct)
    {
        var taken = new List<WebMessage>();
        while (taken.Count == 0 || taken[^1].Key != key)
            taken.Add(await stream.NextAsync(ct) ?? throw new EndOfStreamException($"closed before {key} ({taken.Count} messages): {stream.Socket.CloseStatus} {stream.Socket.CloseStatusDescription}"));
        Assert.That(taken.Select(m => m.Index), Is.Ordered.Ascending.And.Unique);
        return taken;
    }

    private static int Count(string output, string pattern) => Regex.Matches(output, pattern).Count;

    [Test]
    public async Task LiveWebClientsShareOneSubscriptionAndEachGetsEveryEntryOnceInOrder()
    {
        using var cluster = new ClusterFixture("web.yaml");
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        string url = $"ws://{cluster.Topology.GetNode("m1").Web}/stream";
        using var deadline = new CancellationTokenSource(Patience);
        await WebClusterPublisher.PublishAsync(cluster, Entries("old/", 1, 10));

        // The first client starts at the beginning on its own subscription, catches up, and starts the feed.
        using var first = await WebSocketStream.OpenAsync($"{url}?from=1", deadline.Token);
        var history = await TakeThroughAsync(first, "old/10", deadline.Token);
        Assert.That(history.Where(m => m.Key!.StartsWith("old/", StringComparison.Ordinal)).Select(m => m.Key), Is.EqualTo(Enumerable.Range(1, 10).Select(i => $"old/{i}")));
        await m1.WaitForLineAsync(@"Web feed for prefix '' subscribed from index \d+", Patience);
        await m1.WaitForLineAsync(@"Web client web-m1-\S+ caught up: reads the shared feed from index \d+", Patience);

        // Two more join at the live end: straight onto the feed, no subscription of their own.
        ulong next = history[^1].Index + 1;
        using var second = await WebSocketStream.OpenAsync($"{url}?from={next}", deadline.Token);
        using var third = await WebSocketStream.OpenAsync($"{url}?from={next}", deadline.Token);
        await m1.WaitForLineAsync(@"WebSocket \(shared feed\) from index", Patience);
        await WebClusterPublisher.PublishAsync(cluster, Entries("live/", 1, 100));
        foreach (var stream in new[] { first, second, third })
        {
            var live = await TakeThroughAsync(stream, "live/100", deadline.Token);
            Assert.That(live.Select(m => m.Key), Is.EqualTo(Enumerable.Range(1, 100).Select(i => $"live/{i}")), "every live entry once, in order");
        }
        Assert.That(Count(m1.Output, @"WebSocket \(shared feed\) from index"), Is.EqualTo(2));
        // One subscription on the node's learner port serves all three (the first client's own was closed on joining).
        Assert.That(Count(m1.Output, @"Web feed for prefix '' subscribed"), Is.EqualTo(1));
        Assert.That(Count(m1.Output, @": WebSocket from index"), Is.EqualTo(1), "only the first client ever had a subscription of its own");

        // Another prefix is another feed, reached the same way.
        using var filtered = await WebSocketStream.OpenAsync($"{url}?from=1&prefix=live/", deadline.Token);
        var onlyLive = await TakeThroughAsync(filtered, "live/100", deadline.Token);
        Assert.That(onlyLive.Select(m => m.Key), Is.EqualTo(Enumerable.Range(1, 100).Select(i => $"live/{i}")));
        await WebClusterPublisher.PublishAsync(cluster, Entries("live/", 101, 101));
        Assert.That((await filtered.NextAsync(deadline.Token))?.Key, Is.EqualTo("live/101"));
        await m1.WaitForLineAsync(@"Web feed for prefix 'live/' subscribed from index \d+", Patience);
    }

    [Test]
    public async Task AFeedClientThatStopsReadingIsClosedAsASlowConsumerAndResumesWithoutAGap()
    {
        using var cluster = new ClusterFixture("web.yaml", yaml => yaml.Replace("  fsync: false", "  fsync: false\n  learner-backlog: 1MiB"));
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        string url = $"ws://{cluster.Topology.GetNode("m1").Web}/stream";
        using var deadline = new CancellationTokenSource(Patience * 2);
        await WebClusterPublisher.PublishAsync(cluster, Entries("start/", 1, 1));
        using var slow = await WebSocketStream.OpenAsync($"{url}?from=1", deadline.Token);
        var start = await TakeThroughAsync(slow, "start/1", deadline.Token);
        await m1.WaitForLineAsync(@"caught up: reads the shared feed", Patience);
        // A client that keeps reading shows when the feed has everything.
        using var steady = await WebSocketStream.OpenAsync($"{url}?from={start[^1].Index + 1}", deadline.Token);

        // Far more than the socket buffers and the 1 MiB ring hold, while the slow client reads nothing. In steps well
        // under the backlog, each read by the steady client before the next, so only the slow one falls behind.
        // Few steps: the stalled send must not reach the endpoint's 30 s send timeout, which closes without a close frame.
        const int Count = 1_000, Step = 20;
        for (int first = 1; first <= Count; first += Step)
        {
            await WebClusterPublisher.PublishAsync(cluster, Entries("bulk/", first, first + Step - 1, payloadBytes: 32 << 10));
            await TakeThroughAsync(steady, $"bulk/{first + Step - 1}", deadline.Token);
        }

        // Reading again: what was sent before, in order, then the close that says why.
        ulong last = start[^1].Index;
        var keys = new List<string>();
        while (await slow.NextAsync(deadline.Token) is { } message)
        {
            Assert.That(message.Index, Is.GreaterThan(last));
            last = message.Index;
            keys.Add(message.Key!);
        }
        Assert.That((int?)slow.Socket.CloseStatus, Is.EqualTo(4429), slow.Socket.CloseStatusDescription);
        Assert.That(slow.Socket.CloseStatusDescription, Does.StartWith("slow consumer: this client fell more than the learner-backlog").And.Contain("m1"));
        await m1.WaitForLineAsync(@"Web client web-m1-\S+ ended at index \d+: slow-consumer: slow consumer", Patience);

        // Resuming from the last index + 1: behind the ring, so on its own subscription first; every entry arrives.
        using var resumed = await WebSocketStream.OpenAsync($"{url}?from={last + 1}", deadline.Token);
        var rest = await TakeThroughAsync(resumed, $"bulk/{Count}", deadline.Token);
        Assert.That(rest[0].Index, Is.GreaterThan(last));
        Assert.That(keys.Concat(rest.Select(m => m.Key!)), Is.EqualTo(Enumerable.Range(1, Count).Select(i => $"bulk/{i}")), "every entry once, in order, across the cut");
    }

    [Test]
    public async Task AFeedClientsRevokedTokenEndsItsStreamWhileOthersGoOn()
    {
        using var cluster = new ClusterFixture("web.yaml", yaml => yaml + "\nauth: { key-file: keys, revoked-file: revoked, publish: false }\n");
        File.WriteAllText(Path.Combine(cluster.Directory, "keys"), TokenKeyFile.Format([TokenKeyFile.NewKey("k1")]));
        File.WriteAllText(Path.Combine(cluster.Directory, "revoked"), "# nothing revoked yet\n");
        await cluster.StartAllAsync();
        var m1 = cluster.Processes["m1"];
        await m1.WaitForLineAsync(@"Connected to leader \(Leader\)", Patience);
        string url = $"ws://{cluster.Topology.GetNode("m1").Web}/stream";
        using var deadline = new CancellationTokenSource(Patience);
        string carolId = TokenClaims.NewId();
        string bob, carol;
        using (var authority = TokenAuthority.LoadKeyFile(cluster.Topology.Auth!.KeyFile))
        {
            bob = authority.Mint(new TokenClaims("bob", DateTimeOffset.UtcNow.AddHours(1), TokenScopes.Learn, [[]]));
            carol = authority.Mint(new TokenClaims("carol", DateTimeOffset.UtcNow.AddHours(1), TokenScopes.Learn, [[]]) { Id = carolId });
        }
        await WebClusterPublisher.PublishAsync(cluster, Entries("a/", 1, 5));
        using var bobStream = await WebSocketStream.OpenAsync($"{url}?from=1&token={Uri.EscapeDataString(bob)}", deadline.Token);
        var bobSaw = await TakeThroughAsync(bobStream, "a/5", deadline.Token);
        await m1.WaitForLineAsync(@"caught up: reads the shared feed", Patience);
        using var carolStream = await WebSocketStream.OpenAsync($"{url}?from={bobSaw[^1].Index + 1}&token={Uri.EscapeDataString(carol)}", deadline.Token);
        await m1.WaitForLineAsync(@"WebSocket \(shared feed\) from index", Patience);
        await WebClusterPublisher.PublishAsync(cluster, Entries("b/", 1, 5));
        await TakeThroughAsync(carolStream, "b/5", deadline.Token);

        File.AppendAllText(Path.Combine(cluster.Directory, "revoked"), $"token {carolId}\n");
        m1.HangUp();
        await m1.WaitForLineAsync(@"Reloaded token keys: .*revoked: 0 key\(s\), 1 token\(s\)", Patience);
        await WebClusterPublisher.PublishAsync(cluster, Entries("c/", 1, 5));

        // Carol gets nothing published after the revocation, and the close says why; bob, on the same feed, gets it all.
        var afterRevocation = await carolStream.NextAsync(deadline.Token);
        Assert.That(afterRevocation, Is.Null, $"carol got {afterRevocation?.Key} after her token was revoked");
        Assert.That((int?)carolStream.Socket.CloseStatus, Is.EqualTo(4401));
        Assert.That(carolStream.Socket.CloseStatusDescription, Does.Contain($"token {carolId} for 'carol' is revoked"));
        var bobRest = await TakeThroughAsync(bobStream, "c/5", deadline.Token);
        Assert.That(bobRest.Select(m => m.Key), Is.EqualTo(Enumerable.Range(1, 5).Select(i => $"b/{i}").Concat(Enumerable.Range(1, 5).Select(i => $"c/{i}"))));
        Assert.That(m1.Output, Does.Not.Contain("grt1.").And.Not.Contain("grt2."), "tokens are never logged");
    }
}
