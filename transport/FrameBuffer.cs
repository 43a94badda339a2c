using System.Collections.Concurrent;
using GeoRelay.Codec;

namespace GeoRelay.Transport;

/// <summary>
/// Encoded frames in a pooled buffer, reference-counted so one learner delivery frame is encoded once
/// and written to every learner connection.
/// </summary>
public sealed class FrameBuffer
{
    private static readonly ConcurrentBag<FrameBuffer> s_pool = new();
    private const int MaxPooled = 4096;
    private const int MaxPooledCapacity = 1 << 20;

    private static long s_inUse;
    private int _refs;

    /// <summary>Buffers rented and not yet released by their last holder, process-wide.</summary>
    public static long InUse => Interlocked.Read(ref s_inUse);

    public PooledBufferWriter Writer { get; } = new(4096);
    public ReadOnlyMemory<byte> Memory => Writer.WrittenMemory;
    public int Length => Writer.WrittenCount;

    private FrameBuffer() { }

    public static FrameBuffer Rent()
    {
        if (!s_pool.TryTake(out var buffer))
            buffer = new FrameBuffer();
        buffer._refs = 1;
        Interlocked.Increment(ref s_inUse);
        return buffer;
    }

    public FrameBuffer AddRef()
    {
        Interlocked.Increment(ref _refs);
        return this;
    }

    public void Release()
    {
        int left = Interlocked.Decrement(ref _refs);
        if (left > 0) return;
        if (left < 0) throw new InvalidOperationException("FrameBuffer released more often than referenced");
        Interlocked.Decrement(ref s_inUse);
        Writer.Clear();
        // Large buffers go back to the array pool rather than being kept alive here.
        if (s_pool.Count < MaxPooled && Writer.GetMemory(0).Length <= MaxPooledCapacity)
            s_pool.Add(this);
        else
            Writer.Dispose();
    }
}
