using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;

namespace GeoRelay.Relay;

internal static class EntryViews
{
    /// <summary>A received entry as the log stores it (the log copies key and payload on append).</summary>
    public static LogEntry ToLogEntry(this in EntryView e) =>
        new(e.Index, e.Epoch, e.TimestampMicros, e.Key.AsContiguous(), e.Payload.AsContiguous(), e.IsTombstone ? EntryFlags.Tombstone : EntryFlags.None);
}
