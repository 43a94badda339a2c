using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Relays;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;
using LearnerClientOptions = GeoRelay.LearnerClient.LearnerClientOptions;

/// <summary>
/// Real georelay processes of relays.yaml: in datacenter far the leader feeds p1, p2 (first tier) takes its feed from
/// p1, and p3 (second tier, <c>feed-from: [p1, p2]</c>) from p1 or p2. Every relay and member serves learners.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed partial class RelayTreeTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static string Payload(ulong index) => $"tree entry {index.ToString(CultureInfo.InvariantCulture)}";

    [Test]
    public async Task EveryRelayAndMemberOfTheDatacenterServesTheSameCompleteStream()
    {
        const int count = 3_000;
        using var cluster = new ClusterFixture("relays.yaml");
        await cluster.StartAllAsync();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        // Each learner lists one node only: none can be served by another.
        var learners = new[] { "p1", "p2", "p3", "f1", "f2" }.Select(node => Learn(cluster, node, count, clock, stop.Token)).ToList();
        await PublishAsync(cluster, count, perSecond: 2_000, stop.Token);
        await AllReceivedAsync(learners, count);
        stop.Cancel();
        foreach (var (_, run) in learners) await run.WaitAsync(Patience);
    }

    /// <summary>
    /// SIGKILL of p1, the relay the leader feeds: the leader moves far to p2, which p1 fed until then, so p2 is warm;
    /// learners that list only p2 or only p3 lose nothing and never reconnect. p1 restarts, takes its feed from p2,
    /// and once it has answered the leader's probes for failback-after (2 s) far moves back to it. Every learner sees
    /// every entry once, in order; the longest stall of each around the kill is printed.
    /// </summary>
    [Test]
    public async Task KillingTheActiveRelayLeavesTheStandbysLearnersStreamingAndTheDatacenterFailsBack()
    {
        const int count = 6_000;
        const double perSecond = 500;
        using var cluster = new ClusterFixture("relays.yaml");
        await cluster.StartAllAsync();
        var leader = cluster.Processes[cluster.Topology.LeaderId];
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var learners = new[] { "p2", "p3" }.Select(node => Learn(cluster, node, count, clock, stop.Token)).ToList();
        var publishing = Task.Run(() => PublishAsync(cluster, count, perSecond, stop.Token));

        // Once entries flow: kill p1 and restart it a second later.
        await Task.WhenAll(learners.Select(l => l.Got.ReachedAsync(500))).WaitAsync(Patience);
        var killedAt = clock.Elapsed;
        // Only what the leader prints from now on: at start-up it may have used p2 for a moment, before p1 listened.
        int mark = leader.OutputMark;
        cluster.Processes["p1"].Kill();
        await leader.WaitForLineAsync(@"far.*p1.*p2", Patience, since: mark);
        var movedAt = clock.Elapsed;
        // Warm: p2's first DcAck says it holds what far had, so the leader resends only the rest across the WAN.
        var synced = await leader.WaitForLineAsync(@"far: p2 synced at durable index (\d+)", Patience, since: mark);
        Assert.That(ulong.Parse(synced.Groups[1].Value, CultureInfo.InvariantCulture), Is.GreaterThanOrEqualTo(500UL),
            "the standby took over holding what its learners had");
        ulong pastFailover = Math.Min(count, (ulong)(perSecond * (movedAt.TotalSeconds + 1)));
        await Task.WhenAll(learners.Select(l => l.Got.ReachedAsync(pastFailover))).WaitAsync(Patience);
        await cluster.StartNode("p1").WaitForLineAsync("Listening for Peer", Patience);
        await leader.WaitForLineAsync("failing back from relay p2 to p1", Patience);
        var failedBackAt = clock.Elapsed;
        await publishing.WaitAsync(Patience);
        await AllReceivedAsync(learners, count);

        foreach (var (got, _) in learners)
        {
            var atKill = got.LongestStall(killedAt, killedAt + TimeSpan.FromSeconds(3));
            var atFailback = got.LongestStall(failedBackAt - TimeSpan.FromSeconds(0.5), failedBackAt + TimeSpan.FromSeconds(2));
            var elsewhere = got.LongestStall(TimeSpan.Zero, killedAt);
            TestContext.Out.WriteLine($"{got.Name}: longest stall {atKill.TotalMilliseconds:F0} ms around the kill of p1 " +
                $"(failover-after 500 ms), {atFailback.TotalMilliseconds:F0} ms around the failback, {elsewhere.TotalMilliseconds:F0} ms before the kill; " +
                $"reconnects {got.Reconnects}");
        }
        Assert.That(learners.Select(l => l.Got.Reconnects), Is.All.EqualTo(0), "the standby's and the second tier's learners never had to reconnect");

        // p1 serves again after the failback: a learner listing only p1 gets everything.
        var late = Learn(cluster, "p1", count, clock, stop.Token);
        await AllReceivedAsync([late], count);
        stop.Cancel();
        foreach (var (_, run) in learners.Append(late)) await run.WaitAsync(Patience);

        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != cluster.Topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(expected.Count, Is.EqualTo((ulong)count));
        foreach (var member in cluster.Topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(expected), $"member {member.Id} differs from the leader");
    }

    private static (RecordedStream Got, Task Run) Learn(ClusterFixture cluster, string node, int count, Stopwatch clock, CancellationToken ct,
        LineCollector? log = null)
    {
        var got = new RecordedStream("the learner on " + node, count, Payload);
        var options = LearnerClientOptions.Default with
        {
            Endpoints = [cluster.Topology.GetNode(node).Learners!.Value.ToString()],
            Cluster = cluster.Topology.Cluster,
            NodeId = "tree-learner-" + node,
            ReconnectInitial = TimeSpan.FromMilliseconds(50),
            ReconnectMax = TimeSpan.FromSeconds(1),
        };
        return (got, Task.Run(() => got.RecordAsync(options, clock, ct, log?.Factory.CreateLogger<LearnerClient>())));
    }

    private static async Task AllReceivedAsync(IEnumerable<(RecordedStream Got, Task Run)> learners, int count)
    {
        foreach (var (got, _) in learners)
        {
            try { await got.All.Task.WaitAsync(Patience); }
            catch (TimeoutException) { } // asserted below, with what the learner got
            Assert.That(got.Problem, Is.Null);
            Assert.That(got.All.Task.IsCompleted, Is.True, $"{got.Name} got {got.Last} of {count} entries");
        }
    }

    private static Task PublishAsync(ClusterFixture cluster, int count, double perSecond, CancellationToken ct) =>
        RecordedStream.PublishPacedAsync(cluster.Topology.Leader.Publish!.Value.ToString(), count, perSecond, 50, Payload, Patience, ct);
}
