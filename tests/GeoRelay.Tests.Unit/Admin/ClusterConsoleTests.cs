using GeoRelay.Server.Admin;
using GeoRelay.Server.Admin.Console;
using GeoRelay.Topology;
using GeoRelay.Tests.Unit.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Admin;

/// <summary>The console's cluster view and the events it derives from two views in a row (three-regions.yaml).</summary>
public sealed class ClusterConsoleTests
{
    private static readonly TopologyConfig Topology = TopologyLoader.LoadFile(TopologyTestFiles.Sample("three-regions.yaml")).GetConfigOrThrow();
    private static readonly DateTimeOffset T0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    private static NodeStatusReport Report(string node, string role, ulong epoch, params (string Dc, string Route)[] routes) =>
        new(node, role, Topology.GetNode(node).Datacenter, epoch, "running", new StatusIndexes(100, 100, 90, 0), 10, 0, [],
            routes.Select(r => new DatacenterReport(r.Dc, r.Route, true, 90, 10, 5, 1000, 4000, 4.0, 0, 0, 0)).ToList(), null);

    /// <summary>Every node answering, the leader routing eu-west and ap-south as given; <paramref name="down"/> did not answer.</summary>
    private static ConsoleSnapshot View(string euRoute, string apRoute, DateTimeOffset at, string leader = "us-leader", ulong term = 3, params string[] down)
    {
        var answers = new Dictionary<string, (NodeStatusReport?, string?)>();
        foreach (var id in Topology.Nodes.Keys)
        {
            if (down.Contains(id)) answers[id] = (null, "connection refused");
            else if (id == leader) answers[id] = (Report(id, "leader", term, ("us-east", "direct"), ("eu-west", euRoute), ("ap-south", apRoute)), null);
            else answers[id] = (Report(id, Topology.GetNode(id).Role == NodeRole.Relay ? "relay" : "member", term), null);
        }
        return ClusterConsole.Build(Topology, "us-m1", null, answers, at, []);
    }

    [Test]
    public void The_view_takes_each_datacenters_route_and_figures_from_the_node_that_leads()
    {
        var view = View("relay eu-p1", "relay ap-p1", T0);
        Assert.That((view.Leader, view.Term, view.Commit, view.Last), Is.EqualTo(("us-leader", 3UL, 90UL, 100UL)));
        var eu = view.Datacenters.Single(d => d.Name == "eu-west");
        Assert.That((eu.Route, eu.Acked, eu.CommitLag, eu.BytesSent, eu.Members), Is.EqualTo(("relay eu-p1", (ulong?)90, (long?)10, (long?)1000, 3)));
        Assert.That(view.Nodes.Select(n => n.Id), Is.EquivalentTo(Topology.Nodes.Keys));
    }

    [Test]
    public void The_same_view_twice_makes_no_event()
    {
        Assert.That(ClusterConsole.Changes(View("relay eu-p1", "relay ap-p1", T0), View("relay eu-p1", "relay ap-p1", T0.AddSeconds(1))), Is.Empty);
    }

    [Test]
    public void A_failover_is_a_route_event_and_the_relay_that_stopped_answering_a_down_event()
    {
        var before = View("relay eu-p1", "relay ap-p1", T0);
        var after = View("relay eu-p2", "relay ap-p1", T0.AddSeconds(1), down: "eu-p1");
        var events = ClusterConsole.Changes(before, after);
        Assert.That(events.Select(e => (e.Kind, e.Message)), Is.EquivalentTo(new[]
        {
            ("route", "eu-west: route relay eu-p1 -> relay eu-p2"),
            ("down", "eu-p1 (eu-west) went down: connection refused"),
        }));
        Assert.That(events.All(e => e.At == T0.AddSeconds(1)));

        var back = ClusterConsole.Changes(after, View("relay eu-p2", "relay ap-p1", T0.AddSeconds(2)));
        Assert.That(back.Select(e => (e.Kind, e.Message)), Is.EqualTo(new[] { ("up", "eu-p1 (eu-west) is back: running") }));
    }

    [Test]
    public void A_new_leader_is_one_leader_event_and_no_route_is_reported_while_none_answers()
    {
        var before = View("relay eu-p1", "relay ap-p1", T0);
        var leaderless = View("relay eu-p1", "relay ap-p1", T0.AddSeconds(1), down: "us-leader");
        var gone = ClusterConsole.Changes(before, leaderless);
        Assert.That(gone.Select(e => e.Kind), Is.EquivalentTo(new[] { "leader", "down" }), "routes unknown without a leader are not route changes");
        Assert.That(gone.Single(e => e.Kind == "leader").Message, Is.EqualTo("no leader answers (was us-leader, term 3)"));

        var elected = ClusterConsole.Changes(before, View("relay eu-p1", "relay ap-p1", T0.AddSeconds(2), leader: "us-m1", term: 4));
        Assert.That(elected.Where(e => e.Kind == "leader").Select(e => e.Message), Is.EqualTo(new[] { "us-m1 leads term 4 (was us-leader, term 3)" }));
    }

    [Test]
    public void The_console_keeps_the_last_fifty_events_and_asks_the_cluster_at_most_once_a_second()
    {
        var time = new ManualTime(T0);
        int asked = 0;
        bool flip = false;
        using var console = new ClusterConsole(Topology, "us-m1", _ =>
        {
            asked++;
            flip = !flip;
            var view = new Dictionary<string, (NodeStatusReport?, string?)>
            {
                ["us-leader"] = (Report("us-leader", "leader", 3, ("eu-west", flip ? "relay eu-p1" : "relay eu-p2")), null),
            };
            return Task.FromResult(view);
        }, note: null, time);

        var first = console.SnapshotAsync(CancellationToken.None).Result;
        Assert.That(console.SnapshotAsync(CancellationToken.None).Result, Is.SameAs(first), "within a second the last view is reused");
        Assert.That(asked, Is.EqualTo(1));
        ConsoleSnapshot last = first;
        for (int i = 0; i < 60; i++)
        {
            time.Now += TimeSpan.FromSeconds(1);
            last = console.SnapshotAsync(CancellationToken.None).Result;
        }
        Assert.That(asked, Is.EqualTo(61));
        Assert.That(last.Events, Has.Count.EqualTo(ClusterConsole.MaxEvents));
        Assert.That(last.Events[^1].At, Is.EqualTo(time.Now), "the newest last");
        Assert.That(last.Events.Select(e => e.Kind), Is.All.EqualTo("route"));
    }

    private sealed class ManualTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
