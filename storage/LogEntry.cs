using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// One log entry. <see cref="Key"/> and <see cref="Payload"/> returned by a log are never overwritten
/// afterwards, so a reader may keep them; entries passed to <see cref="IEntryLog.Append"/> are copied.
/// </summary>
public readonly record struct LogEntry(ulong Index, ulong Epoch, long TimestampMicros, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload)
{
    /// <summary>Largest key accepted by <see cref="IEntryLog.Append"/> (the on-disk key length is a u16).</summary>
    public const int MaxKeyLength = ushort.MaxValue;

    /// <summary>Largest <see cref="EncodedSize"/> accepted by <see cref="IEntryLog.Append"/>: 64 MiB.</summary>
    public const int MaxEncodedSize = RecordHeader.MaxRecordBytes;

    /// <summary>Bytes this entry takes on disk, header included; what read and cache budgets count.</summary>
    public int EncodedSize => RecordHeader.Size + Key.Length + Payload.Length;
}
