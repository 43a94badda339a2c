using System.Diagnostics;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;

namespace GeoRelay.Tests.Integration;

/// <summary>
/// What one learner received of a numbered test stream (entry i has payload <c>payloadOf(i)</c>), checked exactly-once
/// and in order as it came, with each entry's arrival time, for stall figures (<see cref="LongestStall"/>).
/// </summary>
internal sealed class RecordedStream(string name, int count, Func<ulong, string> payloadOf)
{
    public string Name { get; } = name;
    public long[] ArrivalTicks { get; } = new long[count + 1];
    public ulong Last;
    public string? Problem;
    /// <summary>Connections of the subscription that ended (the SDK's Disconnected callback).</summary>
    public int Reconnects;
    public readonly TaskCompletionSource All = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(ulong Index, TaskCompletionSource Done)> _waiters = new();

    /// <summary>Completes once the learner has received entry <paramref name="index"/> (or the stream broke: see <see cref="Problem"/>).</summary>
    public Task ReachedAsync(ulong index)
    {
        lock (_waiters)
        {
            if (Volatile.Read(ref Last) >= index || Problem is not null) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((index, done));
            return done.Task;
        }
    }

    private void Reached(ulong index, bool broken)
    {
        lock (_waiters)
        {
            Volatile.Write(ref Last, index);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (!broken && _waiters[i].Index > index) continue;
                _waiters[i].Done.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }

    /// <summary>Subscribes from 1 with <paramref name="options"/> and records until entry <c>count</c> or cancellation.</summary>
    public async Task RecordAsync(GeoRelay.LearnerClient.LearnerClientOptions options, Stopwatch clock, CancellationToken ct,
        Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        await using var client = new GeoRelay.LearnerClient.LearnerClient(options with { Disconnected = (_, _) => Interlocked.Increment(ref Reconnects) }, logger);
        try
        {
            await foreach (var entry in client.SubscribeAsync(1, ct))
            {
                ulong expected = Last + 1;
                if (entry.Index != expected || Encoding.UTF8.GetString(entry.Payload.Span) != payloadOf(entry.Index))
                {
                    Problem ??= $"{Name}: expected entry {expected} ('{payloadOf(expected)}'), got {entry.Index} ('{Encoding.UTF8.GetString(entry.Payload.Span)}')";
                    All.TrySetResult();
                    Reached(Last, broken: true);
                    return;
                }
                ArrivalTicks[entry.Index] = clock.Elapsed.Ticks;
                Reached(entry.Index, broken: false);
                if (entry.Index == (ulong)(ArrivalTicks.Length - 1)) All.TrySetResult();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>The longest time between two consecutive entries reaching the learner, for waits that end in [from, until).</summary>
    public TimeSpan LongestStall(TimeSpan from, TimeSpan until)
    {
        long longest = 0;
        for (int i = 2; i < ArrivalTicks.Length; i++)
        {
            long end = ArrivalTicks[i];
            if (end < from.Ticks || end >= until.Ticks) continue;
            longest = Math.Max(longest, end - Math.Max(ArrivalTicks[i - 1], from.Ticks));
        }
        return TimeSpan.FromTicks(longest);
    }

    /// <summary>
    /// Publishes entries 1..<paramref name="count"/> (payload <paramref name="payloadOf"/>) to the leader at a steady
    /// <paramref name="perSecond"/>, <paramref name="chunk"/> per request, at most 8 requests in flight, so that a stall
    /// shows as one. (Pacing, not synchronisation.)
    /// </summary>
    public static async Task PublishPacedAsync(string leader, int count, double perSecond, int chunk, Func<ulong, string> payloadOf,
        TimeSpan patience, CancellationToken ct)
    {
        await using var client = await PublisherClient.ConnectAsync(PublisherClientOptions.Default with { Endpoints = [leader], ExactlyOnce = false }, ct);
        var inFlight = new Queue<Task<PublishResult>>();
        var pace = Stopwatch.StartNew();
        for (int first = 1; first <= count; first += chunk)
        {
            var entries = new List<PublishEntry>(chunk);
            for (int i = first; i < first + chunk && i <= count; i++)
                entries.Add(new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes(payloadOf((ulong)i))));
            inFlight.Enqueue(client.PublishAsync(entries, WaitLevel.Accepted).AsTask());
            if (inFlight.Count >= 8) await inFlight.Dequeue().WaitAsync(patience, ct);
            var due = TimeSpan.FromSeconds(first / perSecond);
            if (pace.Elapsed < due) await Task.Delay(due - pace.Elapsed, ct);
        }
        while (inFlight.Count > 0) await inFlight.Dequeue().WaitAsync(patience, ct);
    }
}
