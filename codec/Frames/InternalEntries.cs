namespace GeoRelay.Codec.Frames;

/// <summary>
/// Entries the cluster writes for itself (the no-op a new leader commits its term with). They are log entries like
/// any other, replicated and counted, but never handed to applications. Their keys start with a zero byte, which
/// publishers may not use.
/// </summary>
public static class InternalEntries
{
    /// <summary>The no-op a leader appends when its term starts on a non-empty log (Raft §5.4.2).</summary>
    public static ReadOnlySpan<byte> NoOpKey => "\0georelay.no-op"u8;

    public static bool IsInternal(ReadOnlySpan<byte> key) => key.Length > 0 && key[0] == 0;

    public static bool IsInternal(in System.Buffers.ReadOnlySequence<byte> key) => !key.IsEmpty && key.Slice(0, 1).FirstSpan[0] == 0;
}
