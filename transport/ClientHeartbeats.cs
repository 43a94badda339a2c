using GeoRelay.Codec.Frames;

namespace GeoRelay.Transport;

/// <summary>What clients (learners, publishers) send while quiet, so a listener's idle timeout does not take them for dead.</summary>
public static class ClientHeartbeats
{
    /// <summary>Sends a Heartbeat every <paramref name="interval"/> until <paramref name="ct"/> fires or the connection closes.</summary>
    public static async Task SendWhileOpenAsync(FramedConnection connection, TimeSpan interval, CancellationToken ct)
    {
        if (interval <= TimeSpan.Zero) return;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, connection.Closed);
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
            {
                var delta = new DeltaState(); // always full fields: clients keep no delta state
                var frame = FrameBuffer.Rent();
                int start = FrameWriter.Begin(frame.Writer);
                new Heartbeat(0, 0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000).Write(frame.Writer, ref delta);
                FrameWriter.End(frame.Writer, start, FrameType.Heartbeat);
                if (!connection.TrySend(frame)) return;
            }
        }
        catch (OperationCanceledException) { }
    }
}
