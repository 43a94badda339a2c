using System.Text;
using System.Text.Json;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Elections;

/// <summary>
/// <c>georelay config show</c> and <c>config apply</c> against real voters with <c>elections: true</c>: a member added to
/// the leader's datacenter joins as a non-voter, is promoted once caught up, receives what is published after, and can lead.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConfigApplyProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(50);

    [Test]
    public async Task ConfigApplyAddsAMemberAsANonVoterPromotesItAndItReceivesWhatIsPublishedAfter()
    {
        using var cluster = new ClusterFixture("elections.yaml", elections: true);
        await cluster.StartAllAsync();
        string follower = cluster.Topology.GetNode("m1").Admin!.Value.ToString();
        // Entries the new member must catch up on before its promotion. (Also what lets the leader take a change at all: a
        // leader elected on an empty log appends no no-op, and takes membership changes only once it committed an entry of its term.)
        await using var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
        {
            Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()],
        });
        var entries = Enumerable.Range(0, 200).Select(i => new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes($"before {i}"))).ToList();
        await publisher.PublishAsync(entries, WaitLevel.Committed).AsTask().WaitAsync(Patience);

        var shown = cluster.Run("config show", $"config show --admin {follower}");
        Assert.That(await shown.WaitForExitAsync(Patience), Is.EqualTo(0), shown.Output + shown.Errors);
        Assert.That(shown.Output, Does.Contain(": leader leads term").And.Contain("# voters: leader, m1, m2, m3").And.Contain("members: [m1, m2, m3]"));

        // The file the operator edits: m4 listed as a voter of the leader's datacenter, on free ports. m4 starts with it.
        var ports = LocalCluster.FreeLoopbackPorts(4);
        string yaml = File.ReadAllText(cluster.ConfigPath).TrimEnd().Replace("members: [m1, m2, m3]", "members: [m1, m2, m3, m4]") + "\n"
            + $"  m4:     {{ dc: local, publish: 127.0.0.1:{ports[0]}, listen: 127.0.0.1:{ports[1]}, learners: 127.0.0.1:{ports[2]}, admin: 127.0.0.1:{ports[3]} }}\n";
        string grown = Path.Combine(cluster.Directory, "grown.yaml");
        File.WriteAllText(grown, yaml);
        var m4 = TopologyLoader.LoadFile(grown).GetConfigOrThrow().GetNode("m4");
        var started = cluster.StartNode("m4", grown, NodeRole.Member);
        await started.WaitForLineAsync("Listening for Peer", Patience);

        var diff = cluster.Run("config diff", $"config diff --admin {follower} --config \"{grown}\"");
        Assert.That(await diff.WaitForExitAsync(Patience), Is.EqualTo(0), diff.Output + diff.Errors);
        Assert.That(diff.Output, Does.Contain("  1. add m4 to local as a non-voter").And.Contain("  2. promote m4 to voter once it has caught up"));

        // Asked through a follower: the command finds the leader and proposes there.
        var applied = cluster.Run("config apply", $"config apply --admin {follower} --config \"{grown}\" --timeout 30s");
        Assert.That(await applied.WaitForExitAsync(Patience), Is.EqualTo(0), applied.Output + applied.Errors);
        Assert.That(applied.Output, Does.Match(@"step 1/2: add m4 to local as a non-voter \.\.\. committed at entry \d+ \("));
        Assert.That(applied.Output, Does.Match(@"step 2/2: promote m4 to voter once it has caught up \.\.\. committed at entry \d+ \("));

        // Asked of the leader: a follower hears of the commit with the leader's next message, possibly after this runs.
        var after = cluster.Run("config show", $"config show --admin {cluster.Topology.Leader.Admin}");
        Assert.That(await after.WaitForExitAsync(Patience), Is.EqualTo(0), after.Output + after.Errors);
        Assert.That(after.Output, Does.Contain("# voters: leader, m1, m2, m3, m4").And.Contain("# non-voters: none"));

        // Published after the change, committed by the five voters; m4 holds it.
        var ack = await publisher.PublishAsync([new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes("after the change"))], WaitLevel.Committed)
            .AsTask().WaitAsync(Patience);
        using var http = new HttpClient();
        await Poll.UntilAsync(async () =>
            {
                using var status = JsonDocument.Parse(await http.GetStringAsync($"http://{m4.Admin}/status"));
                return status.RootElement.GetProperty("indexes").GetProperty("durable").GetUInt64();
            }, durable => durable >= ack.LastIndex, $"m4 durable to {ack.LastIndex}", Patience);

        // A voter now, though the files of the others do not list it: leadership can be handed to it.
        var moved = cluster.Run("transfer-leader", $"transfer-leader --admin {cluster.Topology.Leader.Admin} --to m4");
        Assert.That(await moved.WaitForExitAsync(Patience), Is.EqualTo(0), moved.Output + moved.Errors);
        Assert.That(moved.Output, Does.Match(@"m4 leads term \d+ \(was leader, term \d+\)"));
    }
}
