using System.Buffers.Binary;

namespace GeoRelay.Storage.Internal;

/// <summary>
/// The fixed part of an on-disk record, little-endian:
/// <code>
///  0      4      8              16             24             32    34
///  +------+------+--------------+--------------+--------------+-----+-----+---------+
///  |length| crc  |    index     |    epoch     | timestamp µs |keyLen| key | payload |
///  +------+------+--------------+--------------+--------------+-----+-----+---------+
///   u32    u32    u64            u64            i64            u16
/// </code>
/// <c>keyLen</c>'s top bit marks a tombstone (<see cref="EntryFlags.Tombstone"/>); keys were never longer than 1 KiB, so
/// files written before the flag existed read the same.
/// <c>length</c> counts the bytes after itself (crc through payload), so a record takes <c>4 + length</c> bytes;
/// <c>crc</c> is CRC-32C over everything after it (index through payload).
/// </summary>
internal readonly struct RecordHeader
{
    public const int Size = 34;
    public const int CrcOffset = 4;
    public const int CrcCoveredOffset = 8;
    /// <summary>Smallest valid <see cref="Length"/>: an entry with no key and no payload.</summary>
    public const int MinLength = Size - 4;
    /// <summary>Largest record (header included) written or believed when read back.</summary>
    public const int MaxRecordBytes = 64 * 1024 * 1024;

    public readonly uint Length;
    public readonly uint Crc;
    public readonly ulong Index;
    public readonly ulong Epoch;
    public readonly long TimestampMicros;
    public readonly ushort KeyLength;
    public readonly EntryFlags Flags;
    private const ushort TombstoneBit = 0x8000;

    private RecordHeader(uint length, uint crc, ulong index, ulong epoch, long timestampMicros, ushort keyLengthAndFlag)
    {
        Length = length;
        Crc = crc;
        Index = index;
        Epoch = epoch;
        TimestampMicros = timestampMicros;
        KeyLength = (ushort)(keyLengthAndFlag & ~TombstoneBit);
        Flags = (keyLengthAndFlag & TombstoneBit) != 0 ? EntryFlags.Tombstone : EntryFlags.None;
    }

    /// <summary>Bytes of the whole record, header included.</summary>
    public long RecordSize => 4L + Length;

    public int PayloadLength => (int)(Length - MinLength - KeyLength);

    public static RecordHeader Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        BinaryPrimitives.ReadInt64LittleEndian(source[24..]),
        BinaryPrimitives.ReadUInt16LittleEndian(source[32..]));

    /// <summary>Why a length read from disk cannot be trusted, or null if it is plausible within <paramref name="bytesLeft"/> (from the record's start).</summary>
    public static string? CheckLength(uint length, long bytesLeft)
    {
        if (length < MinLength) return $"record length {length} is below the minimum {MinLength}";
        if (length > MaxRecordBytes - 4) return $"record length {length} exceeds the maximum {MaxRecordBytes - 4}";
        if (4L + length > bytesLeft) return $"record length {length} runs past the end of the file ({bytesLeft} bytes left)";
        return null;
    }

    /// <summary>Checks a whole record (header plus body) whose length was already checked; null when valid.</summary>
    public static string? CheckRecord(ReadOnlySpan<byte> record, in RecordHeader header)
    {
        if (header.KeyLength > header.Length - MinLength) return $"key length {header.KeyLength} exceeds record length {header.Length}";
        uint crc = Crc32C.Compute(record[CrcCoveredOffset..]);
        if (crc != header.Crc) return $"CRC mismatch (stored 0x{header.Crc:X8}, computed 0x{crc:X8})";
        return null;
    }

    /// <summary>Encodes <paramref name="entry"/> into <paramref name="destination"/> (exactly <see cref="LogEntry.EncodedSize"/> bytes).</summary>
    public static void Write(Span<byte> destination, in LogEntry entry)
    {
        int size = entry.EncodedSize;
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)(size - 4));
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], entry.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], entry.Epoch);
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], entry.TimestampMicros);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[32..], (ushort)(entry.Key.Length | (entry.IsTombstone ? TombstoneBit : 0)));
        entry.Key.Span.CopyTo(destination[Size..]);
        entry.Payload.Span.CopyTo(destination[(Size + entry.Key.Length)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Crc32C.Compute(destination[CrcCoveredOffset..size]));
    }

    /// <summary>Throws <see cref="ArgumentException"/> when an entry cannot be stored.</summary>
    public static void Validate(in LogEntry entry)
    {
        if (entry.Index == 0) throw new ArgumentException("Entry indexes start at 1.", nameof(entry));
        if (entry.Key.Length > LogEntry.MaxKeyLength)
            throw new ArgumentException($"Key of {entry.Key.Length} bytes exceeds {LogEntry.MaxKeyLength}.", nameof(entry));
        if ((long)Size + entry.Key.Length + entry.Payload.Length > MaxRecordBytes)
            throw new ArgumentException($"Entry {entry.Index} of {(long)Size + entry.Key.Length + entry.Payload.Length} bytes exceeds {MaxRecordBytes}.", nameof(entry));
    }
}
