using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Logs a long catch-up while it runs: for each named stream (a datacenter) that has been more than
/// <see cref="Threshold"/> entries behind for an <see cref="Interval"/>, one line every interval with
/// how far it got and its pace, and one line when it has caught up.
/// </summary>
public sealed class CatchUpProgress(ILogger logger)
{
    private sealed class Run(ulong startIndex, long startMicros)
    {
        public ulong StartIndex { get; } = startIndex;
        public long StartMicros { get; } = startMicros;
        public long LastLogMicros = startMicros;
        public bool Logged;
    }

    private readonly Dictionary<string, Run> _running = new();

    /// <summary>Entries behind before a catch-up is worth logging. Default 10,000.</summary>
    public ulong Threshold { get; init; } = 10_000;

    /// <summary>Between progress lines. Default 2 s.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(2);

    public void Observe(string name, ulong done, ulong target, long nowMicros)
    {
        ulong behind = target > done ? target - done : 0;
        if (!_running.TryGetValue(name, out var run))
        {
            if (behind < Threshold) return;
            // Silent until it has lasted an interval: a burst that clears quickly is not a catch-up.
            _running[name] = new Run(done, nowMicros);
            return;
        }
        double seconds = Math.Max(1e-6, (nowMicros - run.StartMicros) / 1e6);
        double rate = (done - Math.Min(done, run.StartIndex)) / seconds;
        if (behind < Threshold / 10)
        {
            _running.Remove(name);
            if (run.Logged) HostingLog.CaughtUp(logger, name, done, seconds, rate);
            return;
        }
        if (nowMicros - run.LastLogMicros < (long)Interval.TotalMicroseconds) return;
        run.LastLogMicros = nowMicros;
        if (!run.Logged) HostingLog.CatchUpStarted(logger, name, run.StartIndex, target, target - Math.Min(target, run.StartIndex));
        run.Logged = true;
        double percent = target == 0 ? 100 : 100.0 * done / target;
        HostingLog.CatchUpProgress(logger, name, done, target, percent, rate, rate > 0 ? behind / rate : double.PositiveInfinity);
    }
}
