using GeoRelay.Storage;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Runs the engine's group fsync on a thread of its own, never under the engine's lock, so a member goes on reading
/// and appending while the disk syncs instead of every frame waiting out the previous frame's fsync. When one ends,
/// <c>synced</c> tells the engine (under its lock) and returns false once the host is stopping; when one fails,
/// <c>failed</c> stops the node and the thread ends: a failed fsync is never retried.
/// </summary>
internal sealed class SyncThread(object gate, Func<bool> synced, Action<DiskFailedException> failed, CancellationToken stopping)
{
    private readonly SemaphoreSlim _requested = new(0);
    private Action? _pending; // under gate

    /// <summary>A Sync command's work, handed over with the engine's lock held.</summary>
    public void Request(Action flush)
    {
        _pending = flush;
        _requested.Release();
    }

    /// <summary>Starts the thread; the task completes when it has stopped.</summary>
    public Task Start()
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() => Run(stopped)) { IsBackground = true, Name = "georelay-sync" }.Start();
        return stopped.Task;
    }

    private void Run(TaskCompletionSource stopped)
    {
        try
        {
            while (true)
            {
                _requested.Wait(stopping);
                Action? flush;
                lock (gate) (flush, _pending) = (_pending, null);
                if (flush is null) continue;
                try
                {
                    flush();
                }
                catch (DiskFailedException e)
                {
                    failed(e);
                    break;
                }
                catch (Exception e)
                {
                    // Stopping closed the log under us: the stop flushes it itself.
                    if (stopping.IsCancellationRequested) break;
                    // Whatever else went wrong, the entries may not be durable: stop rather than wait forever.
                    failed(new DiskFailedException("fsync", null, e));
                    break;
                }
                if (!synced()) break;
            }
        }
        catch (OperationCanceledException) { }
        finally
        {
            stopped.TrySetResult();
        }
    }
}
