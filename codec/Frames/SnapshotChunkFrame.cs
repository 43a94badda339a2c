using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace GeoRelay.Codec.Frames;

[Flags]
public enum SnapshotChunkFlags : byte
{
    None = 0,
    /// <summary>The first chunk of a snapshot: a learner drops any snapshot it was receiving and starts this one.</summary>
    Begin = 1,
    /// <summary>The last chunk: the stream goes on at <c>through + 1</c>.</summary>
    End = 2,
}

/// <summary>
/// One chunk of a snapshot of keyed state to a learner: each live key's latest entry at or below <c>through</c>, in
/// index order (the records' gaps skip what compaction removed). <c>total</c> is the snapshot's entry count (for
/// progress). The CRC-32 covers the records, so a chunk is checked whole before any entry in it is used.
/// <code>v through | u8 flags | v total | v first | v count | records | u32 crc</code>
/// </summary>
public static class SnapshotChunkFrame
{
    public const int CrcBytes = 4;

    public static void WriteHeader(IBufferWriter<byte> w, ulong through, SnapshotChunkFlags flags, ulong total, ulong first, ulong count)
    {
        PayloadWriter.Varint(w, through);
        PayloadWriter.Byte(w, (byte)flags);
        PayloadWriter.Varint(w, total);
        PayloadWriter.Varint(w, first);
        PayloadWriter.Varint(w, count);
    }

    /// <summary>Appends the CRC of <paramref name="records"/> (what was written after the header).</summary>
    public static void WriteCrc(IBufferWriter<byte> w, ReadOnlySpan<byte> records) =>
        PayloadWriter.UInt32(w, Crc32.HashToUInt32(records));

    /// <summary>Reads the header and checks the CRC; returns the records.</summary>
    public static EntriesReader Read(ReadOnlySequence<byte> payload, out ulong through, out SnapshotChunkFlags flags, out ulong total,
        out ulong first, out ulong count)
    {
        var r = new PayloadReader(payload, "SnapshotChunk");
        through = r.ReadVarint("through");
        var f = r.ReadByte("flags");
        if ((f & ~3) != 0) throw r.Corrupt("flags", $"has unknown bits 0x{f:x2}");
        flags = (SnapshotChunkFlags)f;
        total = r.ReadVarint("total");
        first = r.ReadVarint("first");
        count = r.ReadVarint("count");
        var rest = r.ReadRest();
        if (rest.Length < CrcBytes) throw new CodecException(CodecError.Corrupt, "SnapshotChunk.crc: truncated");
        var records = rest.Slice(0, rest.Length - CrcBytes);
        Span<byte> stored = stackalloc byte[CrcBytes];
        rest.Slice(rest.Length - CrcBytes).CopyTo(stored);
        var crc = new Crc32();
        foreach (var segment in records) crc.Append(segment.Span);
        uint computed = crc.GetCurrentHashAsUInt32(), expected = BinaryPrimitives.ReadUInt32LittleEndian(stored);
        if (computed != expected)
            throw new CodecException(CodecError.Corrupt, $"SnapshotChunk.crc: the records of the chunk at {first} do not match their checksum (stored 0x{expected:x8}, computed 0x{computed:x8})");
        var reader = new PayloadReader(records, "SnapshotChunk");
        EntriesReader.CheckCount(ref reader, first, count);
        if (count > 0 && first + count - 1 > through) throw reader.Corrupt("count", $"entries {first}+{count} run past the snapshot's index {through}");
        return new EntriesReader(reader, first, count);
    }
}
