using System.Buffers.Binary;
using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// The file <c>keyed-state</c>: a <see cref="KeyedLog"/>'s folded state, replaced whole (<see cref="AtomicFile"/>) at each persist.
/// <code>
///  header:  u32 magic "GRKS" | u16 version 1 | u8 flags (bit 0: complete) | u64 through | u64 count
///  entry:   u64 index | u64 epoch | i64 timestampMicros | u8 entryFlags | u16 keyLength | u32 payloadLength | key | payload
///  trailer: u32 crc32c of every byte before it
/// </code>
/// Little-endian; entries by strictly ascending index, one per key (tombstones included).
/// </summary>
internal static class KeyedStateFile
{
    public const string FileName = "keyed-state";
    public const ushort FormatVersion = 1;

    private const uint Magic = 0x534B5247; // "GRKS" little-endian
    private const byte CompleteFlag = 1;
    private const int HeaderSize = 4 + 2 + 1 + 8 + 8;
    private const int EntryHeaderSize = 8 + 8 + 8 + 1 + 2 + 4;
    private const int CrcSize = 4;
    private const int BufferBytes = 64 * 1024;

    /// <summary>What a state file holds; <see cref="Entries"/> own their memory (one array per entry).</summary>
    public readonly record struct Contents(ulong Through, bool Complete, List<LogEntry> Entries);

