using System.Diagnostics;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Disk;

/// <summary>A daemon started without --data keeps its log in a persistent state directory, not in the temp directory.</summary>
[TestFixture]
[NonParallelizable]
public sealed class DataDirectoryTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Test]
    public async Task WithoutDataTheLeaderLogsItsStateDirectoryAndWritesItsSegmentThere()
    {
        var clock = Stopwatch.StartNew();
        using var cluster = new ClusterFixture("local.yaml");
        // The daemon's own HOME, XDG_STATE_HOME and TMPDIR, so the test writes nowhere real.
        string state = Path.Combine(cluster.Directory, "state"), home = Path.Combine(cluster.Directory, "home"), temp = Path.Combine(cluster.Directory, "tmp");
        foreach (var d in new[] { state, home, temp }) Directory.CreateDirectory(d);
        var environment = new Dictionary<string, string> { ["XDG_STATE_HOME"] = state, ["HOME"] = home, ["TMPDIR"] = temp };
        string leaderId = cluster.Topology.LeaderId;
        using var leader = new GeoRelayProcess(leaderId, $"leader --config \"{cluster.ConfigPath}\"", environment: environment);

        var logged = await leader.WaitForLineAsync(@"Data directory (\S+) \((.+)\)", Patience);
        string expected = Path.Combine(state, "georelay", cluster.Topology.Cluster, leaderId);
        Assert.That((logged.Groups[1].Value, logged.Groups[2].Value), Is.EqualTo((expected, "$XDG_STATE_HOME")));
        Assert.That(expected, Does.Not.StartWith(temp + Path.DirectorySeparatorChar), "not under the daemon's temp directory");

        await leader.WaitForLineAsync("Listening for Publish", Patience);
        Assert.That(await PublishAsync(cluster, 1, 10, WaitLevel.Accepted, Patience), Is.EqualTo(10UL));
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);

        var segment = new FileInfo(Path.Combine(expected, "00000000000000000001.log"));
        Assert.That(segment.Exists && segment.Length > 0, Is.True, $"the leader's segment is in {expected}");
        Assert.That(Directory.Exists(Path.Combine(temp, "georelay")), Is.False, "the old default, $TMPDIR/georelay, is not used");
        TestContext.Out.WriteLine($"took {clock.Elapsed.TotalSeconds:F1} s");
    }
}
