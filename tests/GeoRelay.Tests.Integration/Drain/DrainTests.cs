using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Drain;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;
using LearnerClientOptions = GeoRelay.LearnerClient.LearnerClientOptions;

/// <summary>SIGTERM to a member or a relay while entries flow: it finishes what it took, acks it, exits 0, loses nothing.</summary>
[TestFixture]
[NonParallelizable]
public sealed class DrainTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Test]
    public async Task AMemberStoppedUnderLoadEndsItsLogAtAnIndexItAckedAndCatchesUpWhenBack()
    {
        var clock = Stopwatch.StartNew();
        const ulong total = 10_000;
        using var cluster = new ClusterFixture("local.yaml");
        await cluster.StartAllAsync();
        var m2 = cluster.Processes["m2"];

        Task<int>? stopped = null;
        ulong acked = await PublishAsync(cluster, 1, total, WaitLevel.Committed, Patience, chunk: 100, onAcked: a =>
        {
            if (stopped is null && a >= 2_000) stopped = m2.TerminateAsync(Patience);
            return Task.CompletedTask;
        });
        Assert.That(acked, Is.EqualTo(total), "m1 and m3 kept committing");
        Assert.That(stopped, Is.Not.Null);
        Assert.That(await stopped!, Is.EqualTo(0), m2.Output);
        var drained = Regex.Match(m2.Output, @"Member drained: log ends at (\d+), durable and acked to 1 upstream");
        Assert.That(drained.Success, Is.True, m2.Output);
        ulong end = ulong.Parse(drained.Groups[1].Value);
        Assert.That(end, Is.LessThan(total), "m2 stopped while entries still flowed");

        // Its log ends exactly where its last ack said, and that ack reached the leader.
        Assert.That(cluster.LogOf("m2").Last, Is.EqualTo(end));
        var seen = await Poll.UntilAsync(async () => (await LeaderPeerAsync(cluster, "m2")).GetProperty("index").GetUInt64(), i => i >= end,
            "the leader heard m2's last ack", Patience);
        Assert.That(seen, Is.EqualTo(end), "m2 never acked past the end of its log");

        var restarted = cluster.StartNode("m2");
        await restarted.WaitForLineAsync($@"Recovered log: entries 1\.\.{end}\b", Patience);
        await Poll.UntilAsync(() => DurableAsync(cluster, "m2"), d => d >= total, "m2 caught up", Patience);
        await StopAllAndCompareAsync(cluster, total);
        TestContext.Out.WriteLine($"m2 drained at {end} of {total}; took {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Test]
    public async Task ARelayStoppedUnderLoadHandsOverToTheNextRelayAndLosesNothing()
    {
        var clock = Stopwatch.StartNew();
        const ulong total = 10_000;
        using var cluster = new ClusterFixture("drain.yaml");
        await cluster.StartAllAsync();
        var far = cluster.Topology.GetDatacenter("far");
        using var stopLearning = new CancellationTokenSource();
        var endpoints = far.Relays.Concat(far.Members).Select(id => cluster.Topology.GetNode(id).Learners!.Value.ToString()).ToList();
        var learner = Task.Run(() => LearnAsync(cluster.Topology.Cluster, endpoints, total, stopLearning.Token));

        string? victim = null;
        Task<int>? stopped = null;
        ulong acked = await PublishAsync(cluster, 1, total, WaitLevel.Committed, Patience, chunk: 100, onAcked: async a =>
        {
            if (stopped is not null || a < 3_000) return;
            var status = await StatusAsync(cluster, cluster.Topology.LeaderId);
            string route = status.GetProperty("datacenters").EnumerateArray().First(d => d.GetProperty("name").GetString() == "far").GetProperty("route").GetString()!;
            Assert.That(route, Does.StartWith("relay "), "far is served by a relay when one is stopped");
            victim = route["relay ".Length..];
            stopped = cluster.Processes[victim].TerminateAsync(Patience);
        });
        Assert.That(acked, Is.EqualTo(total));
        Assert.That(stopped, Is.Not.Null);
        var relay = cluster.Processes[victim!];
        Assert.That(await stopped!, Is.EqualTo(0), relay.Output);
        Assert.That(relay.Output, Does.Match(@"Relay drained: members acked through [1-9]\d*"), "it acked what it had");
        string next = victim == "p1" ? "p2" : "p1";
        string leaderOutput = cluster.Processes[cluster.Topology.LeaderId].Output;
        var failover = Regex.Match(leaderOutput, $@"Datacenter far: relay {victim} failed \(.*\); now routing via (\S+)");
        Assert.That(failover.Success, Is.True, leaderOutput);
        // A busy machine may have failed the other relay over earlier; the leader then sends directly meanwhile.
        bool nextFailedEarlier = leaderOutput.Contains($"relay {next} failed", StringComparison.Ordinal);
        Assert.That(failover.Groups[1].Value, nextFailedEarlier ? Is.EqualTo(next).Or.EqualTo("direct") : Is.EqualTo(next), leaderOutput);

        // The learner resumed on another node and saw every entry once, in order.
        var problem = await learner.WaitAsync(Patience);
        Assert.That(problem, Is.Null);
        stopLearning.Cancel();
        await StopAllAndCompareAsync(cluster, total);
        TestContext.Out.WriteLine($"stopped {victim}; took {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>
    /// Stops every running node, the leader first (its drain waits until every member it reaches holds everything),
    /// each exiting 0; then every member's log must be the leader's.
    /// </summary>
    private static async Task StopAllAndCompareAsync(ClusterFixture cluster, ulong total)
    {
        var leaderProcess = cluster.Processes[cluster.Topology.LeaderId];
        Assert.That(await leaderProcess.TerminateAsync(Patience), Is.EqualTo(0), leaderProcess.Output);
        foreach (var process in cluster.Processes.Values)
            if (!process.HasExited) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var leader = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(leader.Last, Is.EqualTo(total));
        foreach (var member in cluster.Topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(leader), $"member {member.Id}'s log differs from the leader's");
    }

    /// <summary>Subscribes from 1 and checks every entry arrives once, in order, as published; null when all of them did.</summary>
    private static async Task<string?> LearnAsync(string cluster, List<string> endpoints, ulong total, CancellationToken ct)
    {
        var options = LearnerClientOptions.Default with
        {
            Endpoints = endpoints,
            Cluster = cluster,
            NodeId = "drain-learner",
            ReconnectInitial = TimeSpan.FromMilliseconds(50),
            ReconnectMax = TimeSpan.FromSeconds(1),
        };
        await using var client = new LearnerClient(options);
        ulong last = 0;
        try
        {
            await foreach (var entry in client.SubscribeAsync(1, ct))
            {
                string payload = Encoding.UTF8.GetString(entry.Payload.Span);
                if (entry.Index != last + 1 || payload != Payload(entry.Index))
                    return $"after entry {last} the learner got {entry.Index} ('{payload}')";
                last = entry.Index;
                if (last == total) return null;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
        return $"the learner got {last} of {total} entries";
    }
}
