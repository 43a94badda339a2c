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
}
