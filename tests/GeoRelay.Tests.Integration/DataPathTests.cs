using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration;

/// <summary>The whole data path with real georelay processes on loopback, from three-regions.yaml.</summary>
[TestFixture]
[NonParallelizable]
public sealed class DataPathTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static string Lines(int count, int from = 0)
    {
        var text = new StringBuilder(count * 80);
        for (int i = from; i < from + count; i++)
            text.Append(CultureInfo.InvariantCulture, $"{{\"order\":{i},\"sku\":\"SKU-{i % 977:D5}\",\"qty\":{i % 7 + 1},\"note\":\"entry {i}\"}}\n");
        return text.ToString();
    }

    private static Dictionary<string, (int Connections, long BytesSent, long EntryBytes)> Summaries(string leaderOutput)
    {
        var result = new Dictionary<string, (int, long, long)>();
        foreach (Match m in Regex.Matches(leaderOutput, @"Summary datacenter=(\S+) route=\S+ connections=(\d+) batches=\d+ bytes_sent=(\d+) entry_bytes=(\d+)"))
            result[m.Groups[1].Value] = (int.Parse(m.Groups[2].Value), long.Parse(m.Groups[3].Value), long.Parse(m.Groups[4].Value));
        return result;
    }

    [Test]
    public async Task HundredThousandEntriesReachEveryMemberIdenticallyThroughOneProxyPerRegion()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        const int count = 100_000;
        var input = Lines(count);
        var publish = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed", input);
        Assert.That(await publish.WaitForExitAsync(Patience), Is.EqualTo(0), publish.Output);
        Assert.That(publish.Output, Does.Contain($"last index {count}"));

        // Committed means a quorum holds it; wait (bounded) for the rest, then stop everyone cleanly.
        var leader = cluster.Processes[cluster.Topology.LeaderId];
        foreach (var dc in cluster.Topology.Datacenters)
            foreach (var m in dc.Members)
                await WaitForDurableAsync(cluster, m, count);
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != cluster.Topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);

        var expected = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(expected.Last, Is.EqualTo((ulong)count));
        foreach (var member in cluster.Topology.AllMembers)
            Assert.That(cluster.LogOf(member.Id), Is.EqualTo(expected), $"member {member.Id} log differs from the leader's");

        long raw = Encoding.UTF8.GetByteCount(input) - count; // payload bytes, without newlines
        var summaries = Summaries(leader.Output);
        foreach (var dc in cluster.Topology.Datacenters)
        {
            if (dc.IsLeaderDatacenter) continue;
            var s = summaries[dc.Name];
            Assert.That(s.Connections, Is.EqualTo(1), $"{dc.Name}: the leader should hold exactly one connection to the region");
            Assert.That(s.BytesSent, Is.LessThan(raw), $"{dc.Name}: {s.BytesSent} bytes sent for {raw} bytes of entries");
        }
    }

    /// <summary>A learner on the member asking for the last entry returns once the member holds it durably.</summary>
    private static async Task WaitForDurableAsync(ClusterFixture cluster, string member, int count)
    {
        var learners = cluster.Topology.GetNode(member).Learners!.Value;
        var tail = cluster.Run("tail-" + member, $"tail --connect {learners} --from {count} --count 1");
        Assert.That(await tail.WaitForExitAsync(Patience), Is.EqualTo(0), $"{member}: {tail.Output}");
        Assert.That(tail.Output, Does.StartWith($"{count}\t"));
    }
}
