using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Learners;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// max-learners against real georelay processes from learners.yaml: a full relay refuses with a hint the client follows,
/// and `georelay status --config` shows learners on every node.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LearnerSpreadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    /// <summary>
    /// learners.yaml with eu-p1 limited to two learners, every other node to ten, and (with <paramref name="admin"/>) an
    /// admin address on every node. Failover is slowed: the test is about learners, and a busy machine must not move the route.
    /// With <paramref name="secondMember"/> eu-p2 is a member, eu-m2, instead: eu-p1's hint then names two members, eu-m1
    /// first, and a client that follows it is told apart from one that walks its endpoints in the order given.
    /// </summary>
    private static ClusterFixture Cluster(bool admin, bool secondMember)
    {
        return new ClusterFixture("learners.yaml", yaml =>
        {
            yaml = yaml.Replace("failover-after: 500ms", "failover-after: 10s").Replace("fsync: false", "fsync: false\n  max-learners: 10");
            if (secondMember)
                yaml = yaml.Replace("relays: [eu-p1, eu-p2]", "relays: [eu-p1]").Replace("members: [eu-m1]", "members: [eu-m1, eu-m2]").Replace("  eu-p2: ", "  eu-m2: ");
            var ports = new Queue<int>(LocalCluster.FreeLoopbackPorts(5));
            return Regex.Replace(yaml, @"(?m)^  ([a-z0-9-]+): +\{ dc: .* \}$", m =>
                m.Value[..^2] + (m.Groups[1].Value == "eu-p1" ? ", max-learners: 2" : "") + (admin ? $", admin: 127.0.0.1:{ports.Dequeue()}" : "") + " }");
        });
    }

    private static string LearnersOf(ClusterFixture cluster, string node) => cluster.Topology.GetNode(node).Learners!.Value.ToString();

    private static async Task PublishAsync(ClusterFixture cluster, int count)
    {
        var options = PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false };
        await using var publisher = await PublisherClient.ConnectAsync(options);
        var entries = Enumerable.Range(1, count).Select(i => new PublishEntry(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("entry-" + i))).ToList();
        var done = await publisher.PublishAsync(entries, WaitLevel.Committed).AsTask().WaitAsync(Patience);
        Assert.That((done.FirstIndex, done.LastIndex), Is.EqualTo((1UL, (ulong)count)));
    }

    /// <summary>
    /// A learner on one endpoint, subscribed from 1 in the background until it is disposed (so it stays counted where it
    /// is); <c>Received</c> completes once it holds <paramref name="count"/> entries.
    /// </summary>
    private static async Task<(LearnerClient Client, Task<List<string>> Received)> SubscribeAsync(string id, string endpoint, int count, CancellationToken ct)
    {
        var client = await LearnerClient.ConnectAsync(LearnerClientOptions.Default with { Endpoints = [endpoint], NodeId = id }, ct);
        var received = new TaskCompletionSource<List<string>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(async () =>
        {
            var payloads = new List<string>();
            try
            {
                await foreach (var e in client.SubscribeAsync(1, ct))
                {
                    payloads.Add($"{e.Index}\t{Encoding.UTF8.GetString(e.Payload.Span)}");
                    if (payloads.Count == count) received.TrySetResult(payloads);
                }
                received.TrySetException(new InvalidOperationException($"{id} stopped after {payloads.Count} entries"));
            }
            catch (Exception e)
            {
                received.TrySetException(e);
            }
        }, CancellationToken.None);
        return (client, received.Task);
    }

    private static IEnumerable<string> Expected(int count) => Enumerable.Range(1, count).Select(i => $"{i}\tentry-{i}");

    [Test]
    public async Task AFullRelayRefusesTheThirdLearnerWithAHintAndTheHintedRelayServesItTheWholeStream()
    {
        using var cluster = Cluster(admin: false, secondMember: true);
        await cluster.StartAllAsync();
        const int count = 500;
        using var stop = new CancellationTokenSource(Patience * 2);
        await PublishAsync(cluster, count);
        var relay = cluster.Processes["eu-p1"];

        // Two learners fill eu-p1; the host logs each once the engine counts it.
        var first = await SubscribeAsync("spread-1", LearnersOf(cluster, "eu-p1"), count, stop.Token);
        var second = await SubscribeAsync("spread-2", LearnersOf(cluster, "eu-p1"), count, stop.Token);
        await relay.WaitForLineAsync(@"Connected to spread-1 \(Learner\)", Patience);
        await relay.WaitForLineAsync(@"Connected to spread-2 \(Learner\)", Patience);

        // The third: eu-p1 is its datacenter's endpoint; eu-m2 comes next in order, but eu-p1's hint names eu-m1 first.
        var tail = cluster.Run("tail", $"tail --local {LearnersOf(cluster, "eu-p1")} --connect {LearnersOf(cluster, "eu-m2")},{LearnersOf(cluster, "eu-m1")} --count {count}");
        var refused = await relay.WaitForLineAsync(@"Refused connection from .*: LimitExceeded: (eu-p1 is full: .*)$", Patience);
        Assert.That(refused.Groups[1].Value, Is.EqualTo("eu-p1 is full: it serves 2 learners, the limit set by max-learners of node 'eu-p1' in learners.yaml; "
            + $"try eu-m1 at {LearnersOf(cluster, "eu-m1")} or eu-m2 at {LearnersOf(cluster, "eu-m2")}"));
        await cluster.Processes["eu-m1"].WaitForLineAsync(@"Connected to tail-\S+ \(Learner\)", Patience);

        Assert.That(await tail.WaitForExitAsync(Patience), Is.EqualTo(0), tail.Output);
        var lines = tail.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines, Is.EqualTo(Expected(count)), "the third learner got every entry, once, in order");
        Assert.That(cluster.Processes["eu-m2"].Output, Does.Not.Contain("Connected to tail-"), "the next endpoint in order was not needed");
        foreach (var (client, received) in new[] { first, second })
        {
            Assert.That(await received.WaitAsync(Patience), Is.EqualTo(Expected(count)));
            await client.DisposeAsync();
        }
    }

    [Test]
    public async Task StatusWithTheTopologyShowsLearnersPerNodeAndDatacenterAndANodeThatIsDown()
    {
        using var cluster = Cluster(admin: true, secondMember: false);
        await cluster.StartAllAsync();
        const int count = 50;
        using var stop = new CancellationTokenSource(Patience * 2);
        await PublishAsync(cluster, count);
        var learners = new[]
        {
            await SubscribeAsync("status-1", LearnersOf(cluster, "eu-p1"), count, stop.Token),
            await SubscribeAsync("status-2", LearnersOf(cluster, "eu-p1"), count, stop.Token),
            await SubscribeAsync("status-3", LearnersOf(cluster, "eu-m1"), count, stop.Token),
        };
        // Every learner holds the stream: the relay is fed, and each learner is counted where it is.
        foreach (var (_, received) in learners) Assert.That(await received.WaitAsync(Patience), Is.EqualTo(Expected(count)));

        var json = cluster.Run("status", $"status --config \"{cluster.ConfigPath}\" --json");
        Assert.That(await json.WaitForExitAsync(Patience), Is.EqualTo(0), json.Output);
        var report = JsonDocument.Parse(json.Output).RootElement;
        var euWest = report.GetProperty("datacenters").EnumerateArray().Single(d => d.GetProperty("name").GetString() == "eu-west");
        var nodes = euWest.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("node").GetString()!);
        Assert.Multiple(() =>
        {
            Assert.That(report.GetProperty("down").GetInt32(), Is.Zero, json.Output);
            Assert.That(nodes.Keys, Is.EqualTo(new[] { "eu-p1", "eu-p2", "eu-m1" }));
            Assert.That(nodes["eu-p1"].GetProperty("feed").GetString(), Is.EqualTo("leader us-leader"));
            Assert.That((nodes["eu-p1"].GetProperty("learners").GetInt32(), nodes["eu-p1"].GetProperty("maxLearners").GetInt32()), Is.EqualTo((2, 2)));
            Assert.That((nodes["eu-m1"].GetProperty("learners").GetInt32(), nodes["eu-m1"].GetProperty("maxLearners").GetInt32()), Is.EqualTo((1, 10)));
            Assert.That(nodes["eu-m1"].GetProperty("feed").GetString(), Does.Contain("relay eu-p1"));
            Assert.That((euWest.GetProperty("learners").GetInt32(), euWest.GetProperty("maxLearners").GetInt32()), Is.EqualTo((3, 2 + 10 + 10)));
        });

        cluster.Processes["eu-p2"].Kill();
        var table = cluster.Run("status", $"status --config \"{cluster.ConfigPath}\"");
        Assert.That(await table.WaitForExitAsync(Patience), Is.EqualTo(0), table.Output);
        var text = table.Output;
        Assert.That(text, Does.Match(@"│ eu-west\s+│ eu-p1\s+│ relay\s+│ running\s+│ leader us-leader\s+│ 2\s+│ 2\s+│"), text);
        Assert.That(text, Does.Match(@"│ eu-west\s+│ eu-p2\s+│ relay\s+│ down: cannot read http://127\.0\.0\.1:\d+/status: .+│ -\s+│ -\s+│ 10\s+│"), text);
        Assert.That(text, Does.Match(@"│ eu-west\s+│ total\s+│\s+│\s+│\s+│ 3\s+│ 22\s+│"), text);
        Assert.That(text, Does.Match(@"│ us-east\s+│ us-leader\s+│ leader\s+│ running\s+│ leader\s+│"), text);
        Assert.That(text, Does.Contain("1 node(s) did not answer"));
        foreach (var (client, _) in learners) await client.DisposeAsync();
    }
}
