using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;

namespace GeoRelay.Engines;

public static class EntryViews
{
    /// <summary>A received entry as the log stores it (the log copies key and payload on append).</summary>
    public static LogEntry ToLogEntry(this in EntryView e) =>
        new(e.Index, e.Epoch, e.TimestampMicros, e.Key.AsContiguous(), e.Payload.AsContiguous(), Flags(e));

    /// <summary>A received entry that owns its key and payload (one array), to keep after the frame's buffer is reused.</summary>
    public static LogEntry ToOwnedLogEntry(this in EntryView e)
    {
        int keyLength = (int)e.Key.Length;
        var data = new byte[keyLength + e.Payload.Length];
        e.Key.CopyTo(data);
        e.Payload.CopyTo(data.AsSpan(keyLength));
        return new LogEntry(e.Index, e.Epoch, e.TimestampMicros, data.AsMemory(0, keyLength), data.AsMemory(keyLength), Flags(e));
    }

    private static EntryFlags Flags(in EntryView e) => e.IsTombstone ? EntryFlags.Tombstone : EntryFlags.None;
}
