using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// One log entry. <see cref="Key"/> and <see cref="Payload"/> returned by a log stay valid until about the log's
/// cache budget of newer entries was appended (the cache then reuses its memory): the engine's own thread uses or
/// copies them at once; a reader on another thread must copy before that, or use a log that keeps read memory
/// (<see cref="KeyedLog"/> arranges it for its fold). Entries passed to <see cref="IEntryLog.Append"/> are copied.
/// </summary>
public readonly record struct LogEntry(ulong Index, ulong Epoch, long TimestampMicros, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload,
    EntryFlags Flags = EntryFlags.None)
{
    /// <summary>Largest key accepted by <see cref="IEntryLog.Append"/> (the on-disk key length is the low 15 bits of a u16).</summary>
    public const int MaxKeyLength = short.MaxValue;

    /// <summary>The entry deletes its key (keyed compaction drops the key, and later the tombstone itself).</summary>
    public bool IsTombstone => (Flags & EntryFlags.Tombstone) != 0;

    /// <summary>Largest <see cref="EncodedSize"/> accepted by <see cref="IEntryLog.Append"/>: 64 MiB.</summary>
    public const int MaxEncodedSize = RecordHeader.MaxRecordBytes;

    /// <summary>Bytes this entry takes on disk, header included; what read and cache budgets count.</summary>
    public int EncodedSize => RecordHeader.Size + Key.Length + Payload.Length;
}

/// <summary>Per-entry flags, carried on the wire and on disk.</summary>
[Flags]
public enum EntryFlags : byte
{
    None = 0,
    /// <summary>Deletes the entry's key: a flag, not an empty payload, so an empty value stays a value.</summary>
    Tombstone = 1,
}
