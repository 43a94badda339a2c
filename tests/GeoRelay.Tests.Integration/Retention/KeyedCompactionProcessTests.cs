using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Integration.ClusterLoad;

namespace GeoRelay.Tests.Integration.Retention;

// Inside the namespace: under GeoRelay.*, `LearnerClient` alone would name the namespace GeoRelay.LearnerClient.
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// Keyed compaction on real processes: relays.yaml with <c>compaction: keyed</c> and a 256 KiB retention window, and
/// many windows' worth of keyed writes (a tenth of them tombstones) published. Every node keeps its segments within
/// the bound and the latest entry of every key in its keyed state; a learner that joins late, at a relay or from an
/// index long dropped, gets exactly the live keys' latest values and then the stream, gap-free.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class KeyedCompactionProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private const long MaxBytes = 256 << 10;
    private const int Keys = 150;
    private const int Writes = 3_000; // ~1.6 MB of records: six retention windows

    private readonly record struct Write(ulong Index, string Key, string Value, bool Tombstone);

    [Test]
    public async Task ALateLearnerGetsTheLiveKeysLatestValuesThenTheStreamAndEveryDiskStaysWithinTheBound()
    {
        using var cluster = new ClusterFixture("relays.yaml", yaml => yaml.Replace("defaults:\n",
            "defaults:\n  retention: { max-bytes: 256KiB, max-age: 1h }\n  compaction: keyed\n", StringComparison.Ordinal));
        await cluster.StartAllAsync();
        var random = new Random(20);
        var written = new List<Write>();
        var peaks = new Dictionary<string, long>();
        await using (var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
            { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false }))
        {
            await PublishKeyedAsync(publisher, random, written, Writes, () =>
            {
                foreach (var node in cluster.Topology.Nodes.Keys)
                    peaks[node] = Math.Max(peaks.GetValueOrDefault(node), SegmentBytes(cluster, node));
            });
        }
        ulong last = written[^1].Index;
        foreach (var node in cluster.Topology.Nodes.Keys)
            await Poll.UntilAsync(() => Task.FromResult(SegmentBytes(cluster, node)), bytes => bytes <= MaxBytes, $"{node}'s segments within {MaxBytes} bytes", Patience);
        foreach (var (node, peak) in peaks.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            long state = File.Exists(Path.Combine(cluster.DataOf(node), "keyed-state")) ? new FileInfo(Path.Combine(cluster.DataOf(node), "keyed-state")).Length : 0;
            TestContext.Out.WriteLine($"{node}: segments peak {peak / 1024} KiB, now {SegmentBytes(cluster, node) / 1024} KiB (max-bytes {MaxBytes / 1024} KiB); keyed-state {state / 1024} KiB");
            Assert.That(state, Is.GreaterThan(0), $"{node} keeps its keyed state beside its segments");
        }
        ulong oldest = (await StatusAsync(cluster, "p1")).GetProperty("indexes").GetProperty("oldest").GetUInt64();
        Assert.That(oldest, Is.GreaterThan(1000UL), "the relay dropped most of the log");

        // A learner joining late at the relay: the snapshot, then the stream.
        await using var learner = await LearnerClient.ConnectAsync(LearnerClientOptions.Default with
            { Endpoints = [cluster.Topology.GetNode("p1").Learners!.Value.ToString()], NodeId = "late" });
        using var stop = new CancellationTokenSource(Patience);
        await using var entries = learner.SubscribeAsync(SubscribeFrom.Snapshot, stop.Token).GetAsyncEnumerator(stop.Token);
        var (through, snapshot) = await ReadSnapshotAsync(entries);
        Assert.That(through, Is.GreaterThanOrEqualTo(oldest - 1), "the snapshot reaches the relay's log");
        Assert.That(snapshot, Is.EqualTo(StateAt(written, through)), () => "exactly the live keys' latest values, each at its index: " + Diff(snapshot, written, through));
        TestContext.Out.WriteLine($"snapshot at {through}: {snapshot.Count} live keys of {Keys} (of {written.Count(w => w.Index <= through)} writes)");

        await using (var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
            { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false }))
            await PublishKeyedAsync(publisher, random, written, 100, () => { });
        var after = new List<Write>();
        while (after.Count == 0 || after[^1].Index < written[^1].Index)
        {
            Assert.That(await entries.MoveNextAsync(), Is.True);
            var e = entries.Current;
            Assert.That(e.IsSnapshot, Is.False, "the stream follows the snapshot");
            after.Add(new Write(e.Index, Encoding.UTF8.GetString(e.Key.Span), Encoding.UTF8.GetString(e.Payload.Span), e.IsTombstone));
        }
        Assert.That(after, Is.EqualTo(written.Where(w => w.Index > through).ToList()), "then every write after the snapshot, once, in order, tombstones flagged");

        // A learner asking a member for index 1, long dropped, gets the state instead of SnapshotRequired.
        await using var fromOne = await LearnerClient.ConnectAsync(LearnerClientOptions.Default with
            { Endpoints = [cluster.Topology.GetNode("f1").Learners!.Value.ToString()], NodeId = "from-one" });
        await using var fromOneEntries = fromOne.SubscribeAsync(1, stop.Token).GetAsyncEnumerator(stop.Token);
        var (throughOne, snapshotOne) = await ReadSnapshotAsync(fromOneEntries);
        Assert.That(snapshotOne, Is.EqualTo(StateAt(written, throughOne)), () => "from index 1: the member's snapshot: " + Diff(snapshotOne, written, throughOne));
        TestContext.Out.WriteLine($"from index 1 at f1: snapshot at {throughOne}, {snapshotOne.Count} keys; last write {last}");

        // The command line: `georelay state` prints the state of its snapshot, keys in byte order.
        // Several endpoints, as users give them: a standby relay whose feed fell behind p1's small window took its log from
        // a later start and has no keyed state to send (see learners.md, "Not yet"); the client then asks the next one.
        var stateCommand = cluster.Run("state", $"state --connect {cluster.Topology.GetNode("p2").Learners},{cluster.Topology.GetNode("f2").Learners}");
        Assert.That(await stateCommand.WaitForExitAsync(Patience), Is.EqualTo(0), stateCommand.Errors);
        var stateAt = System.Text.RegularExpressions.Regex.Match(stateCommand.Errors, @"state at (\d+): (\d+) keys");
        Assert.That(stateAt.Success, Is.True, stateCommand.Errors);
        var expectedLines = StateAt(written, ulong.Parse(stateAt.Groups[1].Value)).OrderBy(w => w.Key, StringComparer.Ordinal).Select(w => $"{w.Key}\t{w.Value}");
        Assert.That(StandardOutput(stateCommand), Is.EqualTo(expectedLines), "georelay state: KEY<TAB>VALUE per live key");

        // `georelay tail --from-snapshot --keys` prints the snapshot's entries, then the stream.
        var tail = cluster.Run("tail", $"tail --connect {cluster.Topology.GetNode("p3").Learners},{cluster.Topology.GetNode("f1").Learners} --from-snapshot --keys");
        await using (var publisher = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with
            { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false }))
        {
            await tail.WaitForLineAsync(@"snapshot at \d+", Patience);
            await PublishKeyedAsync(publisher, random, written, 1, () => { });
        }
        await tail.WaitForLineAsync($"^{written[^1].Index}\t", Patience);
        await tail.TerminateAsync(Patience); // tail runs until stopped (SIGTERM: exit 143)
        var tailAt = ulong.Parse(System.Text.RegularExpressions.Regex.Match(tail.Errors, @"snapshot at (\d+)").Groups[1].Value);
        var lines = StandardOutput(tail);
        var tailState = StateAt(written, tailAt);
        var expectedTail = tailState.Concat(written.Where(w => w.Index > tailAt)).Select(w => w.Tombstone ? $"{w.Index}\t{w.Key}" : $"{w.Index}\t{w.Key}\t{w.Value}");
        Assert.That(lines, Is.EqualTo(expectedTail), "tail --from-snapshot: the snapshot's entries, then the stream");
    }

    /// <summary>
    /// Raft's InstallSnapshot gives a member down past the leader's retention only the log's start; with keyed compaction
    /// the state before it comes from the relay feeding the member, so the member serves the whole state again.
    /// </summary>
    [Test]
    public async Task AMemberDownPastTheLeadersRetentionComesBackWithTheWholeKeyedState()
    {
        using var cluster = new ClusterFixture("relays.yaml", yaml => yaml.Replace("defaults:\n",
            "defaults:\n  retention: { max-bytes: 256KiB, max-age: 1h }\n  compaction: keyed\n", StringComparison.Ordinal));
        await cluster.StartAllAsync();
        var random = new Random(21);
        var written = new List<Write>();
        var publisherOptions = PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false };
        await using (var publisher = await PublisherClient.ConnectAsync(publisherOptions))
        {
            await PublishKeyedAsync(publisher, random, written, 300, () => { });
            // Keys written once, early: after the install below, only the state taken from another node has them.
            var early = Enumerable.Range(0, 20).Select(i => new PublishEntry(Encoding.UTF8.GetBytes($"early-{i:D2}"), Encoding.UTF8.GetBytes($"first and last {i}"))).ToList();
            var ack = await publisher.PublishAsync(early, WaitLevel.Committed).AsTask().WaitAsync(Patience);
            for (int i = 0; i < early.Count; i++) written.Add(new Write(ack.FirstIndex + (ulong)i, $"early-{i:D2}", $"first and last {i}", false));
        }
        await Poll.UntilAsync(() => DurableAsync(cluster, "f1"), d => d >= written[^1].Index, "f1 holds the first writes", Patience);
        cluster.Processes["f1"].Kill();

        await using (var publisher = await PublisherClient.ConnectAsync(publisherOptions))
            await PublishKeyedAsync(publisher, random, written, Writes, () => { });
        var f1 = cluster.StartNode("f1");
        var recovered = await f1.WaitForLineAsync(@"Recovered log: entries (\d+)\.\.(\d+)", Patience);
        var installed = await f1.WaitForLineAsync(@"The leader's log starts at (\d+) \(epoch \d+\), past this log", Patience);
        ulong start = ulong.Parse(installed.Groups[1].Value);
        Assert.That(start, Is.GreaterThan(ulong.Parse(recovered.Groups[2].Value) + 1), "f1 could not have continued its own log");
        var received = await f1.WaitForLineAsync(@"Keyed state at (\d+) \((\d+) entries\) received from (\S+): merging", Patience);
        TestContext.Out.WriteLine($"f1: log installed at {start}; {received.Value}");

        await using (var publisher = await PublisherClient.ConnectAsync(publisherOptions))
            await PublishKeyedAsync(publisher, random, written, 100, () => { });
        ulong last = written[^1].Index;
        var keyed = await Poll.UntilAsync(async () => (await StatusAsync(cluster, "f1")).GetProperty("keyed"),
            k => k.GetProperty("complete").GetBoolean() && k.GetProperty("through").GetUInt64() >= last - 1,
            "f1's /status shows a whole keyed state at the head", Patience);
        Assert.That(keyed.GetProperty("imagesInstalled").GetInt64(), Is.GreaterThanOrEqualTo(1L));
        Assert.That(keyed.GetProperty("missingThrough").GetUInt64(), Is.EqualTo(0UL));

        // What f1 serves is exactly the state of the log: every live key's latest value, though its own log starts at `start`.
        var stateCommand = cluster.Run("state", $"state --connect {cluster.Topology.GetNode("f1").Learners}");
        Assert.That(await stateCommand.WaitForExitAsync(Patience), Is.EqualTo(0), stateCommand.Errors);
        var stateAt = System.Text.RegularExpressions.Regex.Match(stateCommand.Errors, @"state at (\d+): (\d+) keys");
        Assert.That(stateAt.Success, Is.True, stateCommand.Errors);
        ulong at = ulong.Parse(stateAt.Groups[1].Value);
        Assert.That(at, Is.GreaterThanOrEqualTo(start), "the state comes from f1 after its install");
        var expectedLines = StateAt(written, at).OrderBy(w => w.Key, StringComparer.Ordinal).Select(w => $"{w.Key}\t{w.Value}").ToList();
        Assert.That(StandardOutput(stateCommand), Is.EqualTo(expectedLines), "f1's state: KEY<TAB>VALUE per live key, as written");
        Assert.That(expectedLines.Count(l => l.StartsWith("early-", StringComparison.Ordinal)), Is.EqualTo(20), "the keys written before f1's log start are there");
    }

    private static async Task<(ulong Through, List<Write> Entries)> ReadSnapshotAsync(IAsyncEnumerator<LearnerEntry> entries)
    {
        Assert.That(await entries.MoveNextAsync(), Is.True);
        Assert.That(entries.Current.IsSnapshotBegin, Is.True, $"a snapshot starts with its begin marker, not {entries.Current.Index} {entries.Current.Flags} {entries.Current.Key.Length}");
        var snapshot = new List<Write>();
        while (true)
        {
            Assert.That(await entries.MoveNextAsync(), Is.True);
            var e = entries.Current;
            if (e.IsSnapshotBegin) { snapshot.Clear(); continue; } // restarted from a newer one
            if (e.IsSnapshotEnd) return (e.Index, snapshot);
            Assert.That(e.IsSnapshot, Is.True);
            snapshot.Add(new Write(e.Index, Encoding.UTF8.GetString(e.Key.Span), Encoding.UTF8.GetString(e.Payload.Span), e.IsTombstone));
        }
    }

    /// <summary>What a process printed on stdout: its output less its stderr lines.</summary>
    private static List<string> StandardOutput(GeoRelayProcess process)
    {
        var errors = process.Errors.Split('\n').Select(l => l.TrimEnd('\r')).ToHashSet();
        return process.Output.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0 && !errors.Contains(l)).ToList();
    }

    /// <summary>How a snapshot differs from the state at <paramref name="through"/>, with the writes of the keys concerned.</summary>
    private static string Diff(List<Write> snapshot, List<Write> written, ulong through)
    {
        var expected = StateAt(written, through);
        var differing = snapshot.Except(expected).Concat(expected.Except(snapshot)).Select(w => w.Key).ToHashSet();
        return $"at {through}, extra [{string.Join(", ", snapshot.Except(expected).Select(w => $"{w.Index} {w.Key}"))}], missing [" +
            string.Join(", ", expected.Except(snapshot).Select(w => $"{w.Index} {w.Key}")) + "]; their writes: " +
            string.Join(", ", written.Where(w => differing.Contains(w.Key)).Select(w => $"{w.Key}@{w.Index}{(w.Tombstone ? "T" : "")}"));
    }

    /// <summary>Each live key's latest write at or below <paramref name="through"/>, in index order.</summary>
    private static List<Write> StateAt(List<Write> written, ulong through)
    {
        var latest = new Dictionary<string, Write>();
        foreach (var w in written)
            if (w.Index <= through) latest[w.Key] = w;
        return latest.Values.Where(w => !w.Tombstone).OrderBy(w => w.Index).ToList();
    }

    /// <summary>Publishes <paramref name="count"/> keyed writes, 50 a request, committed; records where each went.</summary>
    private static async Task PublishKeyedAsync(PublisherClient publisher, Random random, List<Write> written, int count, Action onAcked)
    {
        for (int done = 0; done < count; done += 50)
        {
            var batch = new List<(string Key, string Value, bool Tombstone)>();
            for (int i = 0; i < 50 && done + i < count; i++)
            {
                string key = $"key-{random.Next(Keys):D3}";
                bool tombstone = random.Next(10) == 0;
                batch.Add((key, tombstone ? "" : $"value {written.Count + i} ".PadRight(500, '.'), tombstone));
            }
            var ack = await publisher.PublishAsync(batch.Select(b => new PublishEntry(Encoding.UTF8.GetBytes(b.Key), Encoding.UTF8.GetBytes(b.Value), b.Tombstone)).ToList(),
                WaitLevel.Committed).AsTask().WaitAsync(Patience);
            for (int i = 0; i < batch.Count; i++) written.Add(new Write(ack.FirstIndex + (ulong)i, batch[i].Key, batch[i].Value, batch[i].Tombstone));
            onAcked();
        }
    }

    private static long SegmentBytes(ClusterFixture cluster, string node)
    {
        var dir = new DirectoryInfo(cluster.DataOf(node));
        if (!dir.Exists) return 0;
        long total = 0;
        foreach (var file in dir.EnumerateFiles("*.log"))
        {
            try { total += file.Length; } catch (FileNotFoundException) { }
        }
        return total;
    }
}
