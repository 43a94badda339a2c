using System.Net;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>
/// The web learner endpoint of a real member (web.yaml) over real HTTP: Server-Sent Events and WebSocket from an index,
/// resume without gap or duplicate, the prefix filter, non-UTF-8 bytes as base64, and requests it must refuse.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebEndpointTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>What the fixture publishes, in order: text entries under a/ and b/, then one whose key and payload are not UTF-8.</summary>
    private static readonly (byte[] Key, byte[] Payload)[] Published = BuildEntries();

    private ClusterFixture _cluster = null!;
    private HttpClient _http = null!;
    private string _web = "";

    private static (byte[], byte[])[] BuildEntries()
    {
        var entries = new List<(byte[], byte[])>();
        for (int i = 1; i <= 12; i++)
            entries.Add((Encoding.UTF8.GetBytes((i % 2 == 1 ? "a/" : "b/") + i), Encoding.UTF8.GetBytes($"payload {i}: \"quoted\", ünïcode\nsecond line")));
        entries.Add(([(byte)'b', (byte)'i', (byte)'n', (byte)'/', 0xFF], [0xFF, 0xFE, 0x00, 0x41]));
        return entries.ToArray();
    }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _cluster = new ClusterFixture("web.yaml");
        await _cluster.StartAllAsync();
        _web = "http://" + _cluster.Topology.GetNode("m1").Web!.Value;
        _http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        await PublishAsync(Published);
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _http?.Dispose();
        _cluster?.Dispose();
    }

    private Task PublishAsync(IEnumerable<(byte[] Key, byte[] Payload)> entries) => WebClusterPublisher.PublishAsync(_cluster, entries);

    private static CancellationTokenSource Deadline() => new(Patience);

    /// <summary>Each message against the entry published at that position: text as text, other bytes as base64.</summary>
    private static void AssertArePublished(IReadOnlyList<WebMessage> messages, int firstPosition)
    {
        for (int i = 0; i < messages.Count; i++)
        {
            var (key, payload) = Published[firstPosition + i];
            var json = messages[i].Json;
            Assert.Multiple(() =>
            {
                AssertBytes(json, "key", key, i);
                AssertBytes(json, "payload", payload, i);
                if (messages[i].Id is { } id) Assert.That(id, Is.EqualTo(messages[i].Index.ToString()), "an SSE event's id is its index");
            });
        }
        var indexes = messages.Select(m => m.Index).ToList();
        Assert.That(indexes, Is.Ordered.Ascending.And.Unique);
    }

    private static void AssertBytes(System.Text.Json.JsonElement json, string name, byte[] expected, int position)
    {
        bool text = Encoding.UTF8.GetString(expected) is var s && Encoding.UTF8.GetBytes(s).AsSpan().SequenceEqual(expected);
        if (text)
        {
            Assert.That(json.GetProperty(name).GetString(), Is.EqualTo(Encoding.UTF8.GetString(expected)), $"message {position}: {name}");
            Assert.That(json.TryGetProperty(name + "_base64", out _), Is.False, $"message {position}: {name}_base64 beside {name}");
        }
        else
        {
            Assert.That(json.TryGetProperty(name, out _), Is.False, $"message {position}: {name} is not valid UTF-8 and must go as {name}_base64");
            Assert.That(Convert.FromBase64String(json.GetProperty(name + "_base64").GetString()!), Is.EqualTo(expected), $"message {position}: {name}_base64");
        }
    }

    [Test]
    public async Task ServerSentEventsFromIndexOneDeliverEveryEntryInOrderAsJson()
    {
        using var deadline = Deadline();
        using var stream = await SseStream.OpenAsync(_http, $"{_web}/stream?from=1", ct: deadline.Token);
        var messages = await stream.TakeAsync(Published.Length, deadline.Token);
        AssertArePublished(messages, 0);
    }

    [Test]
    public async Task NonUtf8KeyAndPayloadArriveAsBase64()
    {
        using var deadline = Deadline();
        using var stream = await WebSocketStream.OpenAsync($"ws://{_cluster.Topology.GetNode("m1").Web}/stream?from=1&prefix=bin/", deadline.Token);
        var message = (await stream.TakeAsync(1, deadline.Token))[0];
        Assert.That(message.Json.GetProperty("key_base64").GetString(), Is.EqualTo(Convert.ToBase64String(Published[^1].Key)));
        Assert.That(message.Json.GetProperty("payload_base64").GetString(), Is.EqualTo("//4AQQ=="));
        Assert.That(message.Json.TryGetProperty("payload", out _), Is.False);
    }

    [Test]
    public async Task LastEventIdResumesAfterItWithNoGapAndNoDuplicateAndWinsOverFrom()
    {
        using var deadline = Deadline();
        List<WebMessage> first;
        using (var stream = await SseStream.OpenAsync(_http, $"{_web}/stream?from=1", ct: deadline.Token))
            first = await stream.TakeAsync(5, deadline.Token);
        // As a browser reconnects: the same URL (from=1), and the id of the last event it saw.
        using var resumed = await SseStream.OpenAsync(_http, $"{_web}/stream?from=1", lastEventId: first[^1].Id, ct: deadline.Token);
        var rest = await resumed.TakeAsync(Published.Length - 5, deadline.Token);
        Assert.That(rest[0].Index, Is.GreaterThan(first[^1].Index));
        AssertArePublished(first.Concat(rest).ToList(), 0);
    }

    [Test]
    public async Task WebSocketDeliversEveryEntryAndResumesAfterAReconnectWithNoGapAndNoDuplicate()
    {
        using var deadline = Deadline();
        string url = $"ws://{_cluster.Topology.GetNode("m1").Web}/stream";
        List<WebMessage> first;
        using (var stream = await WebSocketStream.OpenAsync($"{url}?from=1", deadline.Token))
        {
            first = await stream.TakeAsync(7, deadline.Token);
            stream.Socket.Abort(); // a dropped connection, not a goodbye
        }
        using var resumed = await WebSocketStream.OpenAsync($"{url}?from={first[^1].Index + 1}", deadline.Token);
        var rest = await resumed.TakeAsync(Published.Length - 7, deadline.Token);
        AssertArePublished(first.Concat(rest).ToList(), 0);

        // Live: what is published while the client is connected arrives too, after what it had.
        var live = Enumerable.Range(1, 3).Select(i => (Encoding.UTF8.GetBytes($"live/{i}"), Encoding.UTF8.GetBytes($"live {i}"))).ToList();
        await PublishAsync(live);
        var more = new List<WebMessage>();
        while (more.Count < live.Count)
        {
            var message = await resumed.NextAsync(deadline.Token) ?? throw new EndOfStreamException("closed before the live entries");
            if (message.Key?.StartsWith("live/", StringComparison.Ordinal) == true) more.Add(message);
        }
        Assert.That(more.Select(m => m.Payload), Is.EqualTo(new[] { "live 1", "live 2", "live 3" }));
        Assert.That(more[0].Index, Is.GreaterThan(rest[^1].Index));
    }

    [Test]
    public async Task WithBatchEveryWebSocketMessageIsAnArrayAndTogetherTheyHoldEveryEntryInOrder()
    {
        using var deadline = Deadline();
        using var stream = await WebSocketStream.OpenAsync($"ws://{_cluster.Topology.GetNode("m1").Web}/stream?from=1&batch=1", deadline.Token);
        var entries = new List<WebMessage>();
        while (entries.Count < Published.Length)
        {
            var json = await stream.NextJsonAsync(deadline.Token) ?? throw new EndOfStreamException($"closed after {entries.Count}: {stream.Socket.CloseStatusDescription}");
            Assert.That(json.ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Array), "batch=1: every message is an array");
            Assert.That(json.GetArrayLength(), Is.GreaterThan(0));
            entries.AddRange(json.EnumerateArray().Select(e => new WebMessage(null, null, e.Clone())));
        }
        AssertArePublished(entries, 0);
    }

    [Test]
    public async Task AWebSocketClientThatOffersPermessageDeflateGetsItAndEveryEntry()
    {
        using var deadline = Deadline();
        string url = $"ws://{_cluster.Topology.GetNode("m1").Web}/stream?from=1";
        using (var plain = await WebSocketStream.OpenAsync(url, deadline.Token))
        {
            Assert.That(plain.Extensions, Does.Not.Contain("permessage-deflate"), "nothing compressed for a client that did not offer it");
            AssertArePublished(await plain.TakeAsync(Published.Length, deadline.Token), 0);
        }
        using var compressed = await WebSocketStream.OpenAsync(url, deadline.Token, deflate: true);
        Assert.That(compressed.Extensions, Does.StartWith("permessage-deflate"), "the server agreed to compress");
        AssertArePublished(await compressed.TakeAsync(Published.Length, deadline.Token), 0);
    }

    [Test]
    public async Task PrefixFilterDeliversOnlyTheKeysUnderIt()
    {
        using var deadline = Deadline();
        using var stream = await SseStream.OpenAsync(_http, $"{_web}/stream?from=1&prefix=b/", ct: deadline.Token);
        var messages = await stream.TakeAsync(6, deadline.Token);
        Assert.That(messages.Select(m => m.Key), Is.EqualTo(new[] { "b/2", "b/4", "b/6", "b/8", "b/10", "b/12" }));
        Assert.That(messages.Select(m => m.Index), Is.Ordered.Ascending);
    }

    [Test]
    public async Task InternalEntriesAreNeverSent()
    {
        // The fixture's publisher is exactly-once: the leader wrote its producer marker (an internal entry) at index 1,
        // just before the entries, so the first entry a web client gets is index 2.
        using var deadline = Deadline();
        using var stream = await WebSocketStream.OpenAsync($"ws://{_cluster.Topology.GetNode("m1").Web}/stream?from=1", deadline.Token);
        var messages = await stream.TakeAsync(Published.Length, deadline.Token);
        Assert.That(messages[0].Index, Is.EqualTo(2UL));
        Assert.That(messages.Select(m => m.Key ?? ""), Has.None.StartsWith("\0"));
        AssertArePublished(messages, 0);
    }

    [TestCase("from=abc", "from must be a log index, a whole number from 1, not 'abc'")]
    [TestCase("from=0", "from must be a log index, a whole number from 1, not '0'")]
    [TestCase("from=-3", "not '-3'")]
    [TestCase("", "from is required")]
    [TestCase("from=1&from=2", "from is given 2 times; give it once")]
    public async Task ABadFromIsRefusedWith400SayingWhatIsWrong(string query, string reason)
    {
        using var deadline = Deadline();
        using var response = await SseStream.SendAsync(_http, $"{_web}/stream?{query}", ct: deadline.Token);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var body = await response.Content.ReadAsStringAsync(deadline.Token);
        Assert.That(body, Does.Contain("\"error\":\"bad-request\"").And.Contain(reason));
    }

    [Test]
    public async Task TheJavaScriptClientIsServed()
    {
        using var response = await _http.GetAsync($"{_web}/georelay.js");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/javascript"));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("export function subscribe(urls, options, onEntry)"));
    }
}
