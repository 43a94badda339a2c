using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Partition;

/// <summary>
/// A real partition, not a crash: the elected leader runs alone in a network namespace, and nftables silently drops
/// every packet on its link for several seconds while a publisher keeps committing. The three members elect one of
/// themselves, the publisher carries on through it, the isolated leader steps down and acknowledges nothing it could
/// not commit, and after the heal it rejoins with a log equal to the majority's.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LeaderPartitionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    // The fault itself: the least time the leader's link stays silent (the default election timeout is 1 s).
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(5);
    private const int IsolatedEntries = 512; // one request of `georelay publish`
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(3) };

    private NetworkNamespace? _namespace;
    private ClusterFixture? _cluster;
    private readonly List<GeoRelayProcess> _inNamespace = new();

    [SetUp]
    public void CreateNamespace()
    {
        _namespace = NetworkNamespace.TryCreate("grpart", out string whyNot);
        if (_namespace is null) Assert.Ignore($"no network namespace for the partition: {whyNot}");
    }

    [TearDown]
    public void CleanUp()
    {
        // The namespace's processes first: a namespace lives on while a process runs in it.
        foreach (var p in _inNamespace) p.Dispose();
        _cluster?.Dispose();
        _namespace?.Dispose();
    }

    [Test]
    public async Task AnIsolatedLeaderIsReplacedAcknowledgesNothingItCannotCommitAndRejoinsAfterTheHeal()
    {
        var clock = Stopwatch.StartNew();
        var ns = _namespace!;
        // The leader listens inside the namespace, the members on the root end of the pair: all traffic between them
        // crosses the pair, which the partition silences.
        var cluster = _cluster = new ClusterFixture("elections.yaml", yaml => Regex.Replace(yaml, @"(?m)^([ ]+)(\w+):([ ]*\{.*)$",
            m => m.Groups[1].Value + m.Groups[2].Value + ":" + m.Groups[3].Value.Replace("127.0.0.1", m.Groups[2].Value == "leader" ? ns.InnerAddress : ns.HostAddress)), elections: true);
        string preferred = cluster.Topology.PreferredLeaderId;
        Assert.That(cluster.Topology.GetNode(preferred).Publish!.Value.Host, Is.EqualTo(ns.InnerAddress), "the leader is placed in the namespace");
        var voters = cluster.Topology.Voters.ToList();
        var members = voters.Where(v => v != preferred).ToList();
        string PublishOf(string node) => cluster.Topology.GetNode(node).Publish!.Value.ToString();

        await StartAsync(cluster, preferred, members);
        var first = await LeaderAsync(cluster, voters, v => v == preferred, "the preferred leader elected");

        // A publisher inside the namespace, connected now (its requests later reach the leader over loopback, which the
        // partition leaves alone): what it sends once the link is silent, the leader can take but never commit.
        var isolated = new GeoRelayProcess("isolated-publisher", $"publish --connect {PublishOf(preferred)} --wait committed",
            launcher: ns.Launcher, keepInputOpen: true);
        _inNamespace.Add(isolated);
        await Poll.UntilAsync(() => PublishersAsync(cluster, preferred), n => n >= 1, "the isolated publisher connected to the leader", Patience);

        var load = new FollowingPublisher(voters.Select(PublishOf).ToList());
        using var stopLoad = new CancellationTokenSource(Patience * 3); // bounds the load if a wait below never returns
        var loading = Task.Run(() => load.RunAsync(stopLoad.Token));
        try
        {
            await Poll.UntilAsync(() => Task.FromResult(load.AckedThrough(PublishOf(preferred))), n => n >= 200,
                "the load committing through the first leader", Patience);

            int followedBefore = Regex.Matches(cluster.Processes[preferred].Output, "follows in term").Count;
            ns.Partition();
            var cut = Stopwatch.StartNew();
            var cutAfter = load.Acked.Max(a => a.Index);
            await isolated.Input.WriteAsync(string.Concat(Enumerable.Range(0, IsolatedEntries).Select(i => $"isolated {i}\n")));
            isolated.Input.Close();

            var successor = await LeaderAsync(cluster, members, _ => true, "a member elected while the leader is cut off");
            Assert.That(successor.Term, Is.GreaterThan(first.Term));
            var elected = cut.Elapsed;
            await Poll.UntilAsync(() => Task.FromResult(Regex.Matches(cluster.Processes[preferred].Output, "follows in term").Count),
                n => n > followedBefore, "the isolated leader stepping down (check-quorum)", Patience);
            await Poll.UntilAsync(() => Task.FromResult(load.AckedThrough(PublishOf(successor.Node))), n => n >= 200,
                "the load committing through the elected member", Patience);
            Assert.That(await isolated.WaitForExitAsync(Patience), Is.Not.EqualTo(0),
                "the isolated leader acknowledged the isolated publisher's entries: " + isolated.Output);
            Assert.That(isolated.Errors, Does.Not.Contain("published"));
            var carriedOn = cut.Elapsed;
            ulong committedWhileCut = (await StatusAsync(cluster, successor.Node))?.GetProperty("indexes").GetProperty("commit").GetUInt64() ?? 0;
            Assert.That(committedWhileCut, Is.GreaterThan(cutAfter), "the elected member committed while the leader was cut off");
            // The fault lasts at least Silence, not a stand-in for synchronisation: everything awaited above is done.
            if (cut.Elapsed < Silence) await Task.Delay(Silence - cut.Elapsed);
            ns.Heal();
            var silent = cut.Elapsed;

            // Rejoining: the old leader hears the new term, gives up what it took alone, and catches up.
            var truncated = await cluster.Processes[preferred].WaitForLineAsync(@"Truncated uncommitted entries after (\d+): a newer epoch \((\d+)\)", Patience);
            Assert.That(ulong.Parse(truncated.Groups[2].Value), Is.GreaterThanOrEqualTo(successor.Term));
            Assert.That(ulong.Parse(truncated.Groups[1].Value), Is.GreaterThanOrEqualTo(cutAfter), "it kept every entry committed before the partition");
            var agreed = await AgreedAsync(cluster, voters, successor.Term, committedWhileCut, "every voter following one leader, holding what was committed while the leader was cut off");
            int lastBefore = load.AckedCount;
            await Poll.UntilAsync(() => Task.FromResult(load.AckedCount), n => n >= lastBefore + 200, "the load committing after the heal", Patience);

            stopLoad.Cancel();
            await loading.WaitAsync(Patience);
            // With the preferred leader leading: a transfer to it still to come would add its term's no-op while the
            // voters are killed one after another, and only some of them would hold it.
            var settled = await AgreedAsync(cluster, voters, agreed.Term, null, "the preferred leader leading and every voter holding the whole log once the load stopped",
                leader: preferred);

            // Stopped all at once, leader first: SIGTERM would hand leadership over, and the new term's no-op would reach
            // only the voters still running. Every entry is durable everywhere by now, so SIGKILL loses nothing.
            cluster.Processes[settled.Leader].Kill();
            foreach (var v in voters) cluster.Processes[v].Kill();

            var logs = voters.ToDictionary(v => v, cluster.EntriesOf);
            var expected = logs[settled.Leader];
            Assert.That(expected, Has.Count.EqualTo((int)settled.Last), "the leader's log holds what it reported");
            foreach (var v in voters)
            {
                Assert.That(cluster.LogOf(v).Digest, Is.EqualTo(cluster.LogOf(settled.Leader).Digest), $"{v}'s log (index, epoch, key, payload) equals the leader's");
                Assert.That(logs[v].Select(e => (e.Index, e.Epoch)), Is.EqualTo(expected.Select(e => (e.Index, e.Epoch))), $"{v}'s indexes and epochs");
            }
            var payloads = expected.Where(e => !InternalEntries.IsInternal(e.Key.Span)).Select(e => (e.Index, Payload: Encoding.UTF8.GetString(e.Payload.Span))).ToList();
            Assert.That(payloads.Where(p => p.Payload.StartsWith("isolated ", StringComparison.Ordinal)), Is.Empty,
                "nothing the isolated leader took alone is in the log");
            var counts = payloads.GroupBy(p => p.Payload).ToDictionary(g => g.Key, g => g.Count());
            Assert.That(counts.Where(c => c.Value > 1).Select(c => c.Key), Is.Empty, "no entry twice");
            var atIndex = payloads.ToDictionary(p => p.Index, p => p.Payload);
            var acked = load.Acked;
            var missing = acked.Where(a => !atIndex.TryGetValue(a.Index, out var p) || p != a.Payload).ToList();
            Assert.That(missing, Is.Empty, "every acknowledged entry is in every log, at the index its acknowledgement said");
            var published = acked.Select(a => a.Payload).Concat(load.Unknown).ToHashSet();
            Assert.That(payloads.Where(p => !published.Contains(p.Payload)), Is.Empty, "nothing in the log that was not published");

            TestContext.Out.WriteLine($"terms {first.Term} -> {successor.Term} ({successor.Node}) -> {settled.Term} ({settled.Leader}); "
                + $"member elected {elected.TotalSeconds:F1} s and load through it {carriedOn.TotalSeconds:F1} s after the cut, link silent {silent.TotalSeconds:F1} s; "
                + $"{acked.Count} entries acknowledged ({load.AckedThrough(PublishOf(successor.Node))} through {successor.Node}), "
                + $"{load.Unknown.Count} unknown, {payloads.Count - acked.Count} of those in the log; {load.Connections} client(s); "
                + $"old leader truncated after {truncated.Groups[1].Value} (last committed before the cut: {cutAfter}); took {clock.Elapsed.TotalSeconds:F1} s");
            foreach (var f in load.Failures) TestContext.Out.WriteLine("  publisher: " + f);
            TestContext.Out.WriteLine("  isolated publisher: " + isolated.Errors.Trim());
        }
        finally
        {
            stopLoad.Cancel();
            try { await loading.WaitAsync(Patience); } catch (Exception e) when (e is not AssertionException) { TestContext.Out.WriteLine($"load: {e}"); }
        }
    }

    /// <summary>Members first, each once it listens; then the leader inside the namespace; then every admin endpoint.</summary>
    private async Task StartAsync(ClusterFixture cluster, string leader, List<string> members)
    {
        await Task.WhenAll(members.Select(m => cluster.StartNode(m).WaitForLineAsync("Listening for Peer", Patience)));
        var process = new GeoRelayProcess(leader, $"leader --config \"{cluster.ConfigPath}\" --data \"{cluster.DataOf(leader)}\"",
            launcher: _namespace!.Launcher);
        _inNamespace.Add(process);
        cluster.Processes[leader] = process;
        await process.WaitForLineAsync("Listening for Publish", Patience);
        foreach (var p in cluster.Processes.Values) await p.WaitForLineAsync("Admin endpoint on", Patience);
    }

    private readonly record struct Leading(string Node, ulong Term);

    private readonly record struct Agreement(string Leader, ulong Term, ulong Last);

    /// <summary>A node's /status; null while it does not answer (starting, or cut off).</summary>
    private static async Task<JsonElement?> StatusAsync(ClusterFixture cluster, string node)
    {
        try
        {
            return JsonDocument.Parse(await Http.GetStringAsync($"http://{cluster.Topology.GetNode(node).Admin!.Value}/status")).RootElement;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Polls <paramref name="voters"/> until one that <paramref name="wanted"/> accepts says it leads.</summary>
    private static Task<Leading> LeaderAsync(ClusterFixture cluster, List<string> voters, Func<string, bool> wanted, string what) =>
        Poll.UntilAsync(async () =>
        {
            foreach (var v in voters)
            {
                if (await StatusAsync(cluster, v) is not { } status) continue;
                var election = status.GetProperty("election");
                if (election.GetProperty("role").GetString() == "leader" && wanted(v))
                    return new Leading(v, election.GetProperty("term").GetUInt64());
            }
            return default;
        }, l => l.Node is not null, what, Patience);

    /// <summary>
    /// Polls until every voter answers, all in one term of at least <paramref name="term"/> with one leader (<paramref name="leader"/>, when given) that leads
    /// it, and every log is durable and committed through <paramref name="through"/> (null: the leader's last index,
    /// and no further).
    /// </summary>
    private static Task<Agreement> AgreedAsync(ClusterFixture cluster, List<string> voters, ulong term, ulong? through, string what, string? leader = null) =>
        Poll.UntilAsync(async () =>
        {
            var seen = new List<(string Node, ulong Term, string? Leader, string? Role, ulong Last, ulong Durable, ulong Commit)>();
            foreach (var v in voters)
            {
                if (await StatusAsync(cluster, v) is not { } s) return default;
                var e = s.GetProperty("election");
                var i = s.GetProperty("indexes");
                seen.Add((v, e.GetProperty("term").GetUInt64(), e.TryGetProperty("leader", out var l) ? l.GetString() : null,
                    e.GetProperty("role").GetString(), i.GetProperty("last").GetUInt64(), i.GetProperty("durable").GetUInt64(), i.GetProperty("commit").GetUInt64()));
            }
            var leading = seen.Find(x => x.Role == "leader");
            if (leading.Node is null || leading.Term < term || (leader is not null && leading.Node != leader)) return default;
            foreach (var x in seen)
            {
                if (x.Term != leading.Term || x.Leader != leading.Node) return default;
                bool holds = through is { } t
                    ? x.Durable >= t && x.Commit >= t
                    : x.Last == leading.Last && x.Durable == leading.Last && x.Commit == leading.Last;
                if (!holds) return default;
            }
            return new Agreement(leading.Node, leading.Term, leading.Last);
        }, a => a.Leader is not null, what, Patience);

    /// <summary>Publisher connections the node has open (its /status "publishers" row); 0 while it does not answer.</summary>
    private static async Task<int> PublishersAsync(ClusterFixture cluster, string node)
    {
        if (await StatusAsync(cluster, node) is not { } status) return 0;
        foreach (var peer in status.GetProperty("peers").EnumerateArray())
            if (peer.GetProperty("id").GetString() == "publishers") return peer.GetProperty("connections").GetInt32();
        return 0;
    }
}
