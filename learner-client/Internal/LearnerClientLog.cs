using GeoRelay.Codec;
using Microsoft.Extensions.Logging;

namespace GeoRelay.LearnerClient.Internal;

internal static partial class LearnerClientLog
{
    [LoggerMessage(EventId = 800, Level = LogLevel.Information, Message = "Subscribed at {Endpoint} from index {From}")]
    public static partial void Subscribed(ILogger logger, string endpoint, ulong from);

    [LoggerMessage(EventId = 801, Level = LogLevel.Warning, Message = "Could not connect to {Endpoint}: {Message}")]
    public static partial void ConnectFailed(ILogger logger, string endpoint, string message);

    [LoggerMessage(EventId = 802, Level = LogLevel.Warning, Message = "Disconnected from {Endpoint}: {Message}; resuming from {Next}")]
    public static partial void Disconnected(ILogger logger, string endpoint, string message, ulong next);

    [LoggerMessage(EventId = 803, Level = LogLevel.Warning, Message = "{Endpoint} closed the subscription: {Reason}: {Message}; resuming from {Next}")]
    public static partial void ClosedByRelay(ILogger logger, string endpoint, CodecError reason, string message, ulong next);

    [LoggerMessage(EventId = 804, Level = LogLevel.Warning, Message = "{Endpoint} no longer holds index {Next} (oldest {Oldest}); trying the other endpoints")]
    public static partial void SnapshotRequired(ILogger logger, string endpoint, ulong next, ulong oldest);

    [LoggerMessage(EventId = 806, Level = LogLevel.Warning, Message = "{Endpoint} took back the entries it sent above {After} (a leader change rewrote them); the stream goes on from {After} + 1, it was at {Next}")]
    public static partial void Truncated(ILogger logger, string endpoint, ulong after, ulong next);

    [LoggerMessage(EventId = 807, Level = LogLevel.Information, Message = "{Endpoint} named {Next}; trying it next")]
    public static partial void Redirected(ILogger logger, string endpoint, string next);

    [LoggerMessage(EventId = 805, Level = LogLevel.Warning, Message = "No endpoint reachable; retrying in {Delay}")]
    public static partial void Backoff(ILogger logger, TimeSpan delay);

    [LoggerMessage(EventId = 808, Level = LogLevel.Information, Message = "Restored the state machine from checkpoint {Path} at index {Index}")]
    public static partial void CheckpointRestored(ILogger logger, string path, ulong index);

    [LoggerMessage(EventId = 809, Level = LogLevel.Debug, Message = "Wrote checkpoint {Path} at index {Index}")]
    public static partial void CheckpointWritten(ILogger logger, string path, ulong index);

    [LoggerMessage(EventId = 810, Level = LogLevel.Information, Message = "Received the snapshot of keyed state at index {Through} from {Endpoint}; the stream goes on after it")]
    public static partial void SnapshotReceived(ILogger logger, string endpoint, ulong through);
}
