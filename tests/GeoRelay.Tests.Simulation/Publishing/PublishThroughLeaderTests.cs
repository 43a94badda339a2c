using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec.Frames;
using GeoRelay.Leader;
using GeoRelay.Topology;
using MessagePack;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Publishing;

// Inside the namespace: under GeoRelay.*, `LearnerClient` alone would name the namespace GeoRelay.LearnerClient.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// Publishers and learners of the SDK around a real leader, relay and members in this process (LocalCluster): typed
/// values go in at the leader and come out of the relay's learner port. Each test publishes under a key prefix of
/// its own and its learner filters on it, so the tests share one cluster.
/// </summary>
[TestFixture, CancelAfter(120_000)]
public sealed class PublishThroughLeaderTests
{
    private const string Topology = """
        cluster: publishing
        insecure: true
        leader: leader
        quorum: 1
        defaults: { fsync: false, elections: false } # the SDK against a fixed leader; ElectionProcessTests cover a changing one
        datacenters:
          home: { relays: [], members: [m1] }
          edge: { relays: [p1], members: [m2] }
        nodes:
          leader: { dc: home, publish: 127.0.0.1:7000, listen: 127.0.0.1:7001 }
          m1:     { dc: home, listen: 127.0.0.1:7011 }
          p1:     { dc: edge, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022 }
          m2:     { dc: edge, listen: 127.0.0.1:7031 }
        """;

    private LocalCluster _cluster = null!;

    public sealed record Price(string Symbol, decimal Bid);

    [MessagePackObject(keyAsPropertyName: true)]
    public sealed record Trade(string Symbol, long Quantity, DateTime At);

    /// <summary><c>SYMBOL;BID</c> in invariant text: a format of the application's own.</summary>
    private sealed class PriceText : IPayloadSerializer<Price>
    {
        public void Serialize(IBufferWriter<byte> destination, Price value) =>
            Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{value.Symbol};{value.Bid}"), destination);

        public Price Deserialize(ReadOnlyMemory<byte> payload)
        {
            var parts = Encoding.UTF8.GetString(payload.Span).Split(';');
            return new Price(parts[0], decimal.Parse(parts[1], CultureInfo.InvariantCulture));
        }
    }

    [OneTimeSetUp]
    public void StartCluster()
    {
        var topology = TopologyLoader.Parse(Topology, "publishing.yaml").GetConfigOrThrow();
        _cluster = LocalCluster.Start(topology, LeaderOptions.Default, NullLoggerFactory.Instance);
    }

    [OneTimeTearDown]
    public async Task StopCluster() => await _cluster.DisposeAsync();

    private PublisherClientOptions PublisherOptions(IPayloadSerializerRegistry serializers) => PublisherClientOptions.Default with
    {
        Endpoints = [_cluster.Topology.Leader.Publish!.Value.ToString()],
        Serializers = serializers,
    };

    private LearnerClientOptions LearnerOptions(string keyPrefix, IPayloadSerializerRegistry serializers) => LearnerClientOptions.Default with
    {
        Endpoints = [_cluster.Topology.GetNode("p1").Learners!.Value.ToString()],
        KeyPrefix = keyPrefix,
        Serializers = serializers,
    };

    private static async Task<List<LearnerEntry<T>>> TakeAsync<T>(LearnerClient learner, ulong from, int count, CancellationToken ct)
    {
        var entries = new List<LearnerEntry<T>>(count);
        await foreach (var e in learner.SubscribeAsync<T>(from, ct))
        {
            entries.Add(e);
            if (entries.Count == count) break;
        }
        return entries;
    }

    [Test]
    public async Task Json_values_published_at_the_leader_reach_a_learner_typed_and_in_order(CancellationToken ct)
    {
        var serializers = new JsonPayloadSerializerRegistry();
        Price[] prices = [new("EURUSD", 1.0842m), new("GBPUSD", 1.2710m), new("USDJPY", 151.32m)];
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(serializers), ct);
        var results = new List<PublishResult>();
        foreach (var price in prices) results.Add(await publisher.PublishAsync(Encoding.UTF8.GetBytes("json/" + price.Symbol), price, cancellationToken: ct));

        await using var learner = await LearnerClient.ConnectAsync(LearnerOptions("json/", serializers), ct);
        var got = await TakeAsync<Price>(learner, results[0].FirstIndex, prices.Length, ct);

