using NUnit.Framework;

namespace GeoRelay.TestUtilities;

/// <summary>
/// Waits for a condition that nothing signals (a counter, another thread's progress), checking it between yields,
/// never a fixed sleep, and fails naming <c>what</c> when the deadline passes. Compiled into the unit and
/// simulation tests.
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
    /// Reads another process's state with <paramref name="read"/> until <paramref name="done"/> holds, within
    /// <paramref name="patience"/>; returns the last value read, and fails showing it when the time is up.
    /// </summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan patience)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        T value = await read();
        while (!done(value))
        {
            if (clock.Elapsed > patience) Assert.Fail($"{what}: not reached within {patience.TotalSeconds} s; last seen: {value}");
            // Pacing between reads of a remote process (each an HTTP request), not synchronisation.
            await Task.Delay(50);
            value = await read();
        }
        return value;
    }
}
