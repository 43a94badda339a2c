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
    public async Task HundredThousandEntriesReachEveryMemberIdenticallyThroughOneRelayPerRegion()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        const int count = 100_000;
        var input = Lines(count);
        var publish = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed", input);
        Assert.That(await publish.WaitForExitAsync(Patience), Is.EqualTo(0), publish.Output);
        ulong last = LastPublished(publish, count);

        // Committed means a quorum holds it; wait (bounded) for the rest, then stop everyone cleanly.
        var leader = cluster.Processes[cluster.Topology.LeaderId];
        foreach (var dc in cluster.Topology.Datacenters)
            foreach (var m in dc.Members)
                await WaitForDurableAsync(cluster, m, last);
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != cluster.Topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);

        var expected = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(expected.Count, Is.EqualTo((ulong)count));
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

    [Test]
    public async Task MemberKilledAndRestartedMidStreamCatchesUpWithoutGapOrDuplicate()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        var publishAddress = cluster.Topology.Leader.Publish;
        async Task<ulong> Publish(int count, int from)
        {
            var p = cluster.Run("publish", $"publish --leader {publishAddress} --wait committed", Lines(count, from));
            Assert.That(await p.WaitForExitAsync(Patience), Is.EqualTo(0), p.Output);
            return LastPublished(p, count);
        }

        await Publish(20_000, 0);
        cluster.Processes["eu-m1"].Kill();                  // SIGKILL: nothing flushed on the way out
        await Publish(20_000, 20_000);                      // quorum still reachable without it
        var restarted = cluster.StartNode("eu-m1");
        await restarted.WaitForLineAsync("Listening for Peer", Patience);
        ulong last = await Publish(10_000, 40_000);
        foreach (var member in cluster.Topology.AllMembers) await WaitForDurableAsync(cluster, member.Id, last);

        var leader = cluster.Processes[cluster.Topology.LeaderId];
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        foreach (var (name, process) in cluster.Processes)
            if (name != cluster.Topology.LeaderId) Assert.That(await process.TerminateAsync(Patience), Is.EqualTo(0), process.Output);
        var expected = cluster.LogOf(cluster.Topology.LeaderId);
        Assert.That(expected.Count, Is.EqualTo(50_000UL));
        Assert.That(cluster.LogOf("eu-m1"), Is.EqualTo(expected), "the restarted member's log differs from the leader's");
        Assert.That(restarted.Output, Does.Contain("Recovered log"), "the member recovered its log from disk rather than starting over");
    }

    [Test]
    public async Task GarbageAndOversizedFramesAreRefusedAndTheDaemonsKeepServing()
    {
        using var cluster = new ClusterFixture("three-regions.yaml");
        await cluster.StartAllAsync();
        var targets = new List<(string Node, string Port, GeoRelay.Topology.NodeEndpoint Address)>
        {
            (cluster.Topology.LeaderId, "publish", cluster.Topology.Leader.Publish!.Value),
            ("eu-p1", "listen", cluster.Topology.GetNode("eu-p1").Listen!.Value),
            ("eu-p1", "learners", cluster.Topology.GetNode("eu-p1").Learners!.Value),
            ("eu-m1", "listen", cluster.Topology.GetNode("eu-m1").Listen!.Value),
            ("eu-m1", "learners", cluster.Topology.GetNode("eu-m1").Learners!.Value),
        };
        var random = new Random(7);
        foreach (var (node, port, address) in targets)
        {
            // 1) random bytes
            var garbage = new byte[512];
            random.NextBytes(garbage);
            var reply = await SendRawAsync(address, garbage);
            Assert.That(reply.Closed, Is.True, $"{node} {port}: connection stays open after garbage");
            // 2) a frame header claiming 2 GiB
            var huge = new byte[FrameHeader.Size];
            new FrameHeader(int.MaxValue, FrameType.Hello, FrameFlags.None).Write(huge);
            reply = await SendRawAsync(address, huge);
            Assert.That(reply.Closed, Is.True, $"{node} {port}: connection stays open after an oversized length");
            Assert.That(reply.Error, Is.EqualTo(GeoRelay.Codec.CodecError.TooLarge), $"{node} {port}: refusal reason");
            await cluster.Processes[node].WaitForLineAsync("Refused connection from .*TooLarge", Patience);
        }
        foreach (var (name, process) in cluster.Processes)
            Assert.That(process.HasExited, Is.False, $"{name} went down: {process.Output}");
        // Honest traffic is unaffected.
        var publish = cluster.Run("publish", $"publish --leader {cluster.Topology.Leader.Publish} --wait committed", Lines(2_000));
        Assert.That(await publish.WaitForExitAsync(Patience), Is.EqualTo(0), publish.Output);
        await WaitForDurableAsync(cluster, "eu-m1", LastPublished(publish, 2_000));
    }

    /// <summary>Writes bytes to a port and reads until the peer closes; returns the Error frame's code if one came.</summary>
    private static async Task<(bool Closed, GeoRelay.Codec.CodecError? Error)> SendRawAsync(GeoRelay.Topology.NodeEndpoint address, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(address.ToEndPoint());
        await socket.SendAsync(bytes, SocketFlags.None);
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(Patience);
        while (true)
        {
            int n;
            try { n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token); }
            catch (SocketException) { break; }
            catch (OperationCanceledException) { return (false, null); }
            if (n == 0) break;
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
        var sequence = new System.Buffers.ReadOnlySequence<byte>(received.ToArray());
        if (FrameReader.TryRead(ref sequence, 1 << 20, out var frame) && frame.Type == FrameType.Error)
            return (true, ErrorFrame.Read(frame.Payload).Code);
        return (true, null);
    }

    /// <summary>A learner on the member asking for the last entry returns once the member holds it durably.</summary>
    private static async Task WaitForDurableAsync(ClusterFixture cluster, string member, ulong index)
    {
        var learners = cluster.Topology.GetNode(member).Learners!.Value;
        var tail = cluster.Run("tail-" + member, $"tail --connect {learners} --from {index} --count 1");
        Assert.That(await tail.WaitForExitAsync(Patience), Is.EqualTo(0), $"{member}: {tail.Output}");
        Assert.That(tail.Output, Does.StartWith($"{index}\t"));
    }

    /// <summary>
    /// The index of the last entry `georelay publish` wrote, as it reports it. With exactly-once (the default) each
    /// request also takes an index of its own (the producer marker), so it is above the count of lines.
    /// </summary>
    private static ulong LastPublished(GeoRelay.TestUtilities.GeoRelayProcess publish, int lines)
    {
        var reported = Regex.Match(publish.Output, @"published (\d+) entries \(committed\), last index (\d+)");
        Assert.That(reported.Success, Is.True, publish.Output);
        Assert.That(reported.Groups[1].Value, Is.EqualTo(lines.ToString(CultureInfo.InvariantCulture)));
        return ulong.Parse(reported.Groups[2].Value, CultureInfo.InvariantCulture);
    }
}