    /// <summary>Replaces the file at <paramref name="path"/>; <paramref name="entries"/> must be by ascending index.</summary>
    /// <exception cref="DiskFailedException">The disk failed; the old file stays.</exception>
    public static void Write(string path, ulong through, bool complete, IReadOnlyList<LogEntry> entries, bool fsync)
    {
        AtomicFile.Replace(path, stream =>
        {
            // Not disposed: that would close the file AtomicFile still has to fsync.
            var buffered = new BufferedStream(stream, BufferBytes);
            uint crc = ~0u;
            Span<byte> header = stackalloc byte[Math.Max(HeaderSize, EntryHeaderSize)];
            BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
            BinaryPrimitives.WriteUInt16LittleEndian(header[4..], FormatVersion);
            header[6] = complete ? CompleteFlag : (byte)0;
            BinaryPrimitives.WriteUInt64LittleEndian(header[7..], through);
            BinaryPrimitives.WriteUInt64LittleEndian(header[15..], (ulong)entries.Count);
            Put(buffered, header[..HeaderSize], ref crc);
            for (int i = 0; i < entries.Count; i++)
            {
                LogEntry entry = entries[i];
                BinaryPrimitives.WriteUInt64LittleEndian(header, entry.Index);
                BinaryPrimitives.WriteUInt64LittleEndian(header[8..], entry.Epoch);
                BinaryPrimitives.WriteInt64LittleEndian(header[16..], entry.TimestampMicros);
                header[24] = (byte)entry.Flags;
                BinaryPrimitives.WriteUInt16LittleEndian(header[25..], checked((ushort)entry.Key.Length));
                BinaryPrimitives.WriteUInt32LittleEndian(header[27..], (uint)entry.Payload.Length);
                Put(buffered, header[..EntryHeaderSize], ref crc);
                Put(buffered, entry.Key.Span, ref crc);
                Put(buffered, entry.Payload.Span, ref crc);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(header, ~crc);
            buffered.Write(header[..CrcSize]);
            buffered.Flush();
        }, fsync);
    }

    private static void Put(Stream stream, ReadOnlySpan<byte> bytes, ref uint crc)
    {
        crc = Crc32C.Update(crc, bytes);
        stream.Write(bytes);
    }

    /// <summary>The file's contents, or null when it does not exist.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid keyed-state file this build reads; names it and what is wrong where.</exception>
    public static Contents? Read(string path)
    {
        if (AtomicFile.OpenIfExists(path) is not { } file) return null;
        using (file)
        {
            long length = file.Length;
            if (length < HeaderSize + CrcSize)
                throw Invalid(path, $"is {length} bytes, shorter than the {HeaderSize + CrcSize} of an empty keyed-state file (truncated)");
            var stream = new BufferedStream(file, BufferBytes);
            Span<byte> header = stackalloc byte[Math.Max(HeaderSize, EntryHeaderSize)];

            // Magic and version first, so a newer file is refused as such rather than as a bad checksum.
            stream.ReadExactly(header[..6]);
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (magic != Magic) throw Invalid(path, $"does not start with the magic bytes \"GRKS\" (found 0x{magic:x8})");
            ushort version = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
            if (version > FormatVersion)
                throw new InvalidDataException($"'{path}' is keyed-state format version {version}, newer than version {FormatVersion} this build reads");
            if (version != FormatVersion) throw Invalid(path, $"has format version {version}; this build reads version {FormatVersion}");

            // The whole checksum before any field is trusted: a flipped bit is reported as such, not as whatever field it hit.
            CheckCrc(path, stream, length);
            stream.Seek(0, SeekOrigin.Begin);
            stream.ReadExactly(header[..HeaderSize]);
            bool complete = (header[6] & CompleteFlag) != 0;
            ulong through = BinaryPrimitives.ReadUInt64LittleEndian(header[7..]);
            ulong count = BinaryPrimitives.ReadUInt64LittleEndian(header[15..]);
            long end = length - CrcSize;
            long position = HeaderSize;
            if (count > (ulong)((end - position) / EntryHeaderSize))
                throw Invalid(path, $"declares {count} entries at offset 15, more than the {end - position} bytes after the header can hold");

            var entries = new List<LogEntry>((int)Math.Min(count, 1 << 20));
            var keys = new HashSet<ReadOnlyMemory<byte>>(KeyComparer.Instance);
            ulong previous = 0;
            for (ulong i = 0; i < count; i++)
            {
                if (end - position < EntryHeaderSize)
                    throw Invalid(path, $"ends inside entry {i} at offset {position} ({end - position} bytes left before the checksum)");
                stream.ReadExactly(header[..EntryHeaderSize]);
                ulong index = BinaryPrimitives.ReadUInt64LittleEndian(header);
                ulong epoch = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
                long timestamp = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
                var flags = (EntryFlags)header[24];
                int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(header[25..]);
                uint payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(header[27..]);
                long entryAt = position;
                position += EntryHeaderSize;
                if (index <= previous)
                    throw Invalid(path, $"has entry index {index} at offset {entryAt} after index {previous} (indexes must ascend strictly)");
                if (index > through)
                    throw Invalid(path, $"has entry index {index} at offset {entryAt}, past the state's through index {through}");
                if ((ulong)keyLength + payloadLength > (ulong)(end - position))
                    throw Invalid(path, $"declares key length {keyLength} and payload length {payloadLength} at offset {entryAt}, more than the {end - position} bytes left");
                var data = new byte[keyLength + (int)payloadLength];
                stream.ReadExactly(data);
                position += data.Length;
                var entry = new LogEntry(index, epoch, timestamp, data.AsMemory(0, keyLength), data.AsMemory(keyLength), flags);
                if (!keys.Add(entry.Key)) throw Invalid(path, $"holds the key of entry {index} (offset {entryAt}) twice");
                entries.Add(entry);
                previous = index;
            }
            if (position != end)
                throw Invalid(path, $"has {end - position} bytes after its last entry (offset {position}) before the checksum");
            return new Contents(through, complete, entries);
        }
    }

    private static void CheckCrc(string path, Stream stream, long length)
    {
        byte[] buffer = new byte[BufferBytes];
        uint crc = ~0u;
        stream.Seek(0, SeekOrigin.Begin);
        long left = length - CrcSize;
        while (left > 0)
        {
            int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw Invalid(path, $"ended early while being read ({left} bytes missing)");
            crc = Crc32C.Update(crc, buffer.AsSpan(0, read));
            left -= read;
        }
        Span<byte> trailer = stackalloc byte[CrcSize];
        stream.ReadExactly(trailer);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        uint actual = ~crc;
        if (stored != actual)
            throw Invalid(path, $"fails its checksum at offset {length - CrcSize} (stored 0x{stored:x8}, computed 0x{actual:x8}): corrupt or truncated");
    }

    private static InvalidDataException Invalid(string path, string what) => new($"keyed-state file '{path}' {what}");
}
