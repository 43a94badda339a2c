using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Cli;

/// <summary>
/// <c>georelay publish --keyed</c> read back with <c>georelay tail --keys</c>, real processes. (<c>georelay state</c>
/// waits for servers that send snapshots; on this cluster its snapshot would be the empty one at 0.)
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PublishKeyedTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task AnEmptyLineStopsThePublishAfterTheLinesBeforeItAndTailKeysShowsThem()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml");
        await cluster.StartAllAsync();
        var publisher = cluster.Run("publish", $"publish --connect {cluster.Topology.Leader.Publish} --wait committed --keyed",
            stdin: "kv/a\t1\nkv/b\tx\ty\nkv/a\n\nkv/c\tnever\n");
        Assert.That(await publisher.WaitForExitAsync(Patience), Is.EqualTo(2), publisher.Errors);
        Assert.That(publisher.Errors, Does.Contain("line 4: an empty line has no key"));
        Assert.That(publisher.Errors, Does.Contain("published 3 entries (1 of them tombstones) (committed)").And.Contain("nothing from line 4 on"));

        var tail = cluster.Run("tail", $"tail --connect {cluster.Topology.GetNode("m1").Learners} --prefix kv/ --keys --count 3");
        Assert.That(await tail.WaitForExitAsync(Patience), Is.EqualTo(0), tail.Errors);
        var fields = tail.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r').Split('\t')[1..]).ToList();
        Assert.That(fields, Is.EqualTo(new[] { new[] { "kv/a", "1" }, new[] { "kv/b", @"x\ty" }, new[] { "kv/a" } }),
            "values and a tombstone (no second TAB), a TAB in the value escaped");
    }
}
