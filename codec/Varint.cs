using System.Buffers;
using System.Runtime.CompilerServices;

namespace GeoRelay.Codec;

/// <summary>LEB128 unsigned varints (7 bits per byte, low group first), at most 10 bytes for a ulong.</summary>
public static class Varint
{
    public const int MaxLength = 10;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SizeOf(ulong value)
    {
        // 1 byte per started 7-bit group; value 0 still takes one byte.
        int bits = 64 - System.Numerics.BitOperations.LeadingZeroCount(value | 1);
        return (bits + 6) / 7;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Write(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    public static void Write(IBufferWriter<byte> writer, ulong value)
    {
        var span = writer.GetSpan(MaxLength);
        writer.Advance(Write(span, value));
    }

    /// <summary>Reads a varint from a span. Returns false when the span ends first; throws on an over-long encoding.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ulong value, out int consumed)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < source.Length; i++)
        {
            byte b = source[i];
            if (i == MaxLength - 1 && b > 1)
                throw CodecException.Corrupt("varint overflows 64 bits");
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                consumed = i + 1;
                return true;
            }
            shift += 7;
        }
        consumed = 0;
        value = 0;
        return false;
    }

    /// <summary>Reads a varint from a sequence reader. Returns false when the sequence ends first.</summary>
    public static bool TryRead(ref SequenceReader<byte> reader, out ulong value)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < MaxLength; i++)
        {
            if (!reader.TryRead(out byte b))
                return false;
            if (i == MaxLength - 1 && b > 1)
                throw CodecException.Corrupt("varint overflows 64 bits");
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return true;
            shift += 7;
        }
        throw CodecException.Corrupt("varint longer than 10 bytes");
    }
}
