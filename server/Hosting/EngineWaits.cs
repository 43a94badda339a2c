using GeoRelay.Storage;

namespace GeoRelay.Server.Hosting;

internal static class EngineWaits
{
    /// <summary>
    /// Waits, at most <paramref name="bound"/>, until <paramref name="done"/> holds after an engine event, checked under
    /// the engine's lock; false on timeout or when the disk failed meanwhile.
    /// </summary>
    public static async Task<bool> UntilAsync(EngineHost host, Func<bool> done, TimeSpan bound)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check()
        {
            if (done()) reached.TrySetResult();
        }
        try
        {
            host.Invoke(_ => { Check(); host.AfterDrain = Check; return 0; });
            var first = await Task.WhenAny(reached.Task, host.Failed).WaitAsync(bound).ConfigureAwait(false);
            return first == reached.Task;
        }
        catch (Exception e) when (e is TimeoutException or DiskFailedException)
        {
            return false;
        }
        finally
        {
            host.Invoke(_ => host.AfterDrain = null);
        }
    }
}
