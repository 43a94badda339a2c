using System.Diagnostics;
using System.Text;
using System.Text.Json;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Elections;

/// <summary>
/// Real `georelay leader` and `georelay member` processes with <c>elections: true</c>: the voters elect a leader,
/// SIGKILL of the leader makes another voter lead, and the preferred leader, restarted on its data, leads again.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ElectionProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Test]
    public async Task AKilledLeaderIsReplacedByAnElectedMemberAndLeadsAgainWhenBack()
    {
        var clock = Stopwatch.StartNew();
        using var cluster = new ClusterFixture("elections.yaml", elections: true);
        await cluster.StartAllAsync();
        string preferred = cluster.Topology.PreferredLeaderId;
        var voters = cluster.Topology.Voters.ToList();

        var first = await LeaderAsync(cluster, voters, v => v == preferred, "the preferred leader elected");
        var published = await PublishCommittedAsync(cluster, "before", 100);

        cluster.Processes[preferred].Kill();
        var successor = await LeaderAsync(cluster, voters.Where(v => v != preferred).ToList(), _ => true, "a member elected after the kill");
        Assert.That(successor.Term, Is.GreaterThan(first.Term));
        var status = await StatusAsync(cluster, successor.Node);
        Assert.That(status.GetProperty("role").GetString(), Is.EqualTo("leader"), "the member's /status says it leads");
        using (var http = new HttpClient())
        {
            string metrics = await http.GetStringAsync($"http://{cluster.Topology.GetNode(successor.Node).Admin}/metrics");
            Assert.That(metrics, Does.Match(@"(?m)^georelay_election_leader\{[^}]*\} 1$"), "the elected member's metrics say it leads");
            Assert.That(metrics, Does.Match($@"(?m)^georelay_election_term\{{[^}}]*\}} {successor.Term}$"));
        }
        var shown = cluster.Run("status", $"status --admin {cluster.Topology.GetNode(successor.Node).Admin}");
        Assert.That(await shown.WaitForExitAsync(Patience), Is.EqualTo(0), shown.Output);
        Assert.That(shown.Output, Does.Contain($"election: term {successor.Term}, leader, leader {successor.Node}"));
        await Poll.UntilAsync(async () => (await StatusAsync(cluster, successor.Node)).GetProperty("indexes").GetProperty("commit").GetUInt64(),
            commit => commit > published.Max(), "the successor commits its no-op, and with it what the old leader committed", Patience);

        // A publisher given every voter's publish address finds the new leader: the others refuse, naming it.
        string everyone = string.Join(",", voters.Select(v => cluster.Topology.GetNode(v).Publish!.Value.ToString()));
        var during = cluster.Run("publish", $"publish --connect {everyone} --wait committed",
            string.Concat(Enumerable.Range(0, 50).Select(i => $"during {i}\n")));
        Assert.That(await during.WaitForExitAsync(Patience), Is.EqualTo(0), during.Output + during.Errors);

        cluster.StartNode(preferred);
        var back = await LeaderAsync(cluster, voters, v => v == preferred, "leadership back on the restarted preferred leader");
        Assert.That(back.Term, Is.GreaterThan(successor.Term));
        published.AddRange(await PublishCommittedAsync(cluster, "after", 100));

        // Moved on purpose (maintenance): a follower says who leads instead; the leader hands over and the command waits.
        var refused = cluster.Run("transfer-leader", $"transfer-leader --admin {cluster.Topology.GetNode("m1").Admin} --to m3");
        Assert.That(await refused.WaitForExitAsync(Patience), Is.EqualTo(1));
        Assert.That(refused.Errors, Does.Contain("m1 does not lead; leader leads term"));
        var moved = cluster.Run("transfer-leader", $"transfer-leader --admin {cluster.Topology.GetNode(preferred).Admin} --to m3");
        Assert.That(await moved.WaitForExitAsync(Patience), Is.EqualTo(0), moved.Output + moved.Errors);
        Assert.That(moved.Output, Does.Match(@"m3 leads term \d+ \(was leader, term \d+\)"));

        // Stop everything (the leader hands over first), then every voter's log holds the 250 entries once, in order.
        foreach (var process in cluster.Processes.Values)
            if (!process.HasExited) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = Enumerable.Range(0, 100).Select(i => $"before {i}")
            .Concat(Enumerable.Range(0, 50).Select(i => $"during {i}"))
            .Concat(Enumerable.Range(0, 100).Select(i => $"after {i}")).ToList();
        foreach (var voter in voters)
        {
            var entries = cluster.EntriesOf(voter).Where(e => !InternalEntries.IsInternal(e.Key.Span)).Select(e => Encoding.UTF8.GetString(e.Payload.Span)).ToList();
            Assert.That(entries, Is.EqualTo(expected), $"{voter}'s log");
        }
        Assert.That(cluster.Processes[successor.Node].Output, Does.Contain($"leads term {successor.Term}"));
        TestContext.Out.WriteLine($"terms {first.Term} -> {successor.Term} ({successor.Node}) -> {back.Term}; took {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Test]
    public async Task APublisherFeedingThroughEveryVoterSurvivesTheLeadersKillAndEveryLineIsInTheLogOnce()
    {
        const int Lines = 4096;
        using var cluster = new ClusterFixture("elections.yaml", elections: true);
        await cluster.StartAllAsync();
        string preferred = cluster.Topology.PreferredLeaderId;
        var voters = cluster.Topology.Voters.ToList();
        var first = await LeaderAsync(cluster, voters, v => v == preferred, "the preferred leader elected");
        var expected = Enumerable.Range(0, Lines).Select(i => $"line {i:D5}").ToList();

        // A learner on every voter's learner port (the leader serves none while it leads): it must see each line once, in order.
        var seen = new List<string>();
        using var stopLearning = new CancellationTokenSource();
        var learning = Task.Run(async () =>
        {
            await using var learner = new GeoRelay.LearnerClient.LearnerClient(LearnerClientOptions.Default with
            {
                Endpoints = voters.Select(v => cluster.Topology.GetNode(v).Learners!.Value.ToString()).ToArray(),
                Cluster = cluster.Topology.Cluster,
                NodeId = "election-learner",
                ReconnectInitial = TimeSpan.FromMilliseconds(50),
                ReconnectMax = TimeSpan.FromSeconds(1),
            });
            try
            {
                await foreach (var e in learner.SubscribeAsync(1, stopLearning.Token))
                    if (!InternalEntries.IsInternal(e.Key.Span)) lock (seen) seen.Add(Encoding.UTF8.GetString(e.Payload.Span));
            }
            catch (OperationCanceledException) when (stopLearning.IsCancellationRequested) { }
        });
        int Seen() { lock (seen) return seen.Count; }
        try
        {
            // One publisher process, given every voter's publish address, fed at a steady pace; the leader is SIGKILLed
            // just after the 2048th line, with requests in flight.
            string everyone = string.Join(",", voters.Select(v => cluster.Topology.GetNode(v).Publish!.Value.ToString()));
            var publisher = cluster.Run("publish", $"publish --connect {everyone} --wait committed --reconnect-timeout 60s", keepInputOpen: true);
            for (int i = 0; i < Lines; i++)
            {
                await publisher.Input.WriteLineAsync(expected[i]);
                if ((i + 1) % 16 != 0) continue;
                await publisher.Input.FlushAsync();
                if (i + 1 == Lines / 2) cluster.Processes[preferred].Kill();
                await Task.Delay(10); // the feed's pace, not synchronisation
            }
            publisher.Input.Close();
            Assert.That(await publisher.WaitForExitAsync(Patience), Is.EqualTo(0), publisher.Output);
            Assert.That(publisher.Errors, Does.Contain($"published {Lines} entries (committed)"));
            var reconnected = System.Text.RegularExpressions.Regex.Match(publisher.Errors, @"Reconnected to (\S+) after .*; (\d+) unacknowledged requests sent again");
            Assert.That(reconnected.Success, Is.True, "the publisher followed the leader: " + publisher.Errors);

            var successor = await LeaderAsync(cluster, voters.Where(v => v != preferred).ToList(), _ => true, "a member elected after the kill");
            Assert.That(successor.Term, Is.GreaterThan(first.Term));
            Assert.That(reconnected.Groups[1].Value, Is.EqualTo(cluster.Topology.GetNode(successor.Node).Publish!.Value.ToString()), "it publishes to the new leader");
            await Poll.UntilAsync(() => Task.FromResult(Seen()), n => n >= Lines, "the learner's lines", Patience);

            // The old leader, restarted on its data, catches up and leads again (preferred leader).
            cluster.StartNode(preferred);
            var back = await LeaderAsync(cluster, voters, v => v == preferred, "leadership back on the restarted preferred leader");
            Assert.That(back.Term, Is.GreaterThan(successor.Term));
            TestContext.Out.WriteLine($"terms {first.Term} -> {successor.Term} ({successor.Node}) -> {back.Term}; {reconnected.Groups[2].Value} requests sent again");
        }
        finally
        {
            stopLearning.Cancel();
            await learning.WaitAsync(Patience);
        }
        lock (seen) Assert.That(seen, Is.EqualTo(expected), "the learner saw every line once, in order");

        foreach (var process in cluster.Processes.Values)
            if (!process.HasExited) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        foreach (var voter in voters)
        {
            var entries = cluster.EntriesOf(voter).Where(e => !InternalEntries.IsInternal(e.Key.Span)).Select(e => Encoding.UTF8.GetString(e.Payload.Span)).ToList();
            Assert.That(entries, Is.EqualTo(expected), $"{voter}'s log holds every line once, in publish order");
        }
    }

    private readonly record struct Leading(string Node, ulong Term);

    /// <summary>Polls the voters' /status until one that <paramref name="wanted"/> accepts says it leads.</summary>
    private static async Task<Leading> LeaderAsync(ClusterFixture cluster, List<string> voters, Func<string, bool> wanted, string what) =>
        await Poll.UntilAsync(async () =>
        {
            foreach (var v in voters)
            {
                if (cluster.Processes[v].HasExited) continue;
                JsonElement status;
                try { status = await StatusAsync(cluster, v); }
                catch (HttpRequestException) { continue; } // its admin endpoint is not up yet
                var election = status.GetProperty("election");
                if (election.GetProperty("role").GetString() == "leader" && wanted(v))
                    return new Leading(v, election.GetProperty("term").GetUInt64());
            }
            return default;
        }, l => l.Node is not null, what, Patience);

    /// <summary>Publishes <paramref name="count"/> entries to the preferred leader's publish port, each waited for as committed; their indexes.</summary>
    private static async Task<List<ulong>> PublishCommittedAsync(ClusterFixture cluster, string prefix, int count)
    {
        await using var client = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
        {
            Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()],
        });
        var indexes = new List<ulong>();
        for (int i = 0; i < count; i += 10)
        {
            var entries = Enumerable.Range(i, 10).Select(n => new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes($"{prefix} {n}"))).ToList();
            var ack = await client.PublishAsync(entries, WaitLevel.Committed).AsTask().WaitAsync(Patience);
            Assert.That(ack.Level, Is.EqualTo(WaitLevel.Committed));
            for (ulong x = ack.FirstIndex; x <= ack.LastIndex; x++) indexes.Add(x);
        }
        return indexes;
    }
}
