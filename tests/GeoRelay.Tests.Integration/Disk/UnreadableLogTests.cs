using GeoRelay.Cli;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Disk;

/// <summary>A node whose log cannot be read back at start stops as one whose disk failed: exit 74, naming the file.</summary>
[TestFixture]
[NonParallelizable]
public sealed class UnreadableLogTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task AMemberWhoseSegmentCannotBeReadExits74NamingTheSegment()
    {
        using var cluster = new ClusterFixture("local.yaml");
        string member = cluster.Topology.Datacenters[0].Members[0];
        string segment = Path.Combine(cluster.DataOf(member), "00000000000000000001.log");
        UnreadableFile.Create(segment);

        var node = cluster.StartNode(member);

        Assert.That(await node.WaitForExitAsync(Patience), Is.EqualTo(DaemonCommands.DiskFailedExitCode), node.Output);
        Assert.That(node.Output, Does.Contain($"Disk failed while opening the log: read of {segment} failed: "));
        Assert.That(node.Output, Does.Not.Contain("Listening for"), "it took no part");
    }
}
