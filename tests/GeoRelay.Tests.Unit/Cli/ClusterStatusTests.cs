using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using GeoRelay.Cli;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using NUnit.Framework;
using Spectre.Console;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay status --config FILE`: one table of every node's learners, with totals per datacenter and the nodes that are down.
[TestFixture]
public sealed class ClusterStatusTests
{
    // Small with limits: p1 2, a1 5 (a2 serves no learners); p2 has none.
    private static TopologyConfig Topology() => Valid(Small
        .Replace("p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022 }", "p1: { dc: away, listen: 127.0.0.1:7021, learners: 127.0.0.1:7022, max-learners: 2 }")
        .Replace("a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042 }", "a1: { dc: away, listen: 127.0.0.1:7041, learners: 127.0.0.1:7042, max-learners: 5 }"));

    private static NodeStatusReport Report(string node, string role, string dc, string? feed, int? learners, int? max, ElectionReport? election = null) =>
        new(node, role, dc, 3, "running", new StatusIndexes(10, 10, 10, 0), 0, 0, [], [],
            learners is { } n ? new LearnerReport(n, 0, 0, null, max) : null, null, election, feed);

    private static ClusterStatusReport Sample()
    {
        var answers = new Dictionary<string, (NodeStatusReport?, string?)>
        {
            ["ldr"] = (Report("ldr", "leader", "home", "leader", null, null), null),
            ["h1"] = (Report("h1", "member", "home", "leader ldr", 0, null), null),
            ["p1"] = (Report("p1", "relay", "away", "leader ldr", 2, 2), null),
            ["p2"] = (null, "cannot read http://127.0.0.1:7033/status: Connection refused (127.0.0.1:7033)"),
            ["a1"] = (Report("a1", "member", "away", "relay p1", 4, 5, new ElectionReport(3, "follower", "ldr", null, 0)), null),
        }; // a2: no admin address, not asked
        return ClusterQuery.Build(Topology(), answers);
    }

    [Test]
    public void EveryNodeByDatacenterWithItsFeedLearnersAndLimitAndATotalPerDatacenter()
    {
        var report = Sample();
        var away = report.Datacenters.Single(d => d.Name == "away");
        Assert.Multiple(() =>
        {
            Assert.That(report.Datacenters.Select(d => d.Name), Is.EqualTo(new[] { "home", "away" }));
            Assert.That(report.Datacenters[0].Nodes.Select(n => n.Node), Is.EqualTo(new[] { "ldr", "h1" }), "the leader first in its datacenter");
            Assert.That(away.Nodes.Select(n => n.Node), Is.EqualTo(new[] { "p1", "p2", "a1", "a2" }), "relays, then members");
            Assert.That(away.Nodes[0], Is.EqualTo(new NodeLearners("p1", "relay", "running", "leader ldr", 2, 2, true)));
            Assert.That(away.Nodes[1], Is.EqualTo(new NodeLearners("p2", "relay",
                "down: cannot read http://127.0.0.1:7033/status: Connection refused (127.0.0.1:7033)", null, null, null, true)));
            Assert.That(away.Nodes[2], Is.EqualTo(new NodeLearners("a1", "member", "running", "follower, relay p1", 4, 5, true)));
            Assert.That(away.Nodes[3], Is.EqualTo(new NodeLearners("a2", "member", "not asked (no admin address)", null, null, null, false)));
            Assert.That(report.Datacenters[0].Nodes[1].Learners, Is.Null, "h1 has no learner port: its 0 is no count");
            Assert.That(away.Learners, Is.EqualTo(6), "p1 and a1; p2 did not answer");
            Assert.That(away.MaxLearners, Is.Null, "p2 has no limit");
            Assert.That(report.Down, Is.EqualTo(1));
        });
    }

    [Test]
    public void TheTotalLimitIsTheSumWhenEveryNodeServingLearnersHasOne()
    {
        var topology = Topology() with { Defaults = ClusterDefaults.Default with { MaxLearners = 10 } };
        var report = ClusterQuery.Build(topology, new Dictionary<string, (NodeStatusReport?, string?)>());
        var away = report.Datacenters.Single(d => d.Name == "away");
        Assert.That(away.MaxLearners, Is.EqualTo(2 + 10 + 5), "p1, p2 (the default), a1; a2 serves no learners");
        Assert.That(away.Learners, Is.Zero);
    }

    [Test]
    public void TheTableAndItsJson()
    {
        var report = Sample();
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, Out = new AnsiConsoleOutput(text), Interactive = InteractionSupport.No });
        console.Profile.Width = 240;
        ClusterStatus.Print(console, report);
        string table = text.ToString();
        Assert.That(table, Does.Match(@"│ away\s+│ p1\s+│ relay\s+│ running\s+│ leader ldr\s+│ 2\s+│ 2\s+│"), table);
        Assert.That(table, Does.Match(@"│ away\s+│ p2\s+│ relay\s+│ down: cannot read .*Connection refused.*│ -\s+│ -\s+│ no limit\s+│"), table);
        Assert.That(table, Does.Match(@"│ away\s+│ total\s+│\s+│\s+│\s+│ 6\s+│ no limit\s+│"), table);
        Assert.That(table, Does.Match(@"│ home\s+│ h1\s+│ member\s+│ running\s+│ leader ldr\s+│ -\s+│ -\s+│"), table);
        Assert.That(table, Does.Match(@"│ home\s+│ total\s+│\s+│\s+│\s+│ 0\s+│ -\s+│"), table);
        Assert.That(table, Does.Contain("1 node(s) did not answer; their learners are not counted"));

        var json = JsonDocument.Parse(ClusterQuery.Json(report)).RootElement;
        var p1 = json.GetProperty("datacenters")[1].GetProperty("nodes")[0];
        Assert.That((p1.GetProperty("node").GetString(), p1.GetProperty("feed").GetString(), p1.GetProperty("learners").GetInt32(), p1.GetProperty("maxLearners").GetInt32()),
            Is.EqualTo(("p1", "leader ldr", 2, 2)));
        Assert.That(json.GetProperty("datacenters")[1].GetProperty("learners").GetInt32(), Is.EqualTo(6));
        Assert.That(json.GetProperty("down").GetInt32(), Is.EqualTo(1));
    }

    [Test]
    public async Task ANodeThatDoesNotAnswerInTimeOrAtAllIsDownWithTheReason()
    {
        // p1's admin port accepts and never answers; p2's refuses connections.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        int silentPort = ((IPEndPoint)silent.LocalEndpoint).Port;
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        int closedPort = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var topology = Valid(Small
            .Replace("learners: 127.0.0.1:7022 }", $"learners: 127.0.0.1:7022, admin: 127.0.0.1:{silentPort} }}")
            .Replace("learners: 127.0.0.1:7032 }", $"learners: 127.0.0.1:7032, admin: 127.0.0.1:{closedPort} }}"));

        var report = await ClusterQuery.QueryAsync(topology, null, null, TimeSpan.FromMilliseconds(300), CancellationToken.None);

        var away = report.Datacenters.Single(d => d.Name == "away").Nodes;
        Assert.That(away[0].State, Is.EqualTo($"down: cannot read http://127.0.0.1:{silentPort}/status: no answer within 0.3 s"));
        Assert.That(away[1].State, Does.StartWith($"down: cannot read http://127.0.0.1:{closedPort}/status: ").And.Contain("refused"));
        Assert.That(report.Down, Is.EqualTo(2));
    }
}
