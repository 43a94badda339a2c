using System.Diagnostics;

namespace GeoRelay.Bench.Harness;

/// <summary>One timed operation: median throughput over several samples.</summary>
public sealed record ThroughputResult(double MedianMBps, double MinMBps, double MaxMBps, int Samples, int PassesPerSample, double[] SamplesMBps);

/// <summary>
/// A plain Stopwatch harness (BenchmarkDotNet would take far longer than this budget allows): warm up
/// until the JIT has tiered up, calibrate so one sample lasts a while, then take several samples and
/// report the median. <see cref="Pair"/> interleaves two operations sample by sample, so the noise of
/// a shared machine falls on both sides of a ratio alike.
/// </summary>
public static class Timing
{
    /// <summary>Warm-up time per operation; long enough for tier-1 code and dynamic PGO to kick in.</summary>
    public static TimeSpan Warmup { get; set; } = TimeSpan.FromMilliseconds(700);

    /// <summary>Shortest sample; calibration repeats the pass until one sample takes at least this long.</summary>
    public static TimeSpan MinSample { get; set; } = TimeSpan.FromMilliseconds(80);

    /// <summary>Samples per operation; the median is reported.</summary>
    public static int Samples { get; set; } = 11;

    /// <summary>Median over samples of a.MB/s ÷ b.MB/s, each pair taken back to back: steadier than a ratio of medians under load.</summary>
    public static double PairedRatio(ThroughputResult a, ThroughputResult b)
    {
        var ratios = new double[Math.Min(a.SamplesMBps.Length, b.SamplesMBps.Length)];
        for (int i = 0; i < ratios.Length; i++)
            ratios[i] = a.SamplesMBps[i] / b.SamplesMBps[i];
        return Median(ratios);
    }

    /// <summary>Measures <paramref name="a"/> and <paramref name="b"/> interleaved; each pass processes its byte count once.</summary>
    public static (ThroughputResult A, ThroughputResult B) Pair(Action a, long bytesA, Action b, long bytesB)
    {
        // Start from a quiet heap, so no collection left over from setup runs during the samples.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        int passesA = Calibrate(a), passesB = Calibrate(b);
        var mbpsA = new double[Samples];
        var mbpsB = new double[Samples];
        for (int s = 0; s < Samples; s++)
        {
            mbpsA[s] = Sample(a, passesA, bytesA);
            mbpsB[s] = Sample(b, passesB, bytesB);
        }
        return (Summarize(mbpsA, passesA), Summarize(mbpsB, passesB));
    }

    private static int Calibrate(Action pass)
    {
        // Warm up for at least Warmup, then until a round of passes stops getting faster (the JIT re-compiles hot
        // methods in the background, later on a busy machine), for at most three times Warmup.
        var clock = Stopwatch.StartNew();
        double best = double.MaxValue;
        while (true)
        {
            var round = Stopwatch.StartNew();
            int calls = 0;
            while (round.Elapsed < Warmup / 5 || calls < 2)
            {
                pass();
                calls++;
            }
            double perPass = round.Elapsed.TotalSeconds / calls;
            bool improved = perPass < best * 0.95;
            best = Math.Min(best, perPass);
            if (clock.Elapsed >= 3 * Warmup || (clock.Elapsed >= Warmup && !improved))
                break;
        }
        var one = Stopwatch.StartNew();
        pass();
        double seconds = Math.Max(one.Elapsed.TotalSeconds, 1e-7);
        return Math.Max(1, (int)Math.Ceiling(MinSample.TotalSeconds / seconds));
    }

    private static double Sample(Action pass, int passes, long bytes)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < passes; i++)
            pass();
        return bytes * (double)passes / clock.Elapsed.TotalSeconds / 1e6;
    }

    private static ThroughputResult Summarize(double[] mbps, int passes)
    {
        var sorted = (double[])mbps.Clone();
        Array.Sort(sorted);
        return new ThroughputResult(Median(mbps), sorted[0], sorted[^1], sorted.Length, passes, mbps);
    }

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        return sorted.Length % 2 == 1
            ? sorted[sorted.Length / 2]
            : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
