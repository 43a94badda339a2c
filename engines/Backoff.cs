namespace GeoRelay.Engines;

/// <summary>Reconnect back-off: doubles from Initial to Max, with jitter from the caller's random.</summary>
public struct Backoff
{
    public int Failures;
    public long RetryAtMicros;

    public void Fail(long nowMicros, long initialMicros, long maxMicros, Random random)
    {
        Failures++;
        long delay = Math.Min(maxMicros, initialMicros << Math.Min(Failures - 1, 20));
        delay += (long)(random.NextDouble() * delay * 0.2);
        RetryAtMicros = nowMicros + delay;
    }

    public void Succeed()
    {
        Failures = 0;
        RetryAtMicros = 0;
    }

    public readonly bool Due(long nowMicros) => nowMicros >= RetryAtMicros;
}
