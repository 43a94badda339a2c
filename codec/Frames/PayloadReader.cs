using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace GeoRelay.Codec.Frames;

/// <summary>
/// Reads DTO fields from a payload; every shortfall is a <see cref="CodecException"/> naming the
/// frame and field, and every length is checked against what remains before it is used.
/// </summary>
public ref struct PayloadReader
{
    private SequenceReader<byte> _reader;
    private readonly string _frame;

    public PayloadReader(ReadOnlySequence<byte> payload, string frame)
    {
        _reader = new SequenceReader<byte>(payload);
        _frame = frame;
    }

    public readonly long Remaining => _reader.Remaining;
    public readonly bool End => _reader.End;

    public byte ReadByte(string field)
    {
        if (!_reader.TryRead(out byte b)) throw Truncated(field);
        return b;
    }

    public ushort ReadUInt16(string field)
    {
        if (!_reader.TryReadLittleEndian(out short v)) throw Truncated(field);
        return (ushort)v;
    }

    public uint ReadUInt32(string field)
    {
        if (!_reader.TryReadLittleEndian(out int v)) throw Truncated(field);
        return (uint)v;
    }

    public ulong ReadUInt64(string field)
    {
        if (!_reader.TryReadLittleEndian(out long v)) throw Truncated(field);
        return (ulong)v;
    }

    public ulong ReadVarint(string field)
    {
        if (!Varint.TryRead(ref _reader, out ulong v)) throw Truncated(field);
        return v;
    }

    public int ReadLength(string field, int max)
    {
        ulong v = ReadVarint(field);
        if (v > (ulong)max)
            throw new CodecException(CodecError.TooLarge, $"{_frame}.{field}: length {v} is over the maximum of {max}");
        if ((long)v > _reader.Remaining)
            throw Truncated(field);
        return (int)v;
    }

    /// <summary>A length-prefixed slice of the payload (not a copy).</summary>
    public ReadOnlySequence<byte> ReadBytes(string field, int max)
    {
        int length = ReadLength(field, max);
        var slice = _reader.UnreadSequence.Slice(0, length);
        _reader.Advance(length);
        return slice;
    }

    /// <summary>
    /// A key written by <see cref="PayloadWriter.FlaggedKey"/>: <c>v (length &lt;&lt; 1 | tombstone)</c> then the bytes (a slice,
    /// not a copy). The length is checked against <paramref name="max"/> and the bytes left before it is believed.
    /// </summary>
    public ReadOnlySequence<byte> ReadFlaggedKey(string field, int max, out bool tombstone)
    {
        ulong v = ReadVarint(field);
        tombstone = (v & 1) != 0;
        ulong length = v >> 1;
        if (length > (ulong)max)
            throw new CodecException(CodecError.TooLarge, $"{_frame}.{field}: length {length} is over the maximum of {max}");
        if ((long)length > _reader.Remaining)
            throw Truncated(field);
        var slice = _reader.UnreadSequence.Slice(0, (long)length);
        _reader.Advance((long)length);
        return slice;
    }

    public string ReadString(string field, int max)
    {
        var bytes = ReadBytes(field, max);
        try
        {
            return Encoding.UTF8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Corrupt(field, "is not UTF-8");
        }
    }

    public ReadOnlySequence<byte> ReadRest()
    {
        var rest = _reader.UnreadSequence;
        _reader.AdvanceToEnd();
        return rest;
    }

    public readonly void ExpectEnd()
    {
        if (!_reader.End)
            throw new CodecException(CodecError.Corrupt, $"{_frame}: {_reader.Remaining} unexpected bytes after the last field");
    }

    public readonly CodecException Truncated(string field) => CodecException.Truncated($"{_frame}.{field}");
    public readonly CodecException Corrupt(string field, string what) => CodecException.Corrupt($"{_frame}.{field} {what}");
}

/// <summary>Field writers matching <see cref="PayloadReader"/>.</summary>
public static class PayloadWriter
{
    public static void Byte(IBufferWriter<byte> w, byte value)
    {
        w.GetSpan(1)[0] = value;
        w.Advance(1);
    }

    public static void UInt16(IBufferWriter<byte> w, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(w.GetSpan(2), value);
        w.Advance(2);
    }

    public static void UInt32(IBufferWriter<byte> w, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(w.GetSpan(4), value);
        w.Advance(4);
    }

    public static void UInt64(IBufferWriter<byte> w, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(w.GetSpan(8), value);
        w.Advance(8);
    }

    public static void Varint(IBufferWriter<byte> w, ulong value) => Codec.Varint.Write(w, value);

    public static void Bytes(IBufferWriter<byte> w, ReadOnlySpan<byte> value)
    {
        Codec.Varint.Write(w, (ulong)value.Length);
        var span = w.GetSpan(value.Length);
        value.CopyTo(span);
        w.Advance(value.Length);
    }

    /// <summary>A key with the entry's tombstone flag in its length's low bit (read by <see cref="PayloadReader.ReadFlaggedKey"/>).</summary>
    public static void FlaggedKey(IBufferWriter<byte> w, ReadOnlySpan<byte> key, bool tombstone)
    {
        Codec.Varint.Write(w, ((ulong)key.Length << 1) | (tombstone ? 1UL : 0));
        var span = w.GetSpan(key.Length);
        key.CopyTo(span);
        w.Advance(key.Length);
    }

    public static void Bytes(IBufferWriter<byte> w, in ReadOnlySequence<byte> value)
    {
        Codec.Varint.Write(w, (ulong)value.Length);
        foreach (var segment in value)
        {
            segment.Span.CopyTo(w.GetSpan(segment.Length));
            w.Advance(segment.Length);
        }
    }

    public static void String(IBufferWriter<byte> w, string value)
    {
        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        var span = w.GetSpan(Codec.Varint.MaxLength + max);
        int written = Encoding.UTF8.GetBytes(value, span.Slice(Codec.Varint.MaxLength));
        int prefix = Codec.Varint.Write(span, (ulong)written);
        if (prefix != Codec.Varint.MaxLength)
            span.Slice(Codec.Varint.MaxLength, written).CopyTo(span.Slice(prefix));
        w.Advance(prefix + written);
    }
}
