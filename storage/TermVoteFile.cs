using System.Buffers.Binary;
using System.Text;
using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>A voter's durable election state: the latest term it knows and whom it voted for in that term.</summary>
public readonly record struct StoredTermVote(ulong Term, string? VotedFor);

/// <summary>
/// The file <c>term-vote</c> in a node's data directory, rewritten whole on every change.
/// <code>
///  0        4        6             14           16             16+n
///  +--------+--------+-------------+------------+--------------+------------+
///  | "GRTV" | u16 v1 | u64 term    | u16 n      | votedFor     | u32 crc32c |
///  +--------+--------+-------------+------------+--------------+------------+
/// </code>
/// Little-endian; <c>n</c> = 0 means no vote; the CRC-32C covers every byte before it.
/// </summary>
/// <remarks>
/// A save replaces the file whole (<see cref="AtomicFile"/>): a crash at any point leaves either the old state or the
/// new one, never a torn mix. Any failure is a <see cref="DiskFailedException"/>; the caller stops (an election must not
/// answer on state it could not make durable).
/// </remarks>
public sealed class TermVoteFile
{
    public const string FileName = "term-vote";
    public const ushort FormatVersion = 1;
    /// <summary>Longest voted-for node id, in UTF-8 bytes (node ids on the wire are bounded the same way).</summary>
    public const int MaxVotedForBytes = 255;

    private const uint Magic = 0x56545247; // "GRTV" little-endian
    private const int HeaderSize = 16;
    private const int CrcSize = 4;
    private const int MinSize = HeaderSize + CrcSize;
    private const int MaxSize = MinSize + MaxVotedForBytes;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly bool _fsync;

    /// <param name="directory">The node's data directory; it must exist.</param>
    /// <param name="fsync">Off only for tests that do not care about power loss: then a save survives a process crash, not an OS crash.</param>
    public TermVoteFile(string directory, bool fsync = true)
    {
        _fsync = fsync;
        Path = System.IO.Path.Combine(directory, FileName);
    }

    public string Path { get; }

    /// <summary>
    /// The saved state, or (0, no vote) when the file does not exist yet. A file that is not a valid term-vote
    /// file is an <see cref="InvalidDataException"/> naming it and what is wrong: it is never guessed around, since
    /// forgetting a vote could let this node vote twice in one term.
    /// </summary>
    public StoredTermVote Load()
    {
        FileStream stream;
        try
        {
            stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (FileNotFoundException)
        {
            return new StoredTermVote(0, null);
        }
        Span<byte> buffer = stackalloc byte[MaxSize];
        int size;
        using (stream)
        {
            long length = stream.Length;
            if (length > MaxSize) throw Invalid($"is {length} bytes; a term-vote file is at most {MaxSize}");
            if (length < MinSize) throw Invalid($"is {length} bytes, shorter than the {MinSize} of an empty term-vote file (truncated)");
            size = (int)length;
            stream.ReadExactly(buffer[..size]);
        }
        var bytes = buffer[..size];
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        if (magic != Magic) throw Invalid($"does not start with the magic bytes \"GRTV\" (found 0x{magic:x8})");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != FormatVersion) throw Invalid($"has format version {version}; this build reads version {FormatVersion} only");
        ulong term = BinaryPrimitives.ReadUInt64LittleEndian(bytes[6..]);
        int voteLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes[14..]);
        if (voteLength > MaxVotedForBytes) throw Invalid($"declares a voted-for id of {voteLength} bytes, over the maximum of {MaxVotedForBytes}");
        if (size != MinSize + voteLength)
            throw Invalid($"is {size} bytes but its voted-for length of {voteLength} makes {MinSize + voteLength} (truncated or extended)");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(HeaderSize + voteLength)..]);
        uint actual = Crc32C.Compute(bytes[..(HeaderSize + voteLength)]);
        if (stored != actual) throw Invalid($"fails its checksum (stored 0x{stored:x8}, computed 0x{actual:x8})");
        string? votedFor = null;
        if (voteLength > 0)
        {
            try
            {
                votedFor = StrictUtf8.GetString(bytes.Slice(HeaderSize, voteLength));
            }
            catch (DecoderFallbackException)
            {
                throw Invalid("holds a voted-for id that is not UTF-8");
            }
        }
        return new StoredTermVote(term, votedFor);
    }

    /// <summary>Replaces the saved state; returns once it is durable (fsynced file and directory).</summary>
    public void Save(ulong term, string? votedFor)
    {
        Span<byte> buffer = stackalloc byte[MaxSize];
        int voteLength = 0;
        if (votedFor is not null)
        {
            if (votedFor.Length == 0) throw new ArgumentException("a vote names a node; use null for no vote", nameof(votedFor));
            if (StrictUtf8.GetByteCount(votedFor) > MaxVotedForBytes)
                throw new ArgumentException($"voted-for id '{votedFor}' is over {MaxVotedForBytes} UTF-8 bytes", nameof(votedFor));
            voteLength = StrictUtf8.GetBytes(votedFor, buffer[HeaderSize..]);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[4..], FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[6..], term);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[14..], (ushort)voteLength);
        int crcAt = HeaderSize + voteLength;
        BinaryPrimitives.WriteUInt32LittleEndian(buffer[crcAt..], Crc32C.Compute(buffer[..crcAt]));
        AtomicFile.Replace(Path, buffer[..(crcAt + CrcSize)].ToArray(), _fsync);
    }

    private InvalidDataException Invalid(string what) => new($"term-vote file '{Path}' {what}");
}
