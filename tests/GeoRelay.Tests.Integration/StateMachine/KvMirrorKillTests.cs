using System.Globalization;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.StateMachine;

/// <summary>
/// The kv-mirror sample (samples/kv-mirror, IStateMachine hosted by <c>LearnerClient.RunAsync</c>) as a real process,
/// SIGKILLed at random points while keyed entries keep arriving and restarted on the same checkpoint directory: every
/// run applies exactly the delivered indexes after its checkpoint, once each, in order, and the last one's state is the
/// last value of every key.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class KvMirrorKillTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private const int Kills = 6;
    private const int KeyCount = 40;
    // Bounds the publisher if the kills take long; it normally stops when they are done.
    private const int MaxEntries = 30_000;
    // Odd, so kills land at every offset from a checkpoint.
    private const int CheckpointEvery = 97;

    /// <summary>One published entry: an empty key is no key-value write, a tombstone deletes the key (an empty value is a value).</summary>
    private readonly record struct Write(string Key, string Value, bool Tombstone = false);

    [Test]
    public async Task The_kv_mirror_survives_kills_at_random_points_without_applying_an_index_twice()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_KV_SEED"), out int fixedSeed) ? fixedSeed : Random.Shared.Next();
        TestContext.Out.WriteLine($"seed {seed} (set GEORELAY_KV_SEED={seed} to replay the same kill targets and entries)");
        var kills = new Random(seed);

        using var cluster = new ClusterFixture("local.yaml");
        await cluster.StartAllAsync();
        string checkpoints = Path.Combine(cluster.Directory, "mirror");
        string appliedLog = Path.Combine(cluster.Directory, "applied.log");
        string connect = $"{cluster.Topology.GetNode("m1").Learners!.Value},{cluster.Topology.GetNode("m2").Learners!.Value}";
        string mirrorArguments = $"--connect {connect} --checkpoints \"{checkpoints}\" --checkpoint-every {CheckpointEvery} --applied-log \"{appliedLog}\"";
        var mirrors = new List<GeoRelayProcess>();
        GeoRelayProcess StartMirror()
        {
            var process = new GeoRelayProcess($"kv-mirror-{mirrors.Count + 1}", mirrorArguments, program: "kv-mirror.dll");
            mirrors.Add(process);
            return process;
        }

        using var stopPublishing = new CancellationTokenSource();
        var publisher = new KeyedPublisher(cluster.Topology.Leader.Publish!.Value.ToString(), new Random(seed + 1));
        var publishing = Task.Run(() => publisher.RunAsync(stopPublishing.Token));
        try
        {
            for (int kill = 1; kill <= Kills; kill++)
            {
                int runsBefore = AppliedLog.Read(appliedLog).Runs.Count;
                // Odd kills land while the mirror catches up from its checkpoint, even ones once it follows the head.
                int count = kills.Next(1, 400);
                ulong index = kill % 2 == 0 ? publisher.LastIndex + (ulong)kills.Next(1, 50) : 0;
                string target = index == 0 ? $"{count} entries applied" : $"index {index} applied";
                var mirror = StartMirror();
                await Poll.UntilAsync(() => Task.FromResult(AppliedLog.Read(appliedLog)),
                    log => log.Runs.Count > runsBefore && log.Runs[^1].Indexes.Count >= count && log.Runs[^1].Indexes[^1] >= index || mirror.HasExited,
                    $"{mirror.Name}: {target}", Patience);
                Assert.That(mirror.HasExited, Is.False, $"{mirror.Name} exited by itself:\n{mirror.Output}");
                mirror.Kill();
                var run = AppliedLog.Read(appliedLog).Runs[^1];
                TestContext.Out.WriteLine($"{mirror.Name}: resumed after {run.From}, SIGKILL after {target}: {run.Indexes.Count} entries, up to index {run.Indexes[^1]}");
                Assert.That(publishing.IsFaulted, Is.False, () => $"the publisher failed: {publishing.Exception}");
            }
            stopPublishing.Cancel();
            await publishing.WaitAsync(Patience);
            var published = publisher.Published;
            ulong last = published[^1].Index;
            TestContext.Out.WriteLine($"published {published.Count} keyed entries, the last at index {last}");

            // The last run catches up and stops cleanly (SIGTERM), writing a last checkpoint.
            var final = StartMirror();
            await Poll.UntilAsync(() => Task.FromResult(AppliedLog.Read(appliedLog)),
                log => log.Runs.Count > 0 && log.Runs[^1].Indexes.Count > 0 && log.Runs[^1].Indexes[^1] >= last || final.HasExited,
                $"{final.Name} applies up to index {last}", Patience);
            Assert.That(await final.TerminateAsync(Patience), Is.EqualTo(0), final.Output);
            Assert.That(final.Output, Does.Contain($"stopped at index {last}, "));

            CheckRuns(AppliedLog.Read(appliedLog).Runs, published.Select(p => p.Index).ToList());

            var dump = new GeoRelayProcess("kv-mirror-dump", $"--checkpoints \"{checkpoints}\" --dump", program: "kv-mirror.dll");
            mirrors.Add(dump);
            Assert.That(await dump.WaitForExitAsync(Patience), Is.EqualTo(0), dump.Output);
            var expected = Expected(published).Select(kv => $"{kv.Key}\t{kv.Value}").ToList();
            var dumped = dump.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
            Assert.That(dumped, Is.EqualTo(expected), "the mirror's state is the last value of every key, keys in byte order");
            Assert.That(expected, Has.Count.GreaterThan(KeyCount / 2), "the check covers many keys");
        }
        finally
        {
            stopPublishing.Cancel();
            foreach (var mirror in mirrors) mirror.Dispose();
        }
    }

    /// <summary>
    /// Each run applies the delivered (published) indexes after the checkpoint it resumed from, gap-free and strictly
    /// increasing; a run resumes from a checkpoint no older than the previous run's and no newer than what it applied.
    /// </summary>
    private static void CheckRuns(List<AppliedLog.Run> runs, List<ulong> published)
    {
        Assert.That(runs, Has.Count.EqualTo(Kills + 1), "every run applied something");
        Assert.That(runs[0].From, Is.Zero, "the first run starts without a checkpoint");
        bool reapplied = false;
        for (int r = 0; r < runs.Count; r++)
        {
            var run = runs[r];
            int first = published.FindIndex(i => i > run.From);
            Assert.That(first, Is.Not.EqualTo(-1), $"run {r + 1} resumed after {run.From}, past everything published");
            var due = published.Skip(first).Take(run.Indexes.Count).ToList();
            Assert.That(run.Indexes, Is.EqualTo(due), $"run {r + 1} (from {run.From}) applies each delivered index after its checkpoint once, in order");
            if (r == 0) continue;
            var before = runs[r - 1];
            Assert.That(run.From, Is.InRange(before.From, before.Indexes[^1]),
                $"run {r + 1} resumes from a checkpoint the run before it wrote, at most where it got to");
            reapplied |= run.From < before.Indexes[^1];
        }
        Assert.That(runs.Any(r => r.From > 0), Is.True, "some run resumed from a checkpoint");
        Assert.That(reapplied, Is.True, "some kill left entries after the last checkpoint, applied again by the next run");
    }

    /// <summary>The last value of each key, keys in byte order (ordinal: they are ASCII).</summary>
    private static SortedDictionary<string, string> Expected(List<(ulong Index, Write Write)> published)
    {
        var state = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (_, write) in published)
        {
            if (write.Key.Length == 0) continue;
            if (write.Tombstone) state.Remove(write.Key);
            else state[write.Key] = write.Value;
        }
        return state;
    }

    /// <summary>
    /// Publishes requests of 1 to 8 random writes, each awaited committed, until stopped, and one request after that (so
    /// the last run has entries no killed run saw): with exactly-once on (the default) each request's producer marker takes
    /// an index learners never see, so the mirror's indexes skip.
    /// </summary>
    private sealed class KeyedPublisher(string endpoint, Random random)
    {
        private readonly List<(ulong Index, Write Write)> _published = new();
        private ulong _lastIndex;

        /// <summary>What the leader acked, in index order; read once <see cref="RunAsync"/> is done.</summary>
        public List<(ulong Index, Write Write)> Published => _published;

        /// <summary>The index of the last entry acked so far.</summary>
        public ulong LastIndex => Interlocked.Read(ref _lastIndex);

        public async Task RunAsync(CancellationToken stop)
        {
            await using var client = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [endpoint] });
            while (!stop.IsCancellationRequested && _published.Count < MaxEntries) await PublishOneAsync(client);
            await PublishOneAsync(client);
        }

        private async Task PublishOneAsync(PublisherClient client)
        {
            var writes = new List<Write>();
            for (int n = random.Next(1, 9); n > 0; n--) writes.Add(NextWrite(_published.Count + writes.Count));
            var entries = writes.Select(w => new PublishEntry(Encoding.UTF8.GetBytes(w.Key), Encoding.UTF8.GetBytes(w.Value), w.Tombstone)).ToList();
            var ack = await client.PublishAsync(entries, WaitLevel.Committed).AsTask().WaitAsync(Patience);
            for (int i = 0; i < writes.Count; i++) _published.Add((ack.FirstIndex + (ulong)i, writes[i]));
            Interlocked.Exchange(ref _lastIndex, ack.LastIndex);
        }

        private Write NextWrite(int number)
        {
            int roll = random.Next(100);
            if (roll < 5) return new Write("", $"no key {number}");
            string key = $"key-{random.Next(KeyCount):D2}";
            if (roll < 12) return new Write(key, "", Tombstone: true);
            return roll < 15 ? new Write(key, "") : new Write(key, $"value {number.ToString(CultureInfo.InvariantCulture)}");
        }
    }

    /// <summary>The sample's applied log: per run, <c>from N</c> (the checkpoint it resumed from), then each index it applied.</summary>
    private static class AppliedLog
    {
        public sealed record Run(ulong From, List<ulong> Indexes);

        public sealed record Contents(List<Run> Runs)
        {
            public override string ToString() =>
                Runs.Count == 0 ? "nothing applied" : $"{Runs.Count} runs, the last from {Runs[^1].From} with {Runs[^1].Indexes.Count} entries";
        }

        public static Contents Read(string path)
        {
            var runs = new List<Run>();
            if (!File.Exists(path)) return new Contents(runs);
            string text;
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            using (var reader = new StreamReader(stream))
                text = reader.ReadToEnd();
            // A line the mirror is writing right now may be read in part: only whole lines count.
            int end = text.LastIndexOf('\n');
            foreach (var line in text[..(end + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.StartsWith("from ", StringComparison.Ordinal))
                    runs.Add(new Run(ulong.Parse(line[5..], CultureInfo.InvariantCulture), new List<ulong>()));
                else if (runs.Count == 0)
                    Assert.Fail($"applied log '{path}' has an index before any 'from' line: {line}");
                else
                    runs[^1].Indexes.Add(ulong.Parse(line, CultureInfo.InvariantCulture));
            }
            return new Contents(runs);
        }
    }
}
