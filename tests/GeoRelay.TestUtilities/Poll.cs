using NUnit.Framework;

namespace GeoRelay.TestUtilities;

/// <summary>
/// Waits for a condition that nothing signals (a counter, another thread's or process's progress), checking it between
/// yields or paced reads, never a fixed sleep, and fails naming <c>what</c> when the deadline passes.
/// </summary>
public static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, string what, CancellationToken deadline)
    {
        while (!condition())
        {
            if (deadline.IsCancellationRequested) Assert.Fail($"timed out waiting for {what}");
            await Task.Yield();
        }
    }

    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan patience)
    {
        using var deadline = new CancellationTokenSource(patience);
        await UntilAsync(condition, what, deadline.Token);
    }

    /// <summary>
    /// Reads another process's progress (its /status or /metrics) until <paramref name="done"/> holds, at most
    /// <paramref name="patience"/>; returns the last value, or fails naming <paramref name="what"/> and the last value
    /// seen. A read refused by HTTP (the admin endpoint of a node that is starting) counts as not done.
    /// </summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan patience)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            string seen;
            try
            {
                T value = await read();
                if (done(value)) return value;
                seen = $"{value}";
            }
            catch (HttpRequestException e)
            {
                seen = e.Message;
            }
            if (clock.Elapsed > patience) Assert.Fail($"{what}: not reached within {patience.TotalSeconds} s; last seen: {seen}");
            // Pacing between reads of another process's progress, not synchronisation.
            await Task.Delay(50);
        }
    }
}
