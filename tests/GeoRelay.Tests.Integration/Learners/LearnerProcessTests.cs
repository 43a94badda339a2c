using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Cli;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using GeoRelay.Transport;
using NUnit.Framework;
namespace GeoRelay.Tests.Integration.Learners;

using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// Learners (the SDK) against real georelay processes from learners.yaml: a leader, eu-west's two relays
/// and its member. Every stream is checked entry by entry against the leader's log.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LearnerProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Test]
    public async Task AThousandLearnersOnOneRelayReceiveIdenticalCompleteOrderedStreams()
    {
        // A thousand SDK learners in this process and the relay share two cores: the relay can go silent past
        // 500 ms while they subscribe, and a failover then leaves these single-endpoint learners on an unfed
        // relay (failover is another test's subject). The relay's acks are not what this test is about.
        using var cluster = new ClusterFixture("learners.yaml", yaml => yaml.Replace("failover-after: 500ms", "failover-after: 10s"));
        await cluster.StartAllAsync();
        const int learnerCount = 1000, entryCount = 2000;
        using var stop = new CancellationTokenSource(Patience * 2);
        // A smaller receive buffer than the SDK default: a thousand of them share this test process.
        var options = Options(cluster, "eu-p1") with { ReceiveBufferSize = 128 << 10 };
        var learners = await StartLearnersAsync(learnerCount, options, 1, entryCount, stop.Token);

        await using (var publisher = await PublisherClient.ConnectAsync(PublisherOptions(cluster), stop.Token))
            await PublishAsync(publisher, 1, entryCount, 256);
        await WhenAllReceivedAsync(learners, cluster);

        var log = await StopAndReadLeaderLogAsync(cluster);
        Assert.That(log, Has.Count.EqualTo(entryCount));
        foreach (var learner in learners) AssertStreamMatchesLog(learner, log, 1, entryCount);
        await DisposeAllAsync(learners);
    }

    [Test]
    public async Task LearnersOfAKilledRelayResumeOnTheOtherRelayWithoutGapOrDuplicate()
    {
        using var cluster = new ClusterFixture("learners.yaml");
        await cluster.StartAllAsync();
        const int learnerCount = 50, entryCount = 8000, killAfter = 2000;
        using var stop = new CancellationTokenSource(Patience * 2);
        var options = Options(cluster, "eu-p1", "eu-p2");
        var midStream = new Countdown(learnerCount);
        var learners = await StartLearnersAsync(learnerCount, options, 1, entryCount, stop.Token, killAfter, midStream);

        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(cluster), stop.Token);
        await PublishAsync(publisher, 1, entryCount / 2, 256);
        await midStream.Done.WaitAsync(Patience);
        cluster.Processes["eu-p1"].Kill();                  // SIGKILL: its learners see their connections drop
        await PublishAsync(publisher, entryCount / 2 + 1, entryCount / 2, 256);
        await WhenAllReceivedAsync(learners, cluster);

        var log = await StopAndReadLeaderLogAsync(cluster);
        Assert.That(log, Has.Count.EqualTo(entryCount));
        var standby = cluster.Topology.GetNode("eu-p2").Learners!.Value.ToEndPoint();
        foreach (var learner in learners)
        {
            AssertStreamMatchesLog(learner, log, 1, entryCount);
            Assert.That(learner.EndpointAtEnd, Is.EqualTo(standby), "the learner should have finished on eu-west's other relay");
        }
        await DisposeAllAsync(learners);
    }

    [Test]
    public async Task AStalledLearnerIsCutAsSlowConsumerWhileTheOthersKeepPaceAndRelayMemoryStaysBounded()
    {
        const long backlog = 1 << 20, retention = 16 << 20;
        using var cluster = new ClusterFixture("learners.yaml", yaml => yaml.Replace("retention: { max-bytes: 256MiB", "retention: { max-bytes: 16MiB"));
        // A hard GC heap limit on the relay: holding the stalled learner's share of the stream would exhaust it.
        cluster.NodeEnvironment["eu-p1"] = new() { ["DOTNET_GCHeapHardLimit"] = "0x4000000" };
        await cluster.StartAllAsync();
        const int warmUp = 16_000, stalledPhase = 32_000, payloadBytes = 2048, learnerCount = 3;
        const int total = warmUp + stalledPhase;
        using var stop = new CancellationTokenSource(Patience * 2);
        var relay = cluster.Processes["eu-p1"];
        var endpoint = cluster.Topology.GetNode("eu-p1").Learners!.Value.ToEndPoint();
        var warm = new Countdown(learnerCount);
        var learners = await StartLearnersAsync(learnerCount, Options(cluster, "eu-p1"), 1, total, stop.Token, warmUp, warm);
        await using var publisher = await PublisherClient.ConnectAsync(PublisherOptions(cluster), stop.Token);

        // Warm up first with as much traffic, so the baseline includes the relay's steady-state buffers and heap.
        await PublishPacedAsync(publisher, learners, 1, warmUp, payloadBytes);
        await warm.Done.WaitAsync(Patience);
        long baseline = ResidentBytes(relay.Id);

        await using var stalled = await StalledLearner.ConnectAsync(endpoint, "stalled-learner", warmUp + 1, Patience, stop.Token);
        long peak = baseline;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            // Measurement, not synchronisation: the relay's resident memory while the stalled learner stays connected.
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            while (await timer.WaitForNextTickAsync(CancellationToken.None) && !sampling.IsCancellationRequested)
                peak = Math.Max(peak, ResidentBytes(relay.Id));
        });
        await PublishPacedAsync(publisher, learners, warmUp + 1, stalledPhase, payloadBytes);
        TestContext.Out.WriteLine($"relay resident memory: {baseline >> 20} MiB after warm-up, peak {peak >> 20} MiB with the stalled learner");
        var cut = await relay.WaitForLineAsync("Learner (\\S+) .*cut as a slow consumer: (\\d+) bytes queued, bound (\\d+)", Patience);
        await WhenAllReceivedAsync(learners, cluster);
        sampling.Cancel();
        await sampler;

        Assert.That(relay.HasExited, Is.False, "the relay went down: " + relay.Output);
        Assert.That(cut.Groups[1].Value, Is.EqualTo("stalled-learner"), "only the learner that stopped reading is cut");
        Assert.That(Regex.Matches(relay.Output, "cut as a slow consumer"), Has.Count.EqualTo(1), relay.Output);
        Assert.That(long.Parse(cut.Groups[2].Value), Is.LessThanOrEqualTo(backlog), "queued bytes when cut");
        // The relay holds at most the backlog for the stalled learner (twice, counting the transport's own
        // bound), its read cache (a quarter of retention) and allocator slack — far less than the 64 MiB
        // published while the learner was stalled.
        long bound = 2 * backlog + retention / 4 + (24 << 20);
        Assert.That(peak - baseline, Is.LessThan(bound),
            $"relay resident memory grew from {baseline >> 20} MiB to {peak >> 20} MiB while {stalledPhase * (long)payloadBytes >> 20} MiB were published");

        // Still not reading, it does not keep its connection: the relay closes it once the kernel took the rest of its
        // backlog, or aborts it at the close timeout (5 s) when the kernel would not.
        await relay.WaitForLineAsync("Disconnected from stalled-learner .*SlowConsumer", Patience);
        // Reading again, it gets a gap-free prefix and then the SlowConsumer error or, if aborted, the end of the connection.
        var (error, next) = await StalledLearner.DrainAsync(stalled, warmUp + 1, stop.Token);
        Assert.That(error, Is.Null.Or.EqualTo(CodecError.SlowConsumer));
        Assert.That(next, Is.LessThan((ulong)total + 1), "it was cut before the end of the stream");

        var log = await StopAndReadLeaderLogAsync(cluster);
        foreach (var learner in learners) AssertStreamMatchesLog(learner, log, 1, total);
        await DisposeAllAsync(learners);
    }

    [Test]
    public async Task ResumingBelowEveryRetentionWindowEndsWithSnapshotRequired()
    {
        // 256 KiB of retention, so 64 KiB segments: a few thousand entries push index 1 out everywhere.
        using var cluster = new ClusterFixture("learners.yaml", yaml => yaml.Replace("retention: { max-bytes: 256MiB", "retention: { max-bytes: 256KiB"));
        await cluster.StartAllAsync();
        const int entryCount = 6000;
        using var stop = new CancellationTokenSource(Patience * 2);
        await using (var publisher = await PublisherClient.ConnectAsync(PublisherOptions(cluster), stop.Token))
            await PublishAsync(publisher, 1, entryCount, 256);
        foreach (var node in new[] { "eu-p1", "eu-m1" })
            await cluster.Processes[node].WaitForLineAsync("Retention dropped \\d+ segments", Patience);

        var options = Options(cluster, "eu-p1", "eu-m1");
        var failure = Assert.ThrowsAsync<SnapshotRequiredException>(async () =>
        {
            await using var learner = await LearnerClient.ConnectAsync(options, stop.Token);
            await foreach (var _ in learner.SubscribeAsync(1, stop.Token)) Assert.Fail("an entry was delivered from below every retention window");
        })!;
        Assert.That(failure.RequestedIndex, Is.EqualTo(1UL));
        Assert.That(failure.OldestAvailableIndex, Is.GreaterThan(1UL).And.LessThanOrEqualTo((ulong)entryCount));

        // What a user then does: restore a snapshot below the oldest index and subscribe from there.
        // Retention may move on meanwhile (once a second); each refusal names the new oldest index.
        ulong from = failure.OldestAvailableIndex;
        RecordingLearner? resumed = null;
        for (int attempt = 0; attempt < 5 && resumed is null; attempt++)
        {
            var learner = (await StartLearnersAsync(1, options, from, entryCount, stop.Token))[0];
            try
            {
                await learner.Done.WaitAsync(Patience);
                resumed = learner;
            }
            catch (SnapshotRequiredException again)
            {
                from = again.OldestAvailableIndex;
            }
            await learner.Client.DisposeAsync();
        }
        Assert.That(resumed, Is.Not.Null, "could not subscribe from the oldest index the endpoints reported");
        var log = await StopAndReadLeaderLogAsync(cluster);
        AssertStreamMatchesLog(resumed!, log, from, entryCount);
    }

    // ---- helpers ----

    /// <summary>What one learner received, in arrival order: index and a fingerprint of (epoch, key, payload).</summary>
    private sealed class RecordingLearner(string name, LearnerClient client)
    {
        public string Name { get; } = name;
        public LearnerClient Client { get; } = client;
        public List<(ulong Index, int Fingerprint)> Received { get; } = new();
        public EndPoint? EndpointAtEnd;
        public Task Done = Task.CompletedTask;
        public ulong Last;
        private TaskCompletionSource _moved = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Record(ulong index, int fingerprint)
        {
            Received.Add((index, fingerprint));
            Volatile.Write(ref Last, index);
            Interlocked.Exchange(ref _moved, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        /// <summary>Completes once this learner holds <paramref name="index"/>.</summary>
        public async Task WhenHoldsAsync(ulong index)
        {
            while (true)
            {
                var moved = Volatile.Read(ref _moved).Task;
                if (Volatile.Read(ref Last) >= index) return;
                if (Done.IsCompleted) { await Done; throw new InvalidOperationException($"{Name} stopped at {Last}"); }
                await Task.WhenAny(moved, Done).WaitAsync(Patience);
            }
        }
    }

    private static async Task WhenAllHoldAsync(List<RecordingLearner> learners, ulong index)
    {
        foreach (var learner in learners) await learner.WhenHoldsAsync(index);
    }

    /// <summary>Completes once <c>count</c> learners have signalled.</summary>
    private sealed class Countdown(int count)
    {
        private int _left = count;
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Done => _done.Task;
        public void Signal()
        {
            if (Interlocked.Decrement(ref _left) == 0) _done.TrySetResult();
        }
    }

    private static int Fingerprint(ulong epoch, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        var hash = new HashCode();
        hash.Add(epoch);
        hash.AddBytes(key);
        hash.AddBytes(payload);
        return hash.ToHashCode();
    }

    private static LearnerClientOptions Options(ClusterFixture cluster, params string[] nodes) => new()
    {
        Endpoints = nodes.Select(n => cluster.Topology.GetNode(n).Learners!.Value.ToString()).ToArray(),
        ReconnectInitial = TimeSpan.FromMilliseconds(20),
        ReconnectMax = TimeSpan.FromMilliseconds(500),
    };

    /// <summary>
    /// Connects <paramref name="count"/> learners and starts their subscriptions; each stops after
    /// <paramref name="through"/>, and signals <paramref name="progress"/> once it holds <paramref name="signalAt"/>.
    /// </summary>
    private static async Task<List<RecordingLearner>> StartLearnersAsync(int count, LearnerClientOptions options, ulong from, ulong through,
        CancellationToken ct, ulong signalAt = 0, Countdown? progress = null)
    {
        var connecting = new Task<LearnerClient>[count];
        for (int i = 0; i < count; i++)
            connecting[i] = LearnerClient.ConnectAsync(options with { NodeId = $"it-learner-{i}" }, ct);
        var learners = new List<RecordingLearner>(count);
        var clients = await Task.WhenAll(connecting);
        for (int i = 0; i < count; i++)
        {
            var client = clients[i];
            var learner = new RecordingLearner($"it-learner-{i}", client);
            learner.Done = Task.Run(async () =>
            {
                await foreach (var e in client.SubscribeAsync(from, ct))
                {
                    learner.Record(e.Index, Fingerprint(e.Epoch, e.Key.Span, e.Payload.Span));
                    if (e.Index == signalAt) progress?.Signal();
                    if (e.Index >= through)
                    {
                        learner.EndpointAtEnd = client.ConnectedEndpoint;
                        break;
                    }
                }
            }, CancellationToken.None);
            learners.Add(learner);
        }
        return learners;
    }

    private static async Task WhenAllReceivedAsync(List<RecordingLearner> learners, ClusterFixture cluster)
    {
        var all = Task.WhenAll(learners.Select(l => l.Done));
        try
        {
            await all.WaitAsync(Patience);
        }
        catch (TimeoutException)
        {
            var behind = learners.Where(l => !l.Done.IsCompleted).Select(l => l.Received.Count).ToList();
            var logs = string.Join("\n", cluster.Processes.Select(p => $"---- {p.Key} ----\n{Tail(p.Value.Output)}"));
            Assert.Fail($"{behind.Count} learners did not receive the whole stream within {Patience.TotalSeconds} s; they hold {string.Join(", ", behind.Take(10))} entries\n{logs}");
        }
    }

    private static string Tail(string output) => output.Length <= 4000 ? output : output[^4000..];

    private static async Task DisposeAllAsync(List<RecordingLearner> learners)
    {
        foreach (var l in learners) await l.Client.DisposeAsync();
    }

    private static PublisherClientOptions PublisherOptions(ClusterFixture cluster) =>
        PublisherClientOptions.Default with { Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()], ExactlyOnce = false };

    /// <summary>Publishes entries numbered <paramref name="first"/>.. with distinct payloads, a few requests in flight.</summary>
    private static async Task PublishAsync(PublisherClient publisher, int first, int count, int payloadBytes, int batch = 500)
    {
        var inFlight = new Queue<Task<PublishResult>>();
        for (int n = first; n < first + count; n += batch)
        {
            var entries = new List<PublishEntry>(batch);
            for (int i = n; i < Math.Min(first + count, n + batch); i++)
            {
                var payload = new byte[payloadBytes];
                var random = new Random(i);
                random.NextBytes(payload);
                System.Text.Encoding.ASCII.GetBytes($"entry {i} ").CopyTo(payload, 0);
                entries.Add(new PublishEntry(ReadOnlyMemory<byte>.Empty, payload));
            }
            inFlight.Enqueue(publisher.PublishAsync(entries, WaitLevel.Accepted).AsTask());
            if (inFlight.Count >= 4) await inFlight.Dequeue().WaitAsync(Patience);
        }
        while (inFlight.Count > 0) await inFlight.Dequeue().WaitAsync(Patience);
    }

    /// <summary>
    /// Publishes in steps of 100 entries, each once the reading learners hold the previous one: they keep
    /// up however loaded the machine is, while a learner that stopped reading falls behind.
    /// </summary>
    private static async Task PublishPacedAsync(PublisherClient publisher, List<RecordingLearner> readers, int first, int count, int payloadBytes)
    {
        const int step = 100;
        for (int n = first; n < first + count; n += step)
        {
            int size = Math.Min(step, first + count - n);
            await PublishAsync(publisher, n, size, payloadBytes);
            await WhenAllHoldAsync(readers, (ulong)(n + size - 1));
        }
    }

    private static async Task<List<LogEntry>> StopAndReadLeaderLogAsync(ClusterFixture cluster)
    {
        var leader = cluster.Processes[cluster.Topology.LeaderId];
        Assert.That(await leader.TerminateAsync(Patience), Is.EqualTo(0), leader.Output);
        return cluster.EntriesOf(cluster.Topology.LeaderId);
    }

    /// <summary>The learner got exactly the leader's entries <paramref name="from"/>..<paramref name="through"/>: no gap, no duplicate, same content.</summary>
    private static void AssertStreamMatchesLog(RecordingLearner learner, List<LogEntry> log, ulong from, ulong through)
    {
        string who = learner.Name;
        ulong logStart = log.Count > 0 ? log[0].Index : 1;
        for (int i = 0; i < learner.Received.Count; i++)
        {
            var (index, fingerprint) = learner.Received[i];
            ulong expected = from + (ulong)i;
            if (index != expected)
                Assert.Fail($"{who}: entry #{i} has index {index}, expected {expected} ({(index < expected ? "duplicate" : "gap")})");
            if (index < logStart) continue; // the leader's retention dropped it: its order is checked, its content cannot be
            var e = log[(int)(index - logStart)];
            if (fingerprint != Fingerprint(e.Epoch, e.Key.Span, e.Payload.Span))
                Assert.Fail($"{who}: entry {index} differs from the leader's");
        }
        Assert.That((ulong)learner.Received.Count, Is.EqualTo(through - from + 1), $"{who}: entries received");
    }

    /// <summary>VmRSS of a process, in bytes.</summary>
    private static long ResidentBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim()) * 1024;
        throw new InvalidOperationException($"no VmRSS for process {pid}");
    }
}
