using System.Diagnostics;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Retention;

/// <summary>
/// The log's bounded life on real processes: relays.yaml with <c>retention: { max-bytes: 256KiB }</c> (64 KiB segments),
/// and many times that published. Every node, the leader included, keeps its disk within the bound; a member that was
/// down while the leader dropped what it lacked comes back through the leader's log start (InstallSnapshot, through the
/// datacenter's relay) and ends holding exactly the leader's entries.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RetentionProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private const long MaxBytes = 256 << 10;
    private const int PayloadBytes = 500;
    private const ulong Entries = 3_000; // ~1.6 MB of records: six retention windows

    [Test]
    public async Task AMemberDownPastTheLeadersRetentionTakesItsLogStartAndEveryDiskStaysWithinTheBound()
    {
        var clock = Stopwatch.StartNew();
        using var cluster = new ClusterFixture("relays.yaml",
            yaml => yaml.Replace("defaults:\n", "defaults:\n  retention: { max-bytes: 256KiB, max-age: 1h }\n", StringComparison.Ordinal));
        await cluster.StartAllAsync();
        var leader = cluster.Processes[cluster.Topology.LeaderId];

        Assert.That(await PublishAsync(cluster, 1, 100, WaitLevel.Committed, Patience, PayloadBytes), Is.EqualTo(100UL));
        await Poll.UntilAsync(() => DurableAsync(cluster, "f1"), d => d >= 100, "f1 holds the first entries", Patience);
        cluster.Processes["f1"].Kill();

        // h1 and f2 are the quorum meanwhile; the peak of each node's log directory is sampled at every ack of the load.
        var peaks = new Dictionary<string, long>();
        Task Sample(ulong _)
        {
            foreach (var node in cluster.Topology.Nodes.Keys)
                peaks[node] = Math.Max(peaks.GetValueOrDefault(node), LogBytes(cluster, node));
            return Task.CompletedTask;
        }
        Assert.That(await PublishAsync(cluster, 101, Entries, WaitLevel.Committed, Patience, PayloadBytes, onAcked: Sample), Is.EqualTo(Entries));
        var dropped = await leader.WaitForLineAsync(@"Retention dropped \d+ segments: oldest index \d+ -> (\d+)", Patience);
        Assert.That(ulong.Parse(dropped.Groups[1].Value), Is.GreaterThan(101UL), "the leader dropped entries f1 lacks");

        var f1 = cluster.StartNode("f1");
        var recovered = await f1.WaitForLineAsync(@"Recovered log: entries (\d+)\.\.(\d+)", Patience);
        ulong heldBefore = ulong.Parse(recovered.Groups[2].Value);
        var installed = await f1.WaitForLineAsync(@"The leader's log starts at (\d+) \(epoch \d+\), past this log", Patience);
        ulong start = ulong.Parse(installed.Groups[1].Value);
        Assert.That(start, Is.GreaterThan(heldBefore + 1), "f1 could not have continued its own log");
        await Poll.UntilAsync(() => DurableAsync(cluster, "f1"), d => d >= Entries, "f1 caught up from the leader's log start", Patience);
        Assert.That(await PublishAsync(cluster, Entries + 1, Entries + 100, WaitLevel.Committed, Patience, PayloadBytes), Is.EqualTo(Entries + 100));
        await Poll.UntilAsync(() => DurableAsync(cluster, "f1"), d => d >= Entries + 100, "f1 takes part again", Patience);
        foreach (var node in new[] { cluster.Topology.LeaderId, "f1", "p1" })
        {
            ulong oldest = (await StatusAsync(cluster, node)).GetProperty("indexes").GetProperty("oldest").GetUInt64();
            Assert.That(oldest, Is.GreaterThan(heldBefore + 1), $"{node}'s /status shows where its log starts now");
        }

        // Once retention has run over the finished load, every node is within max-bytes (whole segments go, the oldest first).
        foreach (var node in cluster.Topology.Nodes.Keys)
            await Poll.UntilAsync(() => Task.FromResult(LogBytes(cluster, node)), bytes => bytes <= MaxBytes, $"{node}'s log within {MaxBytes} bytes", Patience);
        foreach (var (node, peak) in peaks.OrderBy(p => p.Key, StringComparer.Ordinal))
            TestContext.Out.WriteLine($"{node}: peak {peak / 1024} KiB of log, now {LogBytes(cluster, node) / 1024} KiB (max-bytes {MaxBytes / 1024} KiB)");

        foreach (var (name, process) in cluster.Processes)
            Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var ours = cluster.EntriesOf(cluster.Topology.LeaderId);
        var theirs = cluster.EntriesOf("f1");
        Assert.That(theirs[^1].Index, Is.EqualTo(ours[^1].Index), "f1 ends where the leader does");
        Assert.That(theirs[0].Index, Is.LessThanOrEqualTo(ours[0].Index), "f1 holds every index the leader still holds");
        var byIndex = theirs.ToDictionary(e => e.Index);
        foreach (var e in ours)
        {
            var mine = byIndex[e.Index];
            Assert.That((mine.Epoch, mine.Key.ToArray(), mine.Payload.ToArray()), Is.EqualTo((e.Epoch, e.Key.ToArray(), e.Payload.ToArray())),
                $"f1's entry {e.Index} is the leader's, byte for byte");
        }
        TestContext.Out.WriteLine($"f1 held 1..{heldBefore}, took the leader's log from {start}; leader holds {ours[0].Index}..{ours[^1].Index}, " +
            $"f1 {theirs[0].Index}..{theirs[^1].Index}; took {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Bytes of segment files in a node's data directory (what retention bounds).</summary>
    private static long LogBytes(ClusterFixture cluster, string node)
    {
        var dir = new DirectoryInfo(cluster.DataOf(node));
        if (!dir.Exists) return 0;
        long total = 0;
        foreach (var file in dir.EnumerateFiles("*.log"))
        {
            try { total += file.Length; } catch (FileNotFoundException) { } // dropped by retention while listed
        }
        return total;
    }
}
