using System.Diagnostics;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Relays;

/// <summary>
/// Issue #23: two adjacent protocol versions in one cluster. Nodes started with GEORELAY_PROTOCOL_MAX=2 speak exactly
/// the previous version's wire format and negotiate as its builds do, refusing a Hello that offers 3; every link to
/// one of them must settle on 2 (a version-3 dialer falls back), the others on 3.
/// </summary>
public sealed partial class RelayTreeTests
{
    [Test]
    public async Task NodesPinnedToProtocol2ReplicateWithProtocol3Nodes()
    {
        const int count = 2_000;
        using var cluster = new ClusterFixture("relays.yaml");
        // p1 is the relay the leader feeds, f1 one of the members it feeds; p2, p3, f2, h1 and the leader speak 3.
        string[] pinned = ["p1", "f1"];
        // Set for every node, so a variable in the test's own environment cannot pin the rest.
        foreach (var node in cluster.Topology.Nodes.Keys)
            cluster.NodeEnvironment[node] = new() { [ProtocolVersion.MaxVariable] = pinned.Contains(node) ? "2" : "3" };
        await cluster.StartAllAsync();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        // The learner on p1 speaks 3 and is served by the pinned relay; the others through 3 or 2 nodes upstream.
        var p1Learner = new LineCollector();
        var learners = new[] { "p1", "p3", "f1", "f2", "h1" }
            .Select(node => Learn(cluster, node, count, clock, stop.Token, node == "p1" ? p1Learner : null)).ToList();
        await PublishAsync(cluster, count, perSecond: 2_000, stop.Token);
        await AllReceivedAsync(learners, count);
        stop.Cancel();
        foreach (var (_, run) in learners) await run.WaitAsync(Patience);

        var leader = cluster.Processes[cluster.Topology.LeaderId];
        Assert.That(leader.Output, Does.Match(@"Connected to p1 \(Relay\) at \S+, protocol 2"), "the leader's link to the pinned relay");
        Assert.That(leader.Output, Does.Match(@"Connected to h1 \(Member\) at \S+, protocol 3"), "the leader's link to a member of its own version");
        Assert.That(leader.Output, Does.Not.Match(@"Connected to p1 .*, protocol 3"));
        // The pinned relay refuses the leader's first Hello, as a version-2 build does; the leader redials with 2.
        Assert.That(leader.Output, Does.Contain("p1 speaks protocol 2 only; redialed with protocol 2"));
        Assert.That(leader.Output, Does.Not.Contain("h1 speaks protocol 2 only"));
        Assert.That(cluster.Processes["p1"].Output, Does.Match(@"Refused connection from \S+: DefinitionsMismatch: protocol 2 frame definitions differ"));
        Assert.That(p1Learner.Text, Does.Contain("speaks protocol 2 only; redialed with protocol 2"), "the SDK falls back too");
        Assert.That(cluster.Processes["f1"].Output, Does.Match(@"Connected to \S+ \(Relay\) at \S+, protocol 2"));
        Assert.That(cluster.Processes["p1"].Output, Does.Match(@"Connected to tree-learner-p1 \(Learner\) at \S+, protocol 2"));
        Assert.That(cluster.Processes["h1"].Output, Does.Match(@"Connected to tree-learner-h1 \(Learner\) at \S+, protocol 3"));

        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != cluster.Topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(expected.Count, Is.EqualTo((ulong)count));
        foreach (var member in cluster.Topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(expected), $"member {member.Id} differs from the leader");
    }

    [Test]
    public async Task ADaemonRefusesToStartWithAnUnknownProtocolPin()
    {
        using var cluster = new ClusterFixture("relays.yaml");
        cluster.NodeEnvironment["f1"] = new() { [ProtocolVersion.MaxVariable] = "4" };
        var node = cluster.StartNode("f1");
        Assert.That(await node.WaitForExitAsync(Patience), Is.EqualTo(2), node.Output);
        Assert.That(node.Errors, Does.Contain("GEORELAY_PROTOCOL_MAX is '4': it must be 2 or 3"));
    }
}
