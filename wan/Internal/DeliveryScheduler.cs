using System.Diagnostics;
using System.Runtime.InteropServices;

namespace GeoRelay.Wan.Internal;

/// <summary>
/// Wakes pumps when their head chunk falls due. One thread per process: Task.Delay and Monitor.Wait round to
/// whole milliseconds (and the thread pool adds queueing on a busy machine), which would swamp the sub-millisecond
/// overheads the benchmark measures. Long waits park on a monitor (woken early when something sooner is
/// scheduled); the last two milliseconds are slept with nanosleep, which is accurate to tens of microseconds.
/// </summary>
internal static partial class DeliveryScheduler
{
    private static readonly object Gate = new();
    private static readonly PriorityQueue<Action, long> Due = new();
    private static Thread? _thread;

    public static long Now => Stopwatch.GetTimestamp();

    public static long TicksFrom(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Runs <paramref name="wake"/> on the scheduler thread at <paramref name="dueTimestamp"/> (Stopwatch ticks); keep it short.</summary>
    public static void Schedule(long dueTimestamp, Action wake)
    {
        lock (Gate)
        {
            bool sooner = !Due.TryPeek(out _, out long head) || dueTimestamp < head;
            Due.Enqueue(wake, dueTimestamp);
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "wan-delivery", Priority = ThreadPriority.Highest };
                _thread.Start();
            }
            else if (sooner) Monitor.Pulse(Gate);
        }
    }

    private static void Run()
    {
        RaisePriority();
        var fire = new List<Action>();
        while (true)
        {
            long sleepTicks = 0;
            lock (Gate)
            {
                long now = Now;
                while (Due.TryPeek(out var wake, out long due) && due <= now)
                {
                    Due.Dequeue();
                    fire.Add(wake);
                }
                if (fire.Count == 0)
                {
                    if (!Due.TryPeek(out _, out long next))
                        Monitor.Wait(Gate);
                    else
                    {
                        long wait = next - now;
                        long coarse = wait - 2 * Stopwatch.Frequency / 1000;
                        if (coarse > 0)
                            Monitor.Wait(Gate, TimeSpan.FromSeconds((double)coarse / Stopwatch.Frequency));
                        else
                            sleepTicks = wait;
                    }
                }
            }
            foreach (var wake in fire) wake();
            fire.Clear();
            if (sleepTicks > 0) SleepPrecisely(sleepTicks);
        }
    }

    private static void SleepPrecisely(long ticks)
    {
        long nanos = (long)(ticks * (1e9 / Stopwatch.Frequency));
        var request = new TimeSpec { Seconds = nanos / 1_000_000_000, Nanoseconds = nanos % 1_000_000_000 };
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
            NanoSleep(in request, IntPtr.Zero);
        else
            Thread.Sleep(TimeSpan.FromTicks(Math.Max(1, nanos / 100)));
    }

    /// <summary>
    /// On a loaded machine a woken thread waits its turn in the run queue for milliseconds; a lower nice value
    /// (allowed to root, ignored otherwise) keeps the emulated delay close to the configured one.
    /// </summary>
    internal static void RaisePriority()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { SetPriority(0, GetThreadId(), -10); }
        catch (EntryPointNotFoundException) { }
        catch (DllNotFoundException) { }
    }

    [LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetThreadId();

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "nanosleep")]
    private static partial int NanoSleep(in TimeSpec request, IntPtr remaining);
}
