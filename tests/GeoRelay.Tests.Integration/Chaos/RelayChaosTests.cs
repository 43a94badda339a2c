using System.Diagnostics;
using System.Globalization;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.Cli;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Chaos;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;
using LearnerClientOptions = GeoRelay.LearnerClient.LearnerClientOptions;

/// <summary>
/// Real georelay processes of three-regions.yaml on loopback: entries are published while a script
/// SIGKILLs and restarts a random relay every few seconds, and once kills every relay of one region.
/// Members must end identical, every learner must see every entry exactly once and in order; the
/// longest delivery stall after each kill is printed.
/// </summary>
/// <remarks>
/// <c>GEORELAY_CHAOS_ENTRIES</c> sets how many entries (default 100,000), <c>GEORELAY_CHAOS_SECONDS</c>
/// over how long they are published (default 25), <c>GEORELAY_CHAOS_SEED</c> the seed of the kill script (default 1).
/// </remarks>
[TestFixture]
[NonParallelizable]
public sealed class RelayChaosTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    private sealed record Kill(TimeSpan At, string[] Relays, string Datacenter);

    private static string Payload(ulong index) => $"chaos entry {index.ToString(CultureInfo.InvariantCulture)}";

    [Test]
    public async Task RelaysKilledAtRandomLoseNothingAndLearnersSeeEveryEntryOnceInOrder()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_CHAOS_ENTRIES"), out var n) ? n : 100_000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_CHAOS_SEED"), out var s) ? s : 1;
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("GEORELAY_CHAOS_SECONDS"), CultureInfo.InvariantCulture, out var d) ? d : 25;
        TestContext.Out.WriteLine($"chaos: {count} entries over {seconds} s, seed {seed} (GEORELAY_CHAOS_ENTRIES, GEORELAY_CHAOS_SECONDS, GEORELAY_CHAOS_SEED)");
        var random = new Random(seed);
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        var topology = cluster.Topology;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();

        // One learner per region, listing the region's relays first, then its members.
        var learners = new List<(RecordedStream Got, Task Run)>();
        foreach (var dc in topology.Datacenters)
        {
            var endpoints = dc.Relays.Concat(dc.Members).Select(id => topology.GetNode(id).Learners!.Value.ToString()).ToList();
            var got = new RecordedStream(dc.Name, count, Payload);
            var options = LearnerClientOptions.Default with
            {
                Endpoints = endpoints,
                Cluster = topology.Cluster,
                NodeId = "chaos-learner-" + dc.Name,
                ReconnectInitial = TimeSpan.FromMilliseconds(50),
                ReconnectMax = TimeSpan.FromSeconds(1),
            };
            learners.Add((got, Task.Run(() => got.RecordAsync(options, clock, stop.Token))));
        }

        // Publish at a steady pace (so stalls show) while the kill script runs.
        // A steady pace, long enough for several kills, so that stalls show.
        var publishing = Task.Run(() => RecordedStream.PublishPacedAsync(topology.Leader.Publish!.Value.ToString(), count, count / seconds, 500, Payload, Patience, stop.Token));
        var kills = await KillRelaysAsync(cluster, random, publishing, clock);
        await publishing.WaitAsync(Patience);

        foreach (var (got, _) in learners)
        {
            try { await got.All.Task.WaitAsync(Patience); }
            catch (TimeoutException) { } // asserted below, with what the learner got
            Assert.That(got.Problem, Is.Null, $"learner in {got.Name}");
            Assert.That(got.All.Task.IsCompleted, Is.True, $"learner in {got.Name} got {got.Last} of {count} entries");
        }
        stop.Cancel();
        foreach (var (_, run) in learners) await run.WaitAsync(Patience);

        // Stalls: after each kill, the longest wait for the next entry by a learner of that region.
        foreach (var (kill, i) in kills.Select((k, i) => (k, i)))
        {
            var until = i + 1 < kills.Count ? kills[i + 1].At : clock.Elapsed;
            var stall = learners.Where(l => l.Got.Name == kill.Datacenter)
                .Select(l => l.Got.LongestStall(kill.At, until)).Max();
            TestContext.Out.WriteLine($"kill {i + 1} at {kill.At.TotalSeconds:F1} s: {string.Join(" + ", kill.Relays)} ({kill.Datacenter}); longest delivery stall after it: {stall.TotalMilliseconds:F0} ms");
        }

        // Every member holds the whole log, then everything stops cleanly and the logs are compared.
        foreach (var member in topology.AllMembers)
            await WaitForIndexAsync(topology.Cluster, topology.GetNode(member.Id).Learners!.Value.ToString(), (ulong)count);
        var leader = cluster.Processes[topology.LeaderId];
        Assert.That(leader.Output, Does.Contain("sending to its members directly"), "with every relay of a region down, the leader sends directly");
        Assert.That(leader.Output, Does.Contain("leaving direct mode"), "and returns to a relay once one answers");
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = cluster.LogOf(topology.LeaderId);
        Assert.That(expected.Count, Is.EqualTo((ulong)count));
        foreach (var member in topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(expected), $"member {member.Id} differs from the leader");
        Assert.That(kills.Count(k => k.Relays.Length > 1), Is.EqualTo(1), "every relay of one region was killed once");
    }

    /// <summary>Kills a random running relay every 2-4 s and restarts it 0.5-1.5 s later; halfway, kills every relay of one region for 3 s.</summary>
    private static async Task<List<Kill>> KillRelaysAsync(ClusterFixture cluster, Random random, Task publishing, Stopwatch clock)
    {
        var topology = cluster.Topology;
        var regions = topology.Datacenters.Where(d => d.Relays.Count > 0).ToList();
        var relays = regions.SelectMany(d => d.Relays).ToList();
        var kills = new List<Kill>();
        bool wholeRegionDone = false;
        int round = 0;
        while (!publishing.IsCompleted)
        {
            // The kill schedule: a few seconds apart, or sooner if publishing ends first.
            await Task.WhenAny(publishing, Task.Delay(TimeSpan.FromMilliseconds(2000 + random.Next(2000))));
            if (publishing.IsCompleted) break;
            round++;
            string[] victims;
            string region;
            if (!wholeRegionDone && round >= 2)
            {
                var dc = regions[random.Next(regions.Count)];
                victims = dc.Relays.ToArray();
                region = dc.Name;
                wholeRegionDone = true;
            }
            else
            {
                var p = relays[random.Next(relays.Count)];
                victims = [p];
                region = topology.GetNode(p).Datacenter;
            }
            kills.Add(new Kill(clock.Elapsed, victims, region));
            foreach (var v in victims) cluster.Processes[v].Kill();
            await Task.WhenAny(publishing, Task.Delay(victims.Length > 1 ? 3000 : 500 + random.Next(1000)));
            foreach (var v in victims)
                await cluster.StartNode(v).WaitForLineAsync("Listening for Peer", Patience);
        }
        Assert.That(wholeRegionDone, Is.True, "publishing ended before every relay of a region was killed; publish more entries");
        return kills;
    }


    /// <summary>Returns once the node serves entry <paramref name="index"/> to a learner (members serve what is durable).</summary>
    private static async Task WaitForIndexAsync(string cluster, string endpoint, ulong index)
    {
        var options = LearnerClientOptions.Default with { Endpoints = [endpoint], Cluster = cluster, NodeId = "chaos-check" };
        await using var client = new LearnerClient(options);
        using var timeout = new CancellationTokenSource(Patience);
        await foreach (var entry in client.SubscribeAsync(index, timeout.Token))
        {
            Assert.That(entry.Index, Is.EqualTo(index));
            return;
        }
    }
}
