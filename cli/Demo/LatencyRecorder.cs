namespace GeoRelay.Cli.Demo;

/// <summary>
/// A lock-free latency histogram with buckets 5% wide from 1 µs to about 100 s: recording is one
/// interlocked increment, percentiles are within 5%. Safe to record from many threads.
/// </summary>
public sealed class LatencyRecorder
{
    private const double Growth = 1.05;
    private static readonly double LogGrowth = Math.Log(Growth);
    private const int BucketCount = 380; // 1.05^380 µs ≈ 115 s
    private readonly long[] _buckets = new long[BucketCount];

    public void Record(long micros)
    {
        int bucket = micros <= 1 ? 0 : Math.Min(BucketCount - 1, (int)(Math.Log(micros) / LogGrowth) + 1);
        Interlocked.Increment(ref _buckets[bucket]);
    }

    public long Count
    {
        get
        {
            long n = 0;
            for (int i = 0; i < BucketCount; i++) n += Volatile.Read(ref _buckets[i]);
            return n;
        }
    }

    /// <summary>Adds what <paramref name="other"/> recorded since its last drain to this one, and empties it.</summary>
    public void DrainInto(LatencyRecorder other)
    {
        for (int i = 0; i < BucketCount; i++)
        {
            long n = Interlocked.Exchange(ref _buckets[i], 0);
            if (n != 0) Interlocked.Add(ref other._buckets[i], n);
        }
    }

    /// <summary>The latency in seconds at quantile <paramref name="q"/> (0..1), or NaN when nothing was recorded.</summary>
    public double Percentile(double q)
    {
        long total = Count;
        if (total == 0) return double.NaN;
        long rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (int i = 0; i < BucketCount; i++)
        {
            seen += Volatile.Read(ref _buckets[i]);
            if (seen >= rank) return Math.Pow(Growth, i) / 1e6; // the bucket's upper bound
        }
        return Math.Pow(Growth, BucketCount) / 1e6;
    }
}
