using System.Buffers.Binary;

namespace GeoRelay.Storage.Internal;

/// <summary>
/// The header a segment file begins with from format version 2 on, little-endian:
/// <code>
///  0        4        6        8                  16
///  +--------+--------+--------+------------------+---------+
///  | "GRSG" | u16 v2 | u16 0  | u64 base index   | records |
///  +--------+--------+--------+------------------+---------+
/// </code>
/// Version 1 is the headerless format: records from offset 0. The magic read as a record length is about
/// 1.2e9, over the 64 MiB record limit, so no version-1 file can start with it. The base index repeats the
/// file name, so a file renamed or copied under the wrong name is refused instead of misnumbered.
/// </summary>
internal static class SegmentHeader
{
    public const int Size = 16;
    public const ushort FormatVersion = 2;
    public const ushort HeaderlessVersion = 1;

    private const uint Magic = 0x47535247; // "GRSG" little-endian
    private const int VersionOffset = 4;
    private const int BaseIndexOffset = 8;

    public static void Write(Span<byte> destination, ulong baseIndex)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[VersionOffset..], FormatVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[(VersionOffset + 2)..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[BaseIndexOffset..], baseIndex);
    }

    /// <summary>
    /// Where the records of the segment file <paramref name="path"/> start, judged from its first bytes
    /// (<paramref name="first"/>, shorter than <see cref="Size"/> only when the file is): 0 for version 1,
    /// <see cref="Size"/> for version 2, or -1 when the file is too short to hold a header or a record (a torn
    /// header, or a torn first record of version 1: either way it holds no entry).
    /// </summary>
    /// <exception cref="InvalidDataException">A newer format than this build reads, or a header that is not valid; names the file.</exception>
    public static long RecordsStart(ReadOnlySpan<byte> first, string path, ulong baseIndex)
    {
        if (first.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(first) == Magic)
        {
            // Checked before the length: a newer format is refused even if its header were shorter.
            if (first.Length >= VersionOffset + 2)
            {
                ushort version = BinaryPrimitives.ReadUInt16LittleEndian(first[VersionOffset..]);
                if (version > FormatVersion)
                    throw new InvalidDataException($"Segment '{path}' has format version {version}; this build reads versions {HeaderlessVersion} to {FormatVersion}: upgrade GeoRelay to open it.");
                if (version < FormatVersion)
                    throw new InvalidDataException($"Segment '{path}' has a header with format version {version}; headers start at version {FormatVersion} (corrupt header).");
            }
            if (first.Length < Size) return -1;
            ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(first[BaseIndexOffset..]);
            if (stored != baseIndex)
                throw new InvalidDataException($"Segment '{path}' has base index {stored} in its header but {baseIndex} in its name.");
            return Size;
        }
        return first.Length < Size ? -1 : 0;
    }
}
