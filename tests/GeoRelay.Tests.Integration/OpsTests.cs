using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.Cli;
using GeoRelay.LearnerClient;
using GeoRelay.Cli.Demo;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration;

/// <summary>What an operator sees: the demo, /metrics, /healthz, /status, `georelay status`, OTLP, SIGTERM.</summary>
[TestFixture]
[NonParallelizable]
public sealed class OpsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static string Lines(int count, int from = 0)
    {
        var text = new StringBuilder(count * 60);
        for (int i = from; i < from + count; i++) text.Append(CultureInfo.InvariantCulture, $"{{\"order\":{i},\"note\":\"ops {i}\"}}\n");
        return text.ToString();
    }

    /// <summary>Publishes without producer markers (<c>--exactly-once false</c>), so the counts and indexes here are the lines'.</summary>
    private static async Task PublishAsync(ClusterFixture cluster, int count, int from = 0)
    {
        var p = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed --exactly-once false", Lines(count, from));
        Assert.That(await p.WaitForExitAsync(Patience), Is.EqualTo(0), p.Output);
    }

    private static string AdminOf(ClusterFixture cluster, string node) => cluster.Topology.GetNode(node).Admin!.Value.ToString();

    private static async Task<JsonElement> StatusAsync(ClusterFixture cluster, string node) =>
        JsonDocument.Parse(await Http.GetStringAsync($"http://{AdminOf(cluster, node)}/status")).RootElement;

    /// <summary>The value of one sample in Prometheus text, by metric name and a label that must be present.</summary>
    private static double Sample(string metrics, string name, string label = "")
    {
        foreach (var line in metrics.Split('\n'))
        {
            if (!line.StartsWith(name + "{", StringComparison.Ordinal) || !line.Contains(label, StringComparison.Ordinal)) continue;
            return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        Assert.Fail($"no sample {name} with {label} in:\n{metrics}");
        return 0;
    }

    [Test]
    public async Task TheDemoWithElectionsKillsTheLeaderElectsAnotherAndTheLeaderLeadsAgainWhenBack()
    {
        using var cluster = new ClusterFixture("three-regions.yaml", elections: true);
        var demo = cluster.Run("demo", $"demo --config \"{cluster.ConfigPath}\" --duration 12s --rate 2000 --learners 2");
        Assert.That(await demo.WaitForExitAsync(Patience), Is.EqualTo(0), demo.Output);
        var output = demo.Output;
        string preferred = cluster.Topology.PreferredLeaderId;
        Assert.That(output, Does.Match($@"Summary event t=\S+ killed the leader {preferred} \(term \d+\)"), "the preferred leader led, and was killed");
        var elected = Regex.Match(output, @"Summary event t=\S+ (\S+) leads term (\d+), ([\d.]+) s after the leader died; writes go to it");
        Assert.That(elected.Success, Is.True, output);
        Assert.That(elected.Groups[1].Value, Is.Not.EqualTo(preferred).And.Not.Contain("-p"), "a member took over");
        Assert.That(output, Does.Match($@"Summary event t=\S+ restarted {preferred} on its data"));
        Assert.That(output, Does.Match($@"Summary event t=\S+ {preferred} leads term \d+; writes go to it"), "leadership came back to the preferred leader");
        Assert.That(output, Does.Contain("every datacenter and learner has every entry: yes"), output);
        foreach (var dc in cluster.Topology.Datacenters)
        {
            var m = Regex.Match(output, $@"Summary dc={dc.Name} route=\S+ acked=(\d+) learners=2 learners_received=(\d+) ");
            Assert.That(m.Success, Is.True, $"no summary for {dc.Name}:\n{output}");
            Assert.That(m.Groups[2].Value, Is.EqualTo(m.Groups[1].Value), $"{dc.Name}: every learner reached the last entry, once and in order");
        }
    }

    [Test]
    public async Task DemoRunsToCompletionFailsOverAndReportsDeliveriesInEveryDatacenter()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        // Its stdout is a pipe, so the demo prints plain lines instead of the live table.
        var demo = cluster.Run("demo", $"demo --config \"{cluster.ConfigPath}\" --duration 4s --rate 2000 --learners 2");
        Assert.That(await demo.WaitForExitAsync(Patience), Is.EqualTo(0), demo.Output);
        var output = demo.Output;
        Assert.That(output, Does.Not.Contain("\u001b["), "no terminal escapes when stdout is not a terminal");
        Assert.That(output, Does.Match(@"t=1s dc=eu-west route=relay:eu-p\d acked=\d+ learners_min=\d+ p50="), "a plain progress line per datacenter each second");

        var total = Regex.Match(output, @"Summary: published ([\d,]+), committed ([\d,]+); every datacenter and learner has every entry: yes");
        Assert.That(total.Success, Is.True, output);
        long published = long.Parse(total.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
        Assert.That(published, Is.GreaterThan(1000));
        int failovers = 0;
        foreach (var dc in cluster.Topology.Datacenters)
        {
            var m = Regex.Match(output, $@"Summary dc={dc.Name} route=(\S+) acked=(\d+) learners=(\d+) learners_received=(\d+) p50=\S+ p99=\S+ failovers=(\d+)");
            Assert.That(m.Success, Is.True, $"no summary for {dc.Name}:\n{output}");
            Assert.That(long.Parse(m.Groups[2].Value), Is.EqualTo(published), $"{dc.Name}: members acked");
            Assert.That(int.Parse(m.Groups[3].Value), Is.EqualTo(2), $"{dc.Name}: learners");
            Assert.That(long.Parse(m.Groups[4].Value), Is.EqualTo(published), $"{dc.Name}: every learner got every entry");
            failovers += int.Parse(m.Groups[5].Value);
        }
        Assert.That(Regex.IsMatch(output, @"Summary event t=\S+ stopped relay (eu|ap)-p\d, the active route of"), Is.True, output);
        Assert.That(failovers, Is.GreaterThanOrEqualTo(1), "the stopped relay shows as a failover");
    }

    [Test]
    public async Task MetricsHealthAndStatusMoveAsEntriesFlowAndOtlpReceivesThem()
    {
        using var cluster = new ClusterFixture("local.yaml");
        using var collector = new OtlpCollector("georelay.entries");
        string leaderId = cluster.Topology.LeaderId;
        cluster.ExtraArguments[leaderId] = $"--log-format json --otlp {collector.Url} --otlp-interval 500ms";
        await cluster.StartAllAsync();
        var leader = cluster.Processes[leaderId];
        await leader.WaitForLineAsync("Admin endpoint on", Patience);

        // JSON logs: each line one object with the event id of the source-generated message.
        var adminLine = leader.Output.Split('\n').First(l => l.Contains("Admin endpoint on", StringComparison.Ordinal));
        var logged = JsonDocument.Parse(adminLine).RootElement;
        Assert.That(logged.GetProperty("EventId").GetInt32(), Is.EqualTo(506));

        string leaderMetrics = $"http://{AdminOf(cluster, leaderId)}/metrics";
        var before = await Http.GetStringAsync(leaderMetrics);
        double entriesBefore = Sample(before, "georelay_entries_total");
        double sentBefore = Sample(before, "georelay_dc_sent_bytes_total", "peer_dc=\"local\"");
        await PublishAsync(cluster, 3_000);
        var after = await Http.GetStringAsync(leaderMetrics);
        Assert.That(Sample(after, "georelay_entries_total") - entriesBefore, Is.EqualTo(3_000));
        Assert.That(Sample(after, "georelay_index_commit"), Is.EqualTo(3_000));
        Assert.That(Sample(after, "georelay_dc_sent_bytes_total", "peer_dc=\"local\""), Is.GreaterThan(sentBefore));
        Assert.That(Sample(after, "georelay_peer_sent_bytes_total", "peer=\"m1\""), Is.GreaterThan(0));
        Assert.That(Sample(after, "georelay_dc_ack_latency_seconds_count", "peer_dc=\"local\""), Is.GreaterThan(0));
        Assert.That(after, Does.Contain("# TYPE georelay_dc_failovers_total counter"));

        // A member's own metrics and status follow.
        string memberMetrics = $"http://{AdminOf(cluster, "m1")}/metrics";
        await Poll.UntilAsync(async () => Sample(await Http.GetStringAsync(memberMetrics), "georelay_index_durable"), v => v >= 3_000, "m1 durable index in /metrics", Patience);
        var health = await Http.GetAsync($"http://{AdminOf(cluster, "m1")}/healthz");
        Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await health.Content.ReadAsStringAsync(), Does.Contain("\"running\""));

        var status = await StatusAsync(cluster, leaderId);
        Assert.That(status.GetProperty("role").GetString(), Is.EqualTo("leader"));
        Assert.That(status.GetProperty("indexes").GetProperty("commit").GetUInt64(), Is.EqualTo(3_000UL));
        var peers = status.GetProperty("peers").EnumerateArray().ToDictionary(p => p.GetProperty("id").GetString()!);
        foreach (var m in new[] { "m1", "m2", "m3" })
        {
            Assert.That(peers[m].GetProperty("state").GetString(), Is.EqualTo("direct"), m);
            Assert.That(peers[m].GetProperty("bytesSent").GetInt64(), Is.GreaterThan(0), m);
        }

        // OTLP: the collector got protobuf with our metric names in it (an early push may carry only the resource).
        var pushed = await collector.Received.WaitAsync(Patience);
        Assert.That(pushed.Path, Is.EqualTo("/v1/metrics"));
        Assert.That(pushed.ContentType, Does.Contain("protobuf"));
        Assert.That(Encoding.UTF8.GetString(pushed.Body), Does.Contain("georelay.dc.sent"));
    }

    [Test]
    public async Task StatusShowsTheFailoverAfterTheActiveRelayIsKilled()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        string leaderId = cluster.Topology.LeaderId;
        await PublishAsync(cluster, 2_000);

        // Kill whichever eu-west relay is active now (a busy machine may already have failed one over).
        static JsonElement EuWest(JsonElement status) =>
            status.GetProperty("datacenters").EnumerateArray().First(d => d.GetProperty("name").GetString() == "eu-west");
        var before = EuWest(await StatusAsync(cluster, leaderId));
        string victim = before.GetProperty("route").GetString()!["relay ".Length..];
        long failoversBefore = before.GetProperty("failovers").GetInt64();
        string victimMetrics = $"http://{AdminOf(cluster, victim)}/metrics";
        await Poll.UntilAsync(async () => Sample(await Http.GetStringAsync(victimMetrics), "georelay_index_retained"), v => v >= 2_000, $"{victim} retained index", Patience);
        Assert.That(Sample(await Http.GetStringAsync(victimMetrics), "georelay_relay_batches_total"), Is.GreaterThan(0));
        cluster.Processes[victim].Kill();
        await PublishAsync(cluster, 2_000, 2_000);
        var after = await Poll.UntilAsync(async () => EuWest(await StatusAsync(cluster, leaderId)),
            dc => dc.GetProperty("route").GetString() != "relay " + victim && dc.GetProperty("connected").GetBoolean(), $"eu-west off {victim}", Patience);
        string survivor = victim == "eu-p1" ? "eu-p2" : "eu-p1";
        Assert.That(after.GetProperty("failovers").GetInt64(), Is.GreaterThan(failoversBefore));

        var status = cluster.Run("status", $"status --admin {AdminOf(cluster, leaderId)}");
        Assert.That(await status.WaitForExitAsync(Patience), Is.EqualTo(0), status.Output);
        var text = status.Output;
        Assert.That(text, Does.Not.Contain("\u001b["), "no terminal escapes into a pipe");
        Assert.That(text, Does.Match($@"│ eu-west\s+│ {Regex.Escape(after.GetProperty("route").GetString()!)}\s+│ yes"), text);
        Assert.That(text, Does.Match($@"│ {victim}\s+│ relay\s+│ eu-west\s+│ failed-over"), text);
        if (after.GetProperty("route").GetString() == "relay " + survivor)
            Assert.That(text, Does.Match($@"│ {survivor}\s+│ relay\s+│ eu-west\s+│ active"), text);
        else
            Assert.That(text, Does.Match(@"│ eu-m1\s+│ member\s+│ eu-west\s+│ direct"), text);
        Assert.That(text, Does.Match(@"│ ap-p\d\s+│ relay\s+│ ap-south\s+│ active"), text);

        var unreachable = cluster.Run("status", $"status --admin {AdminOf(cluster, victim)}");
        Assert.That(await unreachable.WaitForExitAsync(Patience), Is.EqualTo(1));
        Assert.That(unreachable.Output, Does.Contain("cannot read"));

        // The relay that took over shows its members up.
        if (after.GetProperty("route").GetString() != "relay " + survivor) return;
        var relay = cluster.Run("status", $"status --admin {AdminOf(cluster, survivor)}");
        Assert.That(await relay.WaitForExitAsync(Patience), Is.EqualTo(0), relay.Output);
        Assert.That(relay.Output, Does.Match(@"│ eu-m1\s+│ member\s+│ eu-west\s+│ up"), relay.Output);
        Assert.That(relay.Output, Does.Match(@"│ us-leader\s+│ leader\s+│ us-east\s+│ active"), relay.Output);
    }

    [Test]
    public async Task SigtermToTheLeaderUnderLoadLosesNoAcknowledgedEntry()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        string leaderId = cluster.Topology.LeaderId;
        var leader = cluster.Processes[leaderId];

        // Publish (accepted = durable on the leader) with many requests in flight; SIGTERM midway.
        ulong acked = 0;
        Task<int>? terminated = null;
        await using (var client = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ReconnectTimeout = TimeSpan.Zero }))
        {
            var inFlight = new Queue<Task<PublishResult>>();
            var payload = Encoding.UTF8.GetBytes("{\"event\":\"under load\",\"padding\":\"................................................\"}");
            var batch = Enumerable.Repeat(new PublishEntry(ReadOnlyMemory<byte>.Empty, payload), 256).ToList();
            for (int request = 0; request < 2_000; request++)
            {
                if (terminated is null && acked >= 20_000) terminated = leader.TerminateAsync(Patience);
                inFlight.Enqueue(client.PublishAsync(batch, WaitLevel.Accepted).AsTask());
                if (inFlight.Count < 16) continue;
                try
                {
                    var ack = await inFlight.Dequeue().WaitAsync(Patience);
                    acked = Math.Max(acked, ack.LastIndex);
                }
                catch (PublishFailedException)
                {
                    break; // the leader closed the publish connection as it stopped
                }
            }
            while (inFlight.Count > 0)
            {
                try { var ack = await inFlight.Dequeue().WaitAsync(Patience); acked = Math.Max(acked, ack.LastIndex); }
                catch (PublishFailedException) { }
            }
        }
        Assert.That(terminated, Is.Not.Null, "the leader was stopped under load");
        Assert.That(await terminated!, Is.EqualTo(0), leader.Output);
        Assert.That(leader.Output, Does.Match("Drained: every connected datacenter acked through"), leader.Output);
        Assert.That(acked, Is.GreaterThanOrEqualTo(20_000UL));

        // The drain waited for the acks: every member already holds every acknowledged entry.
        foreach (var member in cluster.Topology.AllMembers)
        {
            var durable = (await StatusAsync(cluster, member.Id)).GetProperty("indexes").GetProperty("durable").GetUInt64();
            Assert.That(durable, Is.GreaterThanOrEqualTo(acked), $"{member.Id} durable index after the leader drained");
        }

        // Restarted, the leader resumes from its log and everyone converges on the same log.
        var restarted = cluster.StartNode(leaderId);
        await restarted.WaitForLineAsync("Listening for Publish", Patience);
        await PublishAsync(cluster, 1_000);
        Assert.That(await restarted.TerminateAsync(Patience), Is.EqualTo(0), restarted.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != leaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = cluster.LogOf(leaderId);
        Assert.That(expected.Last, Is.GreaterThanOrEqualTo(acked + 1_000));
        foreach (var member in cluster.Topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(expected), $"member {member.Id} log differs from the leader's");
    }

    [Test]
    public async Task SigtermWhileTheAdminEndpointStartsStillDrainsAndExitsZero()
    {
        using var cluster = new ClusterFixture("local.yaml");
        // Returns once the leader listens for publishes; its admin endpoint starts after that.
        await cluster.StartAllAsync();
        var leader = cluster.Processes[cluster.Topology.LeaderId];
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        Assert.That(leader.Output, Does.Contain("Admin endpoint on").And.Contain("Drained: every connected datacenter acked through 0"), leader.Output);
    }

    /// <summary>An OTLP/HTTP collector on a free loopback port that waits for a push containing <paramref name="marker"/>.</summary>
    private sealed class OtlpCollector : IDisposable
    {
        private readonly string _marker;
        private readonly HttpListener _listener = new();
        private readonly TaskCompletionSource<(string Path, string ContentType, byte[] Body)> _received = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Url { get; }
        public Task<(string Path, string ContentType, byte[] Body)> Received => _received.Task;

        public OtlpCollector(string marker)
        {
            _marker = marker;
            int port = LocalCluster.FreeLoopbackPorts(1)[0];
            Url = $"http://127.0.0.1:{port}";
            _listener.Prefixes.Add(Url + "/");
            _listener.Start();
            _ = Task.Run(AcceptAsync);
        }

        private async Task AcceptAsync()
        {
            try
            {
                while (_listener.IsListening)
                {
                    var context = await _listener.GetContextAsync();
                    using var body = new MemoryStream();
                    await context.Request.InputStream.CopyToAsync(body);
                    context.Response.StatusCode = 200;
                    context.Response.Close();
                    if (Encoding.UTF8.GetString(body.ToArray()).Contains(_marker, StringComparison.Ordinal))
                        _received.TrySetResult((context.Request.Url!.AbsolutePath, context.Request.ContentType ?? "", body.ToArray()));
                }
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }

        public void Dispose() => _listener.Close();
    }
}
