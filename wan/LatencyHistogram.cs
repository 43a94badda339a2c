namespace GeoRelay.Wan;

/// <summary>
/// Thread-safe histogram of durations in microseconds: 10 µs buckets up to one second (so an overhead of a
/// fraction of a millisecond stays visible on top of a 100 ms WAN delay), 1 % buckets above. Keeps the exact
/// maximum and sum. Negative values count as zero.
/// </summary>
public sealed class LatencyHistogram
{
    private const double LinearStepMicros = 10;
    private const int LinearBuckets = 100_000; // 1 s
    private const double LogBase = 1.01;
    private const int LogBuckets = 1_400; // 1 s * 1.01^1400 > 10^6 s
    private static readonly double LogScale = 1 / Math.Log(LogBase);

    private readonly long[] _counts = new long[LinearBuckets + LogBuckets];
    private long _count;
    private long _maxBits = BitConverter.DoubleToInt64Bits(0);
    private long _sumNanos;

    public long Count => Interlocked.Read(ref _count);
    public double MaxMicros => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _maxBits));
    public double MeanMicros => Count == 0 ? 0 : Interlocked.Read(ref _sumNanos) / 1000.0 / Count;

    public void Record(double micros)
    {
        if (!(micros > 0)) micros = 0;
        Interlocked.Increment(ref _counts[BucketOf(micros)]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumNanos, (long)(micros * 1000));
        RaiseMax(micros);
    }

    private void RaiseMax(double micros)
    {
        long bits;
        while (micros > BitConverter.Int64BitsToDouble(bits = Interlocked.Read(ref _maxBits))
               && Interlocked.CompareExchange(ref _maxBits, BitConverter.DoubleToInt64Bits(micros), bits) != bits) { }
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++)
        {
            long c = Interlocked.Read(ref other._counts[i]);
            if (c != 0) Interlocked.Add(ref _counts[i], c);
        }
        Interlocked.Add(ref _count, other.Count);
        Interlocked.Add(ref _sumNanos, Interlocked.Read(ref other._sumNanos));
        RaiseMax(other.MaxMicros);
    }

    /// <summary>The value at quantile <paramref name="q"/> (0..1), as its bucket's upper edge, never above the maximum; 0 when empty.</summary>
    public double Quantile(double q)
    {
        long total = Count;
        if (total == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank) return Math.Min(UpperEdge(i), MaxMicros);
        }
        return MaxMicros;
    }

    /// <summary>(value µs, fraction of samples at or below it) for every non-empty bucket: a CDF to plot.</summary>
    public IEnumerable<(double Micros, double Fraction)> Cdf()
    {
        long total = Count, seen = 0;
        if (total == 0) yield break;
        for (int i = 0; i < _counts.Length; i++)
        {
            long c = Interlocked.Read(ref _counts[i]);
            if (c == 0) continue;
            seen += c;
            yield return (Math.Min(UpperEdge(i), MaxMicros), (double)seen / total);
        }
    }

    private static int BucketOf(double micros)
    {
        if (micros < LinearBuckets * LinearStepMicros) return (int)(micros / LinearStepMicros);
        int log = (int)(Math.Log(micros / (LinearBuckets * LinearStepMicros)) * LogScale);
        return LinearBuckets + Math.Min(log, LogBuckets - 1);
    }

    private static double UpperEdge(int bucket) => bucket < LinearBuckets
        ? (bucket + 1) * LinearStepMicros
        : LinearBuckets * LinearStepMicros * Math.Pow(LogBase, bucket - LinearBuckets + 1);
}
