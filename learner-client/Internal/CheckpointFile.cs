using System.Buffers;
using System.Buffers.Binary;
using GeoRelay.Storage;
using GeoRelay.Storage.Internal;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// The file <c>checkpoint</c> in a state machine's checkpoint directory: the applied index and the state machine's snapshot.
/// <code>
///  0        4        6         8             16                24           28              28+n
///  +--------+--------+---------+-------------+-----------------+------------+---------------+------------+
///  | "GRCP" | u16 v1 | u16 0   | u64 applied | u64 n           | u32 crc32c | snapshot (n)  | u32 crc32c |
///  +--------+--------+---------+-------------+-----------------+------------+---------------+------------+
/// </code>
/// Little-endian. The first CRC-32C covers the 24 header bytes before it, the last one the snapshot's n bytes: the
/// header is written last (the snapshot's length is known only once it is written), so each part has its own.
/// </summary>
/// <remarks>
/// Replaced whole (<see cref="AtomicFile"/>): a crash leaves the old checkpoint or the new one, and a leftover
/// <c>checkpoint.tmp</c> is never read. Anything that is not a valid checkpoint is an <see cref="InvalidDataException"/>
/// naming the file and what is wrong: resuming from a guess could apply an entry twice or skip one.
/// </remarks>
internal static class CheckpointFile
{
    public const string FileName = "checkpoint";
    public const ushort FormatVersion = 1;
    public const int HeaderSize = 28;
    public const int TrailerSize = 4;

    private const uint Magic = 0x50435247; // "GRCP" little-endian
    private const int HeaderCrcAt = 24;

    public static string PathIn(string directory) => Path.Combine(directory, FileName);

    /// <summary>
    /// Replaces the checkpoint at <paramref name="path"/> with <paramref name="appliedIndex"/> and the snapshot
    /// <paramref name="writeSnapshot"/> writes (the state machine's <see cref="IStateMachine.WriteSnapshot"/>); returns
    /// once it is durable (with <paramref name="fsync"/>, which only tests turn off).
    /// </summary>
    public static void Write(string path, ulong appliedIndex, Action<Stream> writeSnapshot, bool fsync = true)
    {
        AtomicFile.Replace(path, file =>
        {
            // Snapshots are often written a few bytes at a time (BinaryWriter); the file itself is unbuffered.
            var buffered = new BufferedStream(file, 1 << 16);
            buffered.Write(new byte[HeaderSize]); // room for the header, written once the snapshot's length is known
            var body = new ChecksummingWriteStream(buffered);
            writeSnapshot(body);
            Span<byte> bytes = stackalloc byte[HeaderSize];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, body.Checksum);
            buffered.Write(bytes[..TrailerSize]);
            buffered.Flush();
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes[4..], FormatVersion);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes[6..], 0);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], appliedIndex);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes[16..], (ulong)body.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes[HeaderCrcAt..], Crc32C.Compute(bytes[..HeaderCrcAt]));
            file.Position = 0;
            file.Write(bytes);
        }, fsync);
    }

    /// <summary>
    /// Checks the checkpoint at <paramref name="path"/> whole, then hands its snapshot to <paramref name="readSnapshot"/>
    /// (a stream that ends where the snapshot ends) and returns its applied index; null when there is no checkpoint yet.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint this build reads: its message names the file and why.</exception>
    public static ulong? Read(string path, Action<Stream> readSnapshot)
    {
        if (AtomicFile.OpenIfExists(path) is not { } file) return null;
        using (file)
        {
            long length = file.Length;
            if (length < HeaderSize + TrailerSize)
                throw Invalid(path, $"is {length} bytes, shorter than the {HeaderSize + TrailerSize} of an empty checkpoint (truncated)");
            Span<byte> header = stackalloc byte[HeaderSize];
            file.ReadExactly(header);
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (magic != Magic) throw Invalid(path, $"does not start with the magic bytes \"GRCP\" (found 0x{magic:x8})");
            ushort version = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
            if (version > FormatVersion)
                throw Invalid(path, $"has format version {version}, newer than version {FormatVersion}, the only one this build reads (written by a newer GeoRelay.LearnerClient?)");
            if (version != FormatVersion) throw Invalid(path, $"has format version {version}; this build reads version {FormatVersion} only");
            uint storedHeaderCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[HeaderCrcAt..]);
            uint headerCrc = Crc32C.Compute(header[..HeaderCrcAt]);
            if (storedHeaderCrc != headerCrc)
                throw Invalid(path, $"has a header that fails its checksum (stored 0x{storedHeaderCrc:x8}, computed 0x{headerCrc:x8})");
            ulong applied = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
            ulong snapshotLength = BinaryPrimitives.ReadUInt64LittleEndian(header[16..]);
            ulong expected = HeaderSize + snapshotLength + TrailerSize;
            if ((ulong)length != expected)
                throw Invalid(path, $"is {length} bytes but its header says {expected} (a snapshot of {snapshotLength} bytes): {((ulong)length < expected ? "truncated" : "extended")}");
            uint computed = BodyChecksum(file, (long)snapshotLength, out uint stored);
            if (stored != computed) throw Invalid(path, $"has a snapshot that fails its checksum (stored 0x{stored:x8}, computed 0x{computed:x8})");
            file.Position = HeaderSize;
            readSnapshot(new BoundedReadStream(file, (long)snapshotLength));
            return applied;
        }
    }

    /// <summary>The CRC-32C of the <paramref name="length"/> bytes after the header, and the one stored after them.</summary>
    private static uint BodyChecksum(FileStream file, long length, out uint stored)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            uint state = ~0u;
            for (long left = length; left > 0;)
            {
                int chunk = (int)Math.Min(left, buffer.Length);
                file.ReadExactly(buffer, 0, chunk);
                state = Crc32C.Update(state, buffer.AsSpan(0, chunk));
                left -= chunk;
            }
            file.ReadExactly(buffer, 0, TrailerSize);
            stored = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            return ~state;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static InvalidDataException Invalid(string path, string what) => new($"checkpoint file '{path}' {what}");
}
