using System.Net;
using System.Text.Json;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec;
using GeoRelay.TestUtilities;
using GeoRelay.Tests.Integration.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Admin;

/// <summary>
/// A member's learners through its admin endpoint, on an insecure loopback cluster without auth (whose admin endpoint is
/// open): each learner's received and delivered index, cutting one learner, and the address blacklist.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LearnerAdminTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private ClusterFixture _cluster = null!;
    private AdminHttp _admin = null!;
    private string _adminAddress = null!;
    private EndPoint _learnerPort = null!;
    private readonly List<RawLearner> _learners = new();

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        // Raw learners do not resume elsewhere: a pause of the leader on a busy machine must not get them sent away.
        _cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("idle-timeout: 1h", "idle-timeout: 1h\n  failover-after: 30s"));
        _adminAddress = $"127.0.0.1:{LocalCluster.FreeLoopbackPorts(1)[0]}";
        _cluster.ExtraArguments["m1"] = $"--admin {_adminAddress}";
        await _cluster.StartAllAsync();
        // A member refuses learners until the leader feeds it, and raw learners do not retry.
        await _cluster.Processes["m1"].WaitForLineAsync(@"Connected to leader \(Leader\)", Patience);
        _admin = new AdminHttp(_adminAddress);
        _learnerPort = _cluster.Topology.GetNode("m1").Learners!.Value.ToEndPoint();
    }

    [TearDown]
    public void ShowTheNodesOnFailure()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status != NUnit.Framework.Interfaces.TestStatus.Failed) return;
        foreach (var (id, process) in _cluster.Processes) TestContext.Out.WriteLine($"--- {id}:\n{process.Output}");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        foreach (var l in _learners) await l.DisposeAsync();
        _admin?.Dispose();
        _cluster?.Dispose();
    }

    private async Task<RawLearner> ConnectAsync(string name, string from = "127.0.0.1")
    {
        var learner = await RawLearner.ConnectAsync(_learnerPort, name, _cluster.Topology.Cluster, "", IPAddress.Parse(from));
        _learners.Add(learner);
        return learner;
    }

    /// <summary>
    /// Publishes <paramref name="count"/> entries, committed; returns the index of the last, as the command reports it
    /// (the leader's own last index may be an internal entry, the exactly-once producer marker, learners never get).
    /// </summary>
    private async Task<ulong> PublishAsync(int count)
    {
        var p = _cluster.Run("publish", $"publish --leader {_cluster.Topology.Leader.Publish} --wait committed", string.Concat(Enumerable.Repeat("entry\n", count)));
        Assert.That(await p.WaitForExitAsync(Patience), Is.EqualTo(0), p.Output);
        var reported = System.Text.RegularExpressions.Regex.Match(p.Output, @"published \d+ entries \(committed\), last index (\d+)");
        Assert.That(reported.Success, Is.True, p.Output);
        return ulong.Parse(reported.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<Dictionary<string, JsonElement>> LearnersAsync()
    {
        var list = JsonDocument.Parse(await _admin.GetAsync("/learners")).RootElement;
        return list.EnumerateArray().ToDictionary(l => l.GetProperty("id").GetString()!);
    }

    private async Task<string> RunAsync(string arguments, int exitCode = 0)
    {
        var run = _cluster.Run("georelay", arguments);
        Assert.That(await run.WaitForExitAsync(Patience), Is.EqualTo(exitCode), run.Output);
        return run.Output;
    }

    [Test]
    public async Task EachLearnersReceivedAndDeliveredIndexShowInStatusAndMoveWhenItConfirms()
    {
        var a = await ConnectAsync("indexes-a");
        var b = await ConnectAsync("indexes-b");
        ulong last = await PublishAsync(10);
        await a.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);
        await b.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);

        // No token: an insecure node without auth keeps its admin endpoint open.
        var status = await _admin.StatusAsync();
        var rows = status.GetProperty("learners").GetProperty("connections").EnumerateArray().ToDictionary(l => l.GetProperty("id").GetString()!);
        foreach (var (learner, row) in new[] { (a, rows["indexes-a"]), (b, rows["indexes-b"]) })
        {
            Assert.That(row.GetProperty("receivedIndex").GetUInt64(), Is.EqualTo(last), learner.Name);
            Assert.That(row.GetProperty("deliveredIndex").GetUInt64(), Is.EqualTo(0UL), $"{learner.Name} confirmed nothing yet");
            Assert.That(row.GetProperty("state").GetString(), Is.EqualTo("live"), learner.Name);
            Assert.That(row.GetProperty("from").GetUInt64(), Is.EqualTo(1UL));
            Assert.That(row.GetProperty("remote").GetString(), Does.StartWith("127.0.0.1:"), learner.Name);
            Assert.That(row.GetProperty("queuedBytes").GetInt64(), Is.GreaterThanOrEqualTo(0));
        }

        await a.ConfirmAsync(last - 3);
        var moved = await Poll.UntilAsync(LearnersAsync, l => l["indexes-a"].GetProperty("deliveredIndex").GetUInt64() == last - 3,
            "indexes-a's delivered index after its Confirm", Patience);
        Assert.That(moved["indexes-b"].GetProperty("deliveredIndex").GetUInt64(), Is.EqualTo(0UL), "only the learner that confirmed moved");

        ulong next = await PublishAsync(5);
        await a.WaitUntilAsync(x => x.LastIndex == next, $"received {next}", Patience);
        var after = await Poll.UntilAsync(LearnersAsync, l => l["indexes-a"].GetProperty("receivedIndex").GetUInt64() == next, "received index moves", Patience);
        Assert.That(after["indexes-a"].GetProperty("deliveredIndex").GetUInt64(), Is.EqualTo(last - 3), "delivered stays at what was confirmed");

        string table = await RunAsync($"status --admin {_adminAddress}");
        Assert.That(table, Does.Match(@"│ \d+\s+│ indexes-a\s+│ 127\.0\.0\.1:\d+\s+│ \(all\)\s+│ live\s+│ 1\s+│ " + next + @"\s+│ " + (last - 3)), table);
    }

    [Test]
    public async Task DisconnectCutsExactlyThatLearnerWithAReasonAndTheOthersContinue()
    {
        var victim = await ConnectAsync("cut-victim");
        var bystander = await ConnectAsync("cut-bystander");
        ulong last = await PublishAsync(3);
        await victim.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);
        await bystander.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);
        int connection = (await LearnersAsync())["cut-victim"].GetProperty("connection").GetInt32();

        string listed = await RunAsync($"learners --admin {_adminAddress}");
        Assert.That(listed, Does.Match($@"│ {connection}\s+│ cut-victim\s+│"), listed);
        string output = await RunAsync($"learners disconnect {connection} --admin {_adminAddress}");
        Assert.That(output, Does.Contain($"disconnected learner connection {connection}"));

        await victim.WaitUntilAsync(x => x.Closed, "cut", Patience);
        Assert.That(victim.Error?.Code, Is.EqualTo(CodecError.None), victim.ToString());
        Assert.That(victim.Error?.Message, Does.Contain("disconnected by an operator through the admin endpoint of m1"));
        ulong next = await PublishAsync(3);
        await bystander.WaitUntilAsync(x => x.LastIndex == next, $"received {next} on its first connection", Patience);
        Assert.That(bystander.Closed, Is.False);
        var learners = await LearnersAsync();
        Assert.That(learners.ContainsKey("cut-victim"), Is.False);
        Assert.That(learners.ContainsKey("cut-bystander"), Is.True);

        var (status, body, _) = await _admin.SendAsync(HttpMethod.Post, $"/learners/{connection}/disconnect");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound), body);
        Assert.That(body, Does.Contain($"no open learner connection {connection}"));
        var metrics = await _admin.GetAsync("/metrics");
        Assert.That(AdminHttp.Sample(metrics, "georelay_refusals_total", "reason=\"AdminDisconnect\""), Is.GreaterThanOrEqualTo(1), metrics);
    }

    [Test]
    public async Task BlacklistRefusesAnAddressWithAClearReasonCutsItsOpenConnectionsAndRemovalLetsItBackIn()
    {
        var open = await ConnectAsync("from-127.0.0.3", "127.0.0.3");
        var elsewhere = await ConnectAsync("from-127.0.0.1");
        ulong last = await PublishAsync(2);
        await open.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);
        await elsewhere.WaitUntilAsync(x => x.LastIndex == last, $"received {last}", Patience);

        string added = await RunAsync($"blacklist add 127.0.0.2/31 --duration 1h --admin {_adminAddress}");
        Assert.That(added, Does.Contain("blacklisted 127.0.0.2/31 until").And.Contain("cut 1 connection(s)"));
        await open.WaitUntilAsync(x => x.Closed, "cut by the blacklist", Patience);
        Assert.That(open.Error?.Code, Is.EqualTo(CodecError.Unauthorized), open.ToString());
        Assert.That(open.Error?.Message, Does.Contain("address 127.0.0.3 is blacklisted on this node (127.0.0.2/31, until"));

        var refused = await ConnectAsync("from-127.0.0.2", "127.0.0.2");
        await refused.WaitUntilAsync(x => x.Closed, "refused", Patience);
        Assert.That(refused.Welcomed, Is.False);
        Assert.That(refused.Error?.Code, Is.EqualTo(CodecError.Unauthorized), refused.ToString());
        Assert.That(refused.Error?.Message, Does.Contain("address 127.0.0.2 is blacklisted on this node"));
        await _cluster.Processes["m1"].WaitForLineAsync(@"Refused connection from 127\.0\.0\.2:\d+: Unauthorized: .*address 127\.0\.0\.2 is blacklisted", Patience);
        Assert.That(elsewhere.Closed, Is.False, "other addresses stay connected");

        string list = await RunAsync($"blacklist list --admin {_adminAddress}");
        Assert.That(list, Does.Contain("127.0.0.2/31").And.Contain("until"));
        var metrics = await _admin.GetAsync("/metrics");
        Assert.That(AdminHttp.Sample(metrics, "georelay_refusals_total", "reason=\"Blacklisted\""), Is.GreaterThanOrEqualTo(2), metrics);

        var (badStatus, badBody, _) = await _admin.SendAsync(HttpMethod.Post, "/blacklist", json: "{\"address\":\"10.0.0.1/8\"}");
        Assert.That(badStatus, Is.EqualTo(HttpStatusCode.BadRequest), badBody);
        Assert.That(badBody, Does.Contain("10.0.0.1 has bits set past the first 8; the range is written 10.0.0.0/8"));

        Assert.That(await RunAsync($"blacklist remove 127.0.0.2/31 --admin {_adminAddress}"), Does.Contain("removed 127.0.0.2/31"));
        var back = await ConnectAsync("back-from-127.0.0.2", "127.0.0.2");
        ulong next = await PublishAsync(2);
        await back.WaitUntilAsync(x => x.LastIndex == next, $"received {next}", Patience);
        Assert.That(back.Welcomed, Is.True);
        string empty = await RunAsync($"blacklist remove 127.0.0.2/31 --admin {_adminAddress}", exitCode: 1);
        Assert.That(empty, Does.Contain("answered 404").And.Contain("127.0.0.2/31 is not on the blacklist of m1"));
    }
}
