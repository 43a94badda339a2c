using System.Buffers;
using System.Buffers.Binary;

namespace GeoRelay.Codec.Frames;

public enum FrameType : byte
{
    Hello = 1,
    Welcome = 2,
    Error = 3,
    Heartbeat = 4,
    Batch = 5,
    Append = 6,
    Ack = 7,
    DcAck = 8,
    Subscribe = 9,
    Deliver = 10,
    SnapshotRequired = 11,
    Confirm = 12,
    Publish = 13,
    PublishAck = 14,
    VoteRequest = 15,
    VoteResponse = 16,
    TimeoutNow = 17,
    /// <summary>Between voters: the leader's liveness, and the followers' answers (check-quorum).</summary>
    VoterBeat = 18,
    /// <summary>To a learner: entries it was sent above an index were taken back (delivery: durable).</summary>
    Truncated = 19,
    /// <summary>Leader to a follower behind its log's start (through the DC's relay): take the log from there.</summary>
    InstallSnapshot = 20,
    /// <summary>To a learner: a chunk of a snapshot of keyed state (<see cref="SnapshotChunkFrame"/>).</summary>
    SnapshotChunk = 21,
    /// <summary>
    /// Protocol 3. Leader or relay to a follower link, before any batch: the cluster membership (<see cref="ConfigurationFrame"/>).
    /// </summary>
    Configuration = 22,
}

[Flags]
public enum FrameFlags : byte
{
    None = 0,
    /// <summary>The payload is one message of the connection's zstd stream.</summary>
    Compressed = 1,
}

/// <summary>
/// Every frame starts with this header.
/// <code>
///  0               4       5       6
///  +---------------+-------+-------+----------------------+
///  | u32 length LE | type  | flags | payload (length)     |
///  +---------------+-------+-------+----------------------+
/// </code>
/// </summary>
public readonly struct FrameHeader
{
    public const int Size = 6;
    public const FrameType MaxType = FrameType.Configuration;

    public readonly int PayloadLength;
    public readonly FrameType Type;
    public readonly FrameFlags Flags;

    public FrameHeader(int payloadLength, FrameType type, FrameFlags flags)
    {
        PayloadLength = payloadLength;
        Type = type;
        Flags = flags;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)PayloadLength);
        destination[4] = (byte)Type;
        destination[5] = (byte)Flags;
    }

    public static bool IsKnown(FrameType type) => type is >= FrameType.Hello and <= MaxType;
}

/// <summary>A frame whose payload is a slice of the receive buffer (valid until the caller advances it).</summary>
public readonly struct Frame
{
    public readonly FrameType Type;
    public readonly FrameFlags Flags;
    public readonly ReadOnlySequence<byte> Payload;

    public Frame(FrameType type, FrameFlags flags, ReadOnlySequence<byte> payload)
    {
        Type = type;
        Flags = flags;
        Payload = payload;
    }

    public bool IsCompressed => (Flags & FrameFlags.Compressed) != 0;
}

public static class FrameReader
{
    /// <summary>
    /// Reads one frame from the front of <paramref name="buffer"/>. Returns false when more bytes are
    /// needed (the buffer is unchanged); on success slices the frame off the buffer. Throws only
    /// <see cref="CodecException"/>: for an unknown type, unknown flags, or a length above
    /// <paramref name="maxPayload"/>, which are checked before any payload is awaited.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxPayload, out Frame frame) =>
        TryRead(ref buffer, maxPayload, ProtocolVersion.Max, out frame);

    /// <summary>
    /// As <see cref="TryRead(ref ReadOnlySequence{byte}, int, out Frame)"/> on a connection that speaks
    /// <paramref name="version"/>: a frame type this build knows but that version does not have is a protocol error.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxPayload, ushort version, out Frame frame)
    {
        frame = default;
        if (buffer.Length < FrameHeader.Size)
            return false;
        Span<byte> head = stackalloc byte[FrameHeader.Size];
        buffer.Slice(0, FrameHeader.Size).CopyTo(head);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(head);
        var type = (FrameType)head[4];
        var flags = (FrameFlags)head[5];
        if (length > (uint)maxPayload)
            throw new CodecException(CodecError.TooLarge, $"frame of {length} bytes is over the maximum of {maxPayload}");
        if (!FrameHeader.IsKnown(type))
            throw new CodecException(CodecError.UnknownType, $"unknown frame type {head[4]}");
        if (type > ProtocolVersion.MaxFrameType(version))
            throw new CodecException(CodecError.Protocol, $"{type} frame (type {head[4]}) is not part of protocol {version}, which this connection speaks");
        if (((byte)flags & ~(byte)FrameFlags.Compressed) != 0)
            throw new CodecException(CodecError.Corrupt, $"unknown frame flags 0x{head[5]:x2}");
        if (buffer.Length < FrameHeader.Size + length)
            return false;
        frame = new Frame(type, flags, buffer.Slice(FrameHeader.Size, length));
        buffer = buffer.Slice(FrameHeader.Size + length);
        return true;
    }
}

public static class FrameWriter
{
    /// <summary>Reserves room for a header; returns its position for <see cref="End"/>.</summary>
    public static int Begin(PooledBufferWriter writer)
    {
        int start = writer.WrittenCount;
        writer.GetSpan(FrameHeader.Size);
        writer.Advance(FrameHeader.Size);
        return start;
    }

    /// <summary>Patches the header reserved at <paramref name="start"/> with the payload written since.</summary>
    public static void End(PooledBufferWriter writer, int start, FrameType type, FrameFlags flags = FrameFlags.None)
    {
        int payload = writer.WrittenCount - start - FrameHeader.Size;
        new FrameHeader(payload, type, flags).Write(writer.WrittenSpanMutable.Slice(start));
    }

    public static void Write(IBufferWriter<byte> writer, FrameType type, FrameFlags flags, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(FrameHeader.Size + payload.Length);
        new FrameHeader(payload.Length, type, flags).Write(span);
        payload.CopyTo(span.Slice(FrameHeader.Size));
        writer.Advance(FrameHeader.Size + payload.Length);
    }
}
