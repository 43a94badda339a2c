using System.Buffers.Binary;
using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// One configuration (membership) a node knows: the log index and epoch of the entry that made it (index 0: the
/// topology file the cluster started from), whether it is known committed, and its encoding.
/// </summary>
public sealed record StoredConfiguration(ulong Index, ulong Epoch, bool Committed, byte[] Membership);

/// <summary>
/// The file <c>membership</c> in a voter's data directory: the newest committed configuration, and every configuration
/// entry its log holds above it, rewritten whole on every change (they are rare). Retention may drop the log segment
/// that held the committed one; this file keeps it.
/// <code>
/// u32 "GRCF" | u16 version 1 | u32 count | count * (u64 index | u64 epoch | u8 committed | u32 length | membership) | u32 crc32c
/// </code>
/// Little-endian; the CRC-32C covers every byte before it.
/// </summary>
public sealed class MembershipFile(string directory, bool fsync = true)
{
    public const string FileName = "membership";
    public const ushort FormatVersion = 1;
    /// <summary>A configuration's encoding is at most this long (the Configuration frame's bound).</summary>
    public const int MaxMembershipBytes = 1 << 20;
    public const int MaxConfigurations = 64;

    private const uint Magic = 0x46435247; // "GRCF" little-endian
    private const int HeaderSize = 10;
    private const int RecordHeader = 21;

    public string Path { get; } = System.IO.Path.Combine(directory, FileName);

    /// <summary>The saved configurations, oldest first; empty when the file does not exist (a node that never saw one).</summary>
    /// <exception cref="InvalidDataException">The file is not a valid membership file; the message names it and what is wrong.</exception>
    public IReadOnlyList<StoredConfiguration> Load()
    {
        using var stream = AtomicFile.OpenIfExists(Path);
        if (stream is null) return [];
        long length = stream.Length;
        long max = HeaderSize + 4 + (long)MaxConfigurations * (RecordHeader + MaxMembershipBytes);
        if (length > max) throw Invalid($"is {length} bytes, over the {max} a membership file can be");
        if (length < HeaderSize + 4) throw Invalid($"is {length} bytes, shorter than an empty membership file (truncated)");
        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        var span = bytes.AsSpan();
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(span);
        if (magic != Magic) throw Invalid($"does not start with the magic bytes \"GRCF\" (found 0x{magic:x8})");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
        if (version != FormatVersion) throw Invalid($"has format version {version}; this build reads version {FormatVersion} only");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(span[^4..]);
        uint actual = Crc32C.Compute(span[..^4]);
        if (stored != actual) throw Invalid($"fails its checksum (stored 0x{stored:x8}, computed 0x{actual:x8})");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(span[6..]);
        if (count > MaxConfigurations) throw Invalid($"declares {count} configurations, over the maximum of {MaxConfigurations}");
        var list = new List<StoredConfiguration>((int)count);
        int at = HeaderSize;
        for (int i = 0; i < count; i++)
        {
            if (span.Length - 4 - at < RecordHeader) throw Invalid($"ends inside configuration {i}'s header at byte {at}");
            ulong index = BinaryPrimitives.ReadUInt64LittleEndian(span[at..]);
            ulong epoch = BinaryPrimitives.ReadUInt64LittleEndian(span[(at + 8)..]);
            byte committed = span[at + 16];
            if (committed > 1) throw Invalid($"has committed flag {committed} at byte {at + 16}");
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(span[(at + 17)..]);
            at += RecordHeader;
            if (size > MaxMembershipBytes || size > span.Length - 4 - at)
                throw Invalid($"declares configuration {i} of {size} bytes at byte {at - 4}, more than {(size > MaxMembershipBytes ? $"the maximum of {MaxMembershipBytes}" : "the file holds")}");
            list.Add(new StoredConfiguration(index, epoch, committed == 1, span.Slice(at, (int)size).ToArray()));
            at += (int)size;
        }
        if (at != span.Length - 4) throw Invalid($"has {span.Length - 4 - at} bytes after its last configuration");
        return list;
    }

    /// <summary>Replaces the saved configurations; returns once durable.</summary>
    public void Save(IReadOnlyList<StoredConfiguration> configurations)
    {
        if (configurations.Count > MaxConfigurations) throw new ArgumentException($"{configurations.Count} configurations, over the maximum of {MaxConfigurations}", nameof(configurations));
        int total = HeaderSize + 4;
        foreach (var c in configurations)
        {
            if (c.Membership.Length > MaxMembershipBytes) throw new ArgumentException($"configuration {c.Index} is {c.Membership.Length} bytes, over {MaxMembershipBytes}", nameof(configurations));
            total += RecordHeader + c.Membership.Length;
        }
        var bytes = new byte[total];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[6..], (uint)configurations.Count);
        int at = HeaderSize;
        foreach (var c in configurations)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span[at..], c.Index);
            BinaryPrimitives.WriteUInt64LittleEndian(span[(at + 8)..], c.Epoch);
            span[at + 16] = c.Committed ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 17)..], (uint)c.Membership.Length);
            at += RecordHeader;
            c.Membership.CopyTo(span[at..]);
            at += c.Membership.Length;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], Crc32C.Compute(span[..at]));
        AtomicFile.Replace(Path, bytes, fsync);
    }

    private InvalidDataException Invalid(string what) => new($"membership file '{Path}' {what}");
}
