using GeoRelay.LearnerClient;
using System.Globalization;
using System.Text;
using System.Text.Json;
using GeoRelay.Cli;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration;

/// <summary>
/// Load and observation for the real-process tests: numbered entries published pipelined (each one's payload
/// follows from its index), what a node's admin endpoint reports, and what a node's learner port serves.
/// </summary>
internal static class ClusterLoad
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>The payload of entry <paramref name="index"/> (a fresh cluster gives one publisher's entries indexes 1, 2, ...).</summary>
    public static string Payload(ulong index, int length = 0)
    {
        string text = $"entry {index.ToString(CultureInfo.InvariantCulture)} ";
        return text.Length >= length ? text : text + new string('x', length - text.Length);
    }

    /// <summary>
    /// Publishes entries <paramref name="first"/>..<paramref name="last"/> in requests of <paramref name="chunk"/>, 8 in
    /// flight, each awaited at <paramref name="wait"/>; <paramref name="onAcked"/> hears the highest index acked so far
    /// after each ack (it may act on the cluster, a SIGTERM say). Returns the highest index acked; fails on a gap.
    /// </summary>
    public static async Task<ulong> PublishAsync(ClusterFixture cluster, ulong first, ulong last, WaitLevel wait, TimeSpan patience,
        int payloadLength = 0, int chunk = 50, Func<ulong, Task>? onAcked = null)
    {
        // Entry n at index n: no producer markers. One connection: callers SIGTERM the leader and expect publishes to fail.
        await using var client = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false, ReconnectTimeout = TimeSpan.Zero });
        var inFlight = new Queue<(ulong First, Task<PublishResult> Ack)>();
        ulong acked = first - 1;
        async Task TakeOneAsync()
        {
            var (from, task) = inFlight.Dequeue();
            var ack = await task.WaitAsync(patience);
            Assert.That((ack.FirstIndex, ack.Level), Is.EqualTo((from, wait)), "acks come in order, at the level asked for");
            acked = ack.LastIndex;
            if (onAcked is not null) await onAcked(acked);
        }
        for (ulong from = first; from <= last; from += (ulong)chunk)
        {
            var entries = new List<PublishEntry>(chunk);
            for (ulong i = from; i < from + (ulong)chunk && i <= last; i++)
                entries.Add(new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes(Payload(i, payloadLength))));
            inFlight.Enqueue((from, client.PublishAsync(entries, wait).AsTask()));
            if (inFlight.Count >= 8) await TakeOneAsync();
        }
        while (inFlight.Count > 0) await TakeOneAsync();
        return acked;
    }

    public static async Task<JsonElement> StatusAsync(ClusterFixture cluster, string node) =>
        JsonDocument.Parse(await Http.GetStringAsync($"http://{cluster.Topology.GetNode(node).Admin!.Value}/status")).RootElement;

    public static async Task<ulong> DurableAsync(ClusterFixture cluster, string node) =>
        (await StatusAsync(cluster, node)).GetProperty("indexes").GetProperty("durable").GetUInt64();

    /// <summary>What the leader knows of a peer: for a member, the durable index it last acked.</summary>
    public static async Task<JsonElement> LeaderPeerAsync(ClusterFixture cluster, string peer) =>
        (await StatusAsync(cluster, cluster.Topology.LeaderId)).GetProperty("peers").EnumerateArray()
            .First(p => p.GetProperty("id").GetString() == peer);

    /// <summary>Entries 1..<paramref name="count"/> as a node's learner port serves them (members serve what is durable).</summary>
    public static async Task<List<(ulong Index, string Payload)>> ReadAsync(ClusterFixture cluster, string node, ulong count, TimeSpan patience)
    {
        var options = GeoRelay.LearnerClient.LearnerClientOptions.Default with
        {
            Endpoints = [cluster.Topology.GetNode(node).Learners!.Value.ToString()],
            Cluster = cluster.Topology.Cluster,
            NodeId = "check-" + node,
        };
        await using var client = new GeoRelay.LearnerClient.LearnerClient(options);
        using var timeout = new CancellationTokenSource(patience);
        var read = new List<(ulong, string)>();
        try
        {
            await foreach (var entry in client.SubscribeAsync(1, timeout.Token))
            {
                read.Add((entry.Index, Encoding.UTF8.GetString(entry.Payload.Span)));
                if (entry.Index >= count) break;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Assert.Fail($"{node} served {read.Count} of {count} entries within {patience.TotalSeconds} s");
        }
        return read;
    }
}
