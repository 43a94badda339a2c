using System.Diagnostics;
using GeoRelay.Cli;
using GeoRelay.Codec.Frames;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Disk;

/// <summary>
/// Fail-stop on a real full disk: local.yaml's m3 keeps its log on a 2 MiB tmpfs that a filler file leaves a
/// couple of hundred KiB of, and fills up while entries are published with wait committed.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DiskFullTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private const int PayloadBytes = 500;
    private const ulong Entries = 1_500; // ~800 KB of records: four times what fits beside the filler, well under 2 MiB

    [Test]
    public async Task AMemberWhoseDiskFillsExitsAndRecoversWhileTheQuorumKeepsCommitting()
    {
        var clock = Stopwatch.StartNew();
        using var cluster = new ClusterFixture("local.yaml");
        var disk = Tmpfs.Mount(cluster.DataOf("m3"), "2m");
        try
        {
            string filler = disk.Fill(leaveFree: 192 * 1024);
            TestContext.Out.WriteLine($"m3's data directory is a tmpfs with {disk.FreeBytes / 1024} KiB free");
            await cluster.StartAllAsync();
            var m3 = cluster.Processes["m3"];

            // Every publish is acked as committed: m1 and m2 are the quorum once m3 is gone.
            ulong acked = await PublishAsync(cluster, 1, Entries, WaitLevel.Committed, Patience, PayloadBytes);
            Assert.That(acked, Is.EqualTo(Entries));

            Assert.That(await m3.WaitForExitAsync(Patience), Is.EqualTo(DaemonCommands.DiskFailedExitCode), m3.Output);
            Assert.That(m3.Output, Does.Match(@"Disk failed: write of \S+/m3/\d{20}\.log failed: No space left on device"));
            Assert.That(m3.Output, Does.Contain($"exiting with code {DaemonCommands.DiskFailedExitCode}"));

            // Nothing acknowledged is lost: both remaining members serve every committed entry, as published.
            foreach (var member in new[] { "m1", "m2" })
            {
                var served = await ReadAsync(cluster, member, Entries, Patience);
                Assert.That(served, Is.EqualTo(Expected(1, Entries)), $"{member} serves every committed entry");
            }

            // Space is freed; restarted on the same directory, m3 recovers its log (cutting any torn tail) and catches up.
            File.Delete(filler);
            var restarted = cluster.StartNode("m3");
            var recovered = await restarted.WaitForLineAsync(@"Recovered log: entries 1\.\.(\d+)", Patience);
            ulong kept = ulong.Parse(recovered.Groups[1].Value);
            Assert.That(kept, Is.InRange(1UL, Entries - 1), "m3 kept what it wrote before the disk filled, and no more");
            TestContext.Out.WriteLine($"m3 recovered entries 1..{kept}; torn tail cut: {restarted.Output.Contains("Cut a torn tail", StringComparison.Ordinal)}");
            await Poll.UntilAsync(() => DurableAsync(cluster, "m3"), d => d >= Entries, "m3 caught up", Patience);
            Assert.That(await PublishAsync(cluster, Entries + 1, Entries + 100, WaitLevel.Committed, Patience, PayloadBytes), Is.EqualTo(Entries + 100));
            await Poll.UntilAsync(() => DurableAsync(cluster, "m3"), d => d >= Entries + 100, "m3 takes part again", Patience);

            foreach (var node in new[] { cluster.Topology.LeaderId, "m1", "m2", "m3" })
                Assert.That(await cluster.Processes[node].TerminateAsync(Patience), Is.EqualTo(0), cluster.Processes[node].Output);
            var leader = cluster.LogOf(cluster.Topology.LeaderId);
            Assert.That(leader.Count, Is.EqualTo(Entries + 100));
            foreach (var member in new[] { "m1", "m2", "m3" })
                Assert.That(cluster.LogOf(member), Is.EqualTo(leader), $"{member}'s log matches the leader's");
            var entries = cluster.EntriesOf("m3");
            Assert.That(entries.Select(e => (e.Index, System.Text.Encoding.UTF8.GetString(e.Payload.Span))), Is.EqualTo(Expected(1, Entries + 100)));
        }
        finally
        {
            // Nothing may hold a file on the tmpfs when it is unmounted.
            foreach (var process in cluster.Processes.Values) process.Kill();
            disk.Dispose();
            TestContext.Out.WriteLine($"took {clock.Elapsed.TotalSeconds:F1} s");
        }
    }

    private static List<(ulong, string)> Expected(ulong first, ulong last)
    {
        var list = new List<(ulong, string)>();
        for (ulong i = first; i <= last; i++) list.Add((i, Payload(i, PayloadBytes)));
        return list;
    }
}
