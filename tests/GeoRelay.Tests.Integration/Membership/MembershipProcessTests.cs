using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Tests.Integration.Partition;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Membership;

/// <summary>
/// Runtime membership changes on real processes, under continuous publishing: a fourth datacenter (a relay and two
/// members, with learners) is added and its members promoted, a member of another datacenter is removed, a relay is
/// replaced, and every node is restarted one at a time. Members end with the same log, learners see every entry once in
/// order, and the longest pause of committed writes is printed per step.
/// </summary>
[TestFixture]
public sealed class MembershipProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Test]
    public async Task TheMembershipChangesWhileItServesAndNothingIsLostOrRepeated()
    {
        try
        {
            await RunScenarioAsync();
        }
        catch (Exception e)
        {
            TestContext.Progress.WriteLine("FAILED: " + e);
            throw;
        }
    }

    private static async Task RunScenarioAsync()
    {
        using var cluster = new ClusterFixture("membership.yaml", elections: true);
        string baseYaml = File.ReadAllText(cluster.ConfigPath);
        // The files a membership change moves to: the datacenters section is rewritten, the new nodes uncommented.
        string withAp = Step(baseYaml, "    members: [eu-m1, eu-m2]\n", "    members: [eu-m1, eu-m2]\n  ap-south:\n    relays: [ap-p1]\n    members: [ap-m1, ap-m2]\n", "ap-p1", "ap-m1", "ap-m2");
        string withoutEuM2 = Step(withAp, "    members: [eu-m1, eu-m2]\n", "    members: [eu-m1]\n", "ap-p1", "ap-m1", "ap-m2")
            .Replace("  eu-m2:     {", "#  eu-m2:     {", StringComparison.Ordinal);
        string relayReplaced = Step(withoutEuM2, "    relays: [eu-p1]\n", "    relays: [eu-p2]\n", "eu-p2", "ap-p1", "ap-m1", "ap-m2")
            .Replace("  eu-p1:     {", "#  eu-p1:     {", StringComparison.Ordinal);
        string Write(string name, string yaml)
        {
            string path = Path.Combine(cluster.Directory, name);
            File.WriteAllText(path, yaml);
            return path;
        }
        string s1 = Write("1-ap-south.yaml", withAp), s2 = Write("2-without-eu-m2.yaml", withoutEuM2), s3 = Write("3-eu-p2.yaml", relayReplaced);
        var final = TopologyFile(s3);

        await cluster.StartAllAsync();
        var clock = Stopwatch.StartNew();
        string Address(string node, Func<GeoRelay.Topology.NodeConfig, GeoRelay.Topology.NodeEndpoint?> port) =>
            port(TopologyFile(s1).Nodes.TryGetValue(node, out var n) ? n : TopologyFile(s3).GetNode(node))!.Value.ToString();

        using var stop = new CancellationTokenSource();
        var publisher = new FollowingPublisher(new[] { "us-leader", "us-m1", "eu-m1", "eu-m2", "ap-m1", "ap-m2" }.Select(v => Address(v, n => n.Publish)).ToList());
        var publishing = Task.Run(() => publisher.RunAsync(stop.Token));
        var pauses = new PauseMeter(() => publisher.AckedCount, clock);
        var measuring = Task.Run(() => pauses.RunAsync(stop.Token));
        var learners = new List<Learner>
        {
            new("learner-eu", [Address("eu-p1", n => n.Learners), Address("eu-m1", n => n.Learners)], cluster.Topology.Cluster),
            new("learner-us", [Address("us-m1", n => n.Learners), Address("eu-m1", n => n.Learners)], cluster.Topology.Cluster),
        };
        foreach (var l in learners) l.Start(stop.Token);
        var table = new List<(string Step, double Seconds, double LongestPauseMs, int Committed)>();
        async Task Measured(string step, Func<Task> action)
        {
            TestContext.Progress.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {step}");
            var started = clock.Elapsed;
            int before = publisher.AckedCount;
            await action();
            // Writes go on after the step: the pause it caused is over once entries commit again.
            foreach (var (id, p) in cluster.Processes)
                if (p.HasExited && id != "eu-m2" && id != "eu-p1")
                    Assert.Fail($"{id} exited during '{step}':\n{string.Join("\n", p.Output.Split('\n').TakeLast(40))}\n{p.Errors}");
            await Poll.UntilAsync(() => Task.FromResult(publisher.AckedCount), n => n >= before + 200, $"writes committed after '{step}'", Patience);
            table.Add((step, (clock.Elapsed - started).TotalSeconds, pauses.LongestPause(started, clock.Elapsed).TotalMilliseconds, publisher.AckedCount - before));
        }
        string AnyAdmin() => cluster.Processes.Where(p => !p.Value.HasExited && Admins(s3, s1).ContainsKey(p.Key)).Select(p => Admins(s3, s1)[p.Key]).First();
        async Task Apply(string file)
        {
            var apply = cluster.Run("config-apply", $"config apply --admin {AnyAdmin()} --config \"{file}\"");
            Assert.That(await apply.WaitForExitAsync(Patience), Is.EqualTo(0), apply.Output + apply.Errors);
            TestContext.Out.WriteLine(apply.Output.Trim());
        }

        await Poll.UntilAsync(() => Task.FromResult(publisher.AckedCount), n => n >= 500, "the first writes committed", Patience);

        await Measured("add datacenter ap-south (relay ap-p1, members ap-m1 and ap-m2 added as non-voters, then promoted)", async () =>
        {
            foreach (var node in new[] { "ap-m1", "ap-m2", "ap-p1" })
                await cluster.StartNode(node, s1).WaitForLineAsync("Listening for Peer", Patience);
            await Apply(s1);
        });
        var apLearner = new Learner("learner-ap", [Address("ap-p1", n => n.Learners), Address("ap-m1", n => n.Learners)], cluster.Topology.Cluster);
        learners.Add(apLearner);
        apLearner.Start(stop.Token);

        await Measured("remove eu-m2 (a voter of eu-west)", () => Apply(s2));
        Assert.That(await cluster.Processes["eu-m2"].TerminateAsync(Patience), Is.EqualTo(0), "a removed member stops cleanly");

        await Measured("replace relay eu-p1 with eu-p2", async () =>
        {
            await cluster.StartNode("eu-p2", s3).WaitForLineAsync("Listening for Peer", Patience);
            await Apply(s3);
        });
        Assert.That(await cluster.Processes["eu-p1"].TerminateAsync(Patience), Is.EqualTo(0), "a removed relay stops cleanly");

        // Every node restarted in turn; us-m1 on the file it started with, which the log has since changed.
        foreach (var node in new[] { "eu-p2", "ap-p1", "ap-m2", "ap-m1", "eu-m1", "us-m1", "us-leader" })
        {
            await Measured($"restart {node}", async () =>
            {
                Assert.That(await cluster.Processes[node].TerminateAsync(Patience), Is.EqualTo(0), cluster.Processes[node].Output);
                var restarted = cluster.StartNode(node, node == "us-m1" ? cluster.ConfigPath : s3);
                await restarted.WaitForLineAsync("Listening for Peer", Patience);
                if (node == "us-m1") await restarted.WaitForLineAsync("differs from the configuration the log holds", Patience);
                // As the runbook says: the next node only once this one holds what the leader had committed.
                if (final.IsVoter(node)) await CaughtUpAsync(AnyAdmin(), node);
            });
        }

        stop.Cancel();
        await publishing;
        await measuring;
        TestContext.Out.WriteLine($"{publisher.AckedCount} entries committed, {publisher.Unknown.Count} of unknown fate, {publisher.Connections} publisher connections");
        TestContext.Out.WriteLine("| step | took s | longest write pause ms | committed during |");
        TestContext.Out.WriteLine("|---|---:|---:|---:|");
        foreach (var (step, seconds, pause, committed) in table) TestContext.Out.WriteLine($"| {step} | {seconds:0.0} | {pause:0} | {committed} |");

        // Learners reach the last committed entry; then the nodes stop and their logs are compared.
        ulong lastAcked = publisher.Acked.Max(a => a.Index);
        foreach (var l in learners) await Poll.UntilAsync(() => Task.FromResult(l.LastIndex), i => i >= lastAcked, $"{l.Name} at {lastAcked}", Patience);
        foreach (var l in learners) await l.StopAsync();
        foreach (var (id, process) in cluster.Processes)
            if (!process.HasExited) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);

        var members = final.Voters.ToList();
        var reference = cluster.EntriesOf("us-leader").Where(e => !InternalEntries.IsInternal(e.Key.Span)).Select(e => (e.Index, Encoding.UTF8.GetString(e.Payload.Span))).ToList();
        var inLog = reference.ToHashSet();
        var missing = publisher.Acked.Where(a => !inLog.Contains((a.Index, a.Payload))).Take(5).ToList();
        Assert.That(missing, Is.Empty, "every acknowledged entry is in the log where its ack said");
        Assert.That(reference.Select(r => r.Item2).Distinct().Count(), Is.EqualTo(reference.Count), "each payload once in the log");
        foreach (var m in members)
            Assert.That(cluster.LogOf(m).Digest, Is.EqualTo(cluster.LogOf("us-leader").Digest), $"{m}'s log is the leader's");
        foreach (var l in learners)
        {
            Assert.That(l.Problem, Is.Null, l.Name);
            var expected = reference.Where(r => r.Index <= l.LastIndex).ToList();
            var received = l.Received;
            int firstDifference = Enumerable.Range(0, Math.Min(received.Count, expected.Count)).FirstOrDefault(i => received[i] != expected[i], -1);
            Assert.That((received.Count, firstDifference), Is.EqualTo((expected.Count, -1)),
                $"{l.Name} saw every entry once, in order" + (firstDifference >= 0 ? $"; first difference at {firstDifference}: {received[firstDifference]} vs {expected[firstDifference]}" : ""));
        }
    }

    /// <summary>Until the leader reports <paramref name="node"/> reachable and holding, durably, what it had committed when asked first.</summary>
    private static async Task CaughtUpAsync(string anyAdmin, string node)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        ulong mark = 0;
        await Poll.UntilAsync(async () =>
        {
            try
            {
                using var config = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://{anyAdmin}/config"));
                if (config.RootElement.GetProperty("leaderAdmin").GetString() is not { } leaderAdmin) return false;
                using var progress = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://{leaderAdmin}/config/progress/{node}"));
                var p = progress.RootElement;
                if (mark == 0) mark = p.GetProperty("commit").GetUInt64();
                return p.GetProperty("reachable").GetBoolean() && p.GetProperty("durable").GetUInt64() >= mark;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException or KeyNotFoundException or System.Text.Json.JsonException)
            {
                return false; // leadership moving, or the admin endpoint not up yet
            }
        }, caughtUp => caughtUp, $"{node} caught up with the leader", Patience);
    }

    private static GeoRelay.Topology.TopologyConfig TopologyFile(string path) => GeoRelay.Topology.TopologyLoader.LoadFile(path).GetConfigOrThrow();

    private static Dictionary<string, string> Admins(params string[] files)
    {
        var admins = new Dictionary<string, string>();
        foreach (var f in files)
            foreach (var (id, node) in TopologyFile(f).Nodes)
                if (node.Admin is { } a && node.Role != GeoRelay.Topology.NodeRole.Relay) admins.TryAdd(id, a.ToString());
        return admins;
    }

    /// <summary>The file with the datacenters section edited and the named nodes' lines uncommented.</summary>
    private static string Step(string yaml, string find, string replace, params string[] uncomment)
    {
        Assert.That(yaml, Does.Contain(find));
        yaml = yaml.Replace(find, replace, StringComparison.Ordinal);
        foreach (var id in uncomment) yaml = Regex.Replace(yaml, $@"(?m)^#  ({Regex.Escape(id)}: )", "  $1");
        return yaml;
    }

    /// <summary>A learner with fallback endpoints that records every application entry it gets, and checks order as they come.</summary>
    private sealed class Learner(string name, string[] endpoints, string cluster)
    {
        private readonly List<(ulong, string)> _received = new();
        private Task? _run;
        private readonly CancellationTokenSource _stop = new();
        public string Name => name;
        public string? Problem;
        private ulong _last;
        public ulong LastIndex => Volatile.Read(ref _last);

        public List<(ulong, string)> Received
        {
            get { lock (_received) return [.. _received]; }
        }

        public void Start(CancellationToken publishingStopped) => _run = Task.Run(async () =>
        {
            await using var client = new GeoRelay.LearnerClient.LearnerClient(LearnerClientOptions.Default with
            {
                Endpoints = endpoints,
                Cluster = cluster,
                NodeId = name,
                ReconnectInitial = TimeSpan.FromMilliseconds(50),
                ReconnectMax = TimeSpan.FromSeconds(1),
            });
            try
            {
                await foreach (var e in client.SubscribeAsync(1, _stop.Token))
                {
                    if (e.Index <= _last) { Problem ??= $"{name} got {e.Index} after {_last}"; continue; }
                    Volatile.Write(ref _last, e.Index);
                    if (InternalEntries.IsInternal(e.Key.Span)) continue;
                    lock (_received) _received.Add((e.Index, Encoding.UTF8.GetString(e.Payload.Span)));
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        });

        public async Task StopAsync()
        {
            _stop.Cancel();
            if (_run is not null) await _run.WaitAsync(Patience);
        }
    }

    /// <summary>Samples how many writes are committed, to find the longest time without one (a measurement, not a wait).</summary>
    private sealed class PauseMeter(Func<int> committed, Stopwatch clock)
    {
        private readonly List<(TimeSpan At, int Count)> _samples = new();

        public async Task RunAsync(CancellationToken stop)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            try
            {
                while (await timer.WaitForNextTickAsync(stop)) lock (_samples) _samples.Add((clock.Elapsed, committed()));
            }
            catch (OperationCanceledException) { }
        }

        public TimeSpan LongestPause(TimeSpan from, TimeSpan until)
        {
            lock (_samples)
            {
                TimeSpan longest = TimeSpan.Zero, lastProgress = from;
                int count = -1;
                foreach (var (at, n) in _samples)
                {
                    if (at < from || at > until) continue;
                    if (count >= 0 && n > count) { longest = TimeSpan.FromTicks(Math.Max(longest.Ticks, (at - lastProgress).Ticks)); lastProgress = at; }
                    count = n;
                }
                return longest;
            }
        }
    }
}
