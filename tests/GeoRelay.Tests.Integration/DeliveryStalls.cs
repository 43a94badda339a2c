namespace GeoRelay.Tests.Integration;

/// <summary>Stalls in what a learner received, from the arrival time of each index (Stopwatch ticks; slot i = index i).</summary>
internal static class DeliveryStalls
{
    /// <summary>The longest time between two consecutive entries reaching the learner, for waits that end in [from, until).</summary>
    public static TimeSpan Longest(long[] arrivals, TimeSpan from, TimeSpan until)
    {
        long longest = 0;
        for (int i = 2; i < arrivals.Length; i++)
        {
            long end = arrivals[i];
            if (end < from.Ticks || end >= until.Ticks) continue;
            longest = Math.Max(longest, end - Math.Max(arrivals[i - 1], from.Ticks));
        }
        return TimeSpan.FromTicks(longest);
    }
}
