using GeoRelay.Cli.Demo;
using GeoRelay.Server.Hosting;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.TestUtilities;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Engines;

/// <summary>
/// In-process nodes on loopback (local.yaml) whose log meets a real ENOSPC: the segment a node writes to is
/// /dev/full. The node stops at the failure as a faulted host, logs the file and the error, closes its
/// connections and acks nothing more; an in-process leader fails its waiters and refuses appends.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DiskFailureHostTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private string _root = null!;
    private readonly List<IAsyncDisposable> _nodes = new();

    [SetUp]
    public void SetUp()
    {
        Assume.That(File.Exists("/dev/full"), "needs /dev/full (Linux)");
        _root = Path.Combine(Path.GetTempPath(), "georelay-diskhost-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var node in Enumerable.Reverse(_nodes)) await node.DisposeAsync();
        _nodes.Clear();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private TopologyConfig Topology()
    {
        var yaml = LocalCluster.WithFreePorts(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "samples", "local.yaml")));
        return TopologyLoader.Parse(yaml, "local.yaml").GetConfigOrThrow();
    }

    /// <summary>A data directory; with <paramref name="full"/>, its first segment is /dev/full, so the first write fails.</summary>
    private string Data(string node, bool full = false)
    {
        string directory = Path.Combine(_root, node);
        Directory.CreateDirectory(directory);
        if (full) File.CreateSymbolicLink(Path.Combine(directory, "00000000000000000001.log"), "/dev/full");
        return directory;
    }

    private T Track<T>(T node) where T : IAsyncDisposable
    {
        _nodes.Add(node);
        return node;
    }

    [Test]
    public async Task AMemberWhoseDiskFillsStopsAndTheQuorumKeepsCommitting()
    {
        var topology = Topology();
        var m3Logs = new LineCollector();
        var m1 = Track(new MemberNode(topology, "m1", Data("m1"), LineCollector.None));
        var m2 = Track(new MemberNode(topology, "m2", Data("m2"), LineCollector.None));
        var m3 = Track(new MemberNode(topology, "m3", Data("m3", full: true), m3Logs.Factory));
        var leader = Track(new LeaderNode(topology, 1, Data("leader"), null, LineCollector.None));

        var appended = new List<AppendResult>();
        for (int i = 0; i < 200; i++) appended.Add(await leader.AppendAsync(new byte[100]));
        await Task.WhenAll(appended.Select(a => a.Committed)).WaitAsync(Patience);

        var failure = await m3.Host.Failed.WaitAsync(Patience);
        Assert.That(failure.Operation, Is.EqualTo("write"));
        Assert.That(failure.Error, Does.Contain("No space left on device"));
        Assert.That(m3Logs.Text, Does.Match(@"Disk failed: write of \S+/m3/0{19}1\.log failed: No space left on device"));
        Assert.That(m3.Host.Failure, Is.SameAs(failure));
        await Poll.UntilAsync(() => m3.Host.ConnectionCount == 0, "m3 closed its connections", Patience);
        Assert.That(m3.Host.Invoke(_ => m3.Engine.DurableIndex), Is.EqualTo(0UL));

        // The leader never heard an ack from m3 for anything: its first write failed.
        var members = leader.Host.Invoke(_ => leader.Engine.PeerStatus()).Single().Members.ToDictionary(m => m.Id);
        Assert.That(members["m3"].Durable, Is.EqualTo(0UL));
        Assert.That(Math.Min(members["m1"].Durable, members["m2"].Durable), Is.GreaterThanOrEqualTo(200UL));
        Assert.That(m1.Host.Failure ?? m2.Host.Failure, Is.Null);
    }

    [Test]
    public async Task ALeaderWhoseDiskFailsFailsItsWaitersAndTakesNoMoreEntries()
    {
        var topology = Topology();
        var members = new[] { "m1", "m2", "m3" }.Select(m => Track(new MemberNode(topology, m, Data(m), LineCollector.None))).ToArray();
        var leader = Track(new LeaderNode(topology, 1, Data("leader", full: true), null, LineCollector.None));
        await Poll.UntilAsync(() => members.All(m => m.Host.Invoke(_ => m.Engine.UpstreamCount) == 1), "the leader connected to every member", Patience);

        var first = await leader.AppendAsync(new byte[100]);
        var failure = Assert.ThrowsAsync<DiskFailedException>(() => first.Accepted.WaitAsync(Patience))!;
        Assert.That(failure.Operation, Is.EqualTo("write"));
        Assert.ThrowsAsync<DiskFailedException>(() => first.Committed.WaitAsync(Patience));
        Assert.That(leader.Host.Failure, Is.Not.Null);
        Assert.ThrowsAsync<DiskFailedException>(() => leader.AppendAsync(new byte[100]));

        // It closed its connections and sent nothing of the entry.
        await Poll.UntilAsync(() => members.All(m => m.Host.Invoke(_ => m.Engine.UpstreamCount) == 0), "every member lost the leader", Patience);
        Assert.That(members.Select(m => m.Host.Invoke(_ => m.Engine.LastIndex)), Is.All.EqualTo(0UL));
    }
}