        Assert.That(got.Select(e => e.Value), Is.EqualTo(prices));
        Assert.That(got.Select(e => e.Index), Is.EqualTo(results.Select(r => r.FirstIndex)));
        Assert.That(got.Select(e => Encoding.UTF8.GetString(e.Key.Span)), Is.EqualTo(prices.Select(p => "json/" + p.Symbol)));
    }

    [Test]
    public async Task Exactly_once_requests_carry_a_producer_id_and_learners_see_only_the_entries(CancellationToken ct)
    {
        var serializers = new JsonPayloadSerializerRegistry();
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(serializers) with { ExactlyOnce = true }, ct);
        Assert.That(publisher.ProducerId, Is.Not.Zero);
        var results = new List<PublishResult>();
        for (int i = 0; i < 3; i++)
            results.Add(await publisher.PublishAsync(Encoding.UTF8.GetBytes("once/" + i), new Price("EURUSD", i), WaitLevel.Committed, ct));
        // Each request's entries follow its producer marker: indexes skip one per request, and nothing else differs.
        Assert.That(results[1].FirstIndex, Is.EqualTo(results[0].LastIndex + 2));
        await using var learner = await LearnerClient.ConnectAsync(LearnerOptions("once/", serializers), ct);
        var got = await TakeAsync<Price>(learner, results[0].FirstIndex, 3, ct);
        Assert.That(got.Select(e => e.Index), Is.EqualTo(results.Select(r => r.FirstIndex)));
        Assert.That(got.Select(e => e.Value.Bid), Is.EqualTo(new[] { 0m, 1m, 2m }));
    }

    [Test]
    public async Task MessagePack_values_published_as_a_batch_round_trip(CancellationToken ct)
    {
        var serializers = new MessagePackPayloadSerializerRegistry();
        var at = new DateTime(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc);
        Trade[] trades = [new("EURUSD", 1_000_000, at), new("GBPUSD", -250_000, at.AddSeconds(1))];
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(serializers), ct);

        var batch = await publisher.PublishAsync(trades.Select(t => new PublishEntry<Trade>("msgpack/trade"u8.ToArray(), t)).ToList(), cancellationToken: ct);

        await using var learner = await LearnerClient.ConnectAsync(LearnerOptions("msgpack/", serializers), ct);
        var got = await TakeAsync<Trade>(learner, batch.FirstIndex, trades.Length, ct);
        Assert.That(got.Select(e => e.Value), Is.EqualTo(trades));
        Assert.That(got.Select(e => e.Index), Is.EqualTo(new[] { batch.FirstIndex, batch.LastIndex }));
    }

    [Test]
    public async Task A_serializer_of_the_applications_own_is_used_on_both_sides(CancellationToken ct)
    {
        var serializers = PayloadSerializerRegistry.Default.With(new PriceText());
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(serializers), ct);
        var sent = await publisher.PublishAsync("custom/price"u8.ToArray(), new Price("EURUSD", 1.0842m), cancellationToken: ct);
        await publisher.PublishAsync("custom/note"u8.ToArray(), "raw types still work", cancellationToken: ct);

        await using (var learner = await LearnerClient.ConnectAsync(LearnerOptions("custom/price", serializers), ct))
            Assert.That((await TakeAsync<Price>(learner, sent.FirstIndex, 1, ct))[0].Value, Is.EqualTo(new Price("EURUSD", 1.0842m)));
        await using (var learner = await LearnerClient.ConnectAsync(LearnerOptions("custom/", serializers), ct))
        {
            var raw = await TakeAsync<string>(learner, sent.FirstIndex, 2, ct);
            Assert.That(raw.Select(e => e.Value), Is.EqualTo(new[] { "EURUSD;1.0842", "raw types still work" }), "the payloads as written");
        }
    }

    [Test]
    public async Task A_batch_gets_consecutive_indexes_in_list_order_and_can_wait_for_commit(CancellationToken ct)
    {
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(PayloadSerializerRegistry.Default), ct);
        var entries = Enumerable.Range(0, 5).Select(i => new PublishEntry("batch/k"u8.ToArray(), Encoding.UTF8.GetBytes("line " + i))).ToList();

        var result = await publisher.PublishAsync(entries, WaitLevel.Committed, ct);

        Assert.That(result.Count, Is.EqualTo(5));
        Assert.That(result.Level, Is.EqualTo(WaitLevel.Committed));
        Assert.That(result.LastIndex, Is.EqualTo(result.FirstIndex + 4));
        await using var learner = await LearnerClient.ConnectAsync(LearnerOptions("batch/", PayloadSerializerRegistry.Default), ct);
        var got = await TakeAsync<string>(learner, result.FirstIndex, 5, ct);
        Assert.That(got.Select(e => e.Value), Is.EqualTo(Enumerable.Range(0, 5).Select(i => "line " + i)));
        Assert.That(got.Select(e => e.Index), Is.EqualTo(Enumerable.Range(0, 5).Select(i => result.FirstIndex + (ulong)i)));
    }

    [Test]
    public async Task A_payload_the_serializer_cannot_read_ends_the_typed_subscription_naming_its_index(CancellationToken ct)
    {
        var serializers = new JsonPayloadSerializerRegistry();
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(serializers), ct);
        var good = await publisher.PublishAsync("bad/1"u8.ToArray(), new Price("EURUSD", 1.0842m), cancellationToken: ct);
        var bad = await publisher.PublishAsync("bad/2"u8.ToArray(), "not json at all"u8.ToArray(), cancellationToken: ct);
        await publisher.PublishAsync("bad/3"u8.ToArray(), new Price("GBPUSD", 1.2710m), cancellationToken: ct);

        await using var learner = await LearnerClient.ConnectAsync(LearnerOptions("bad/", serializers), ct);
        var read = new List<ulong>();
        var failure = Assert.ThrowsAsync<PayloadDeserializationException>(async () =>
        {
            await foreach (var e in learner.SubscribeAsync<Price>(good.FirstIndex, ct)) read.Add(e.Index);
        })!;

        Assert.That(read, Is.EqualTo(new[] { good.FirstIndex }), "the entry before it was delivered");
        Assert.That(failure.Index, Is.EqualTo(bad.FirstIndex));
        Assert.That(failure.ValueType, Is.EqualTo(typeof(Price)));
        Assert.That(failure.Message, Does.StartWith($"entry {bad.FirstIndex}: its payload (15 bytes) is not a valid {typeof(Price)}"));
        Assert.That(failure.InnerException, Is.InstanceOf<JsonException>());
    }
}
