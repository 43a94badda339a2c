using System.Diagnostics.Metrics;
using GeoRelay.Codec;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Relay.Learners;

internal static partial class LearnerLog
{
    [LoggerMessage(EventId = 700, Level = LogLevel.Debug, Message = "Learner {Node} (connection {Connection}) subscribed from {From} with prefix '{Prefix}'")]
    public static partial void Subscribed(ILogger logger, string node, int connection, ulong from, string prefix);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Learner {Node} (connection {Connection}) cut as a slow consumer: {Queued} bytes queued, bound {Bound}")]
    public static partial void SlowConsumer(ILogger logger, string node, int connection, long queued, long bound);

    [LoggerMessage(EventId = 702, Level = LogLevel.Information, Message = "Learner {Node} (connection {Connection}) asked for {Next}, retention starts at {Oldest}: SnapshotRequired")]
    public static partial void SnapshotRequired(ILogger logger, string node, int connection, ulong next, ulong oldest);

    [LoggerMessage(EventId = 704, Level = LogLevel.Warning, Message = "Learner {Node} (connection {Connection}) was sent entries through {Sent} that this node no longer holds: told Truncated after {After}")]
    public static partial void Truncated(ILogger logger, string node, int connection, ulong sent, ulong after);

    [LoggerMessage(EventId = 705, Level = LogLevel.Information, Message = "Learner {Node} (connection {Connection}): {What} the snapshot of keyed state at {Through} ({Entries} entries)")]
    public static partial void SnapshotStarted(ILogger logger, string node, int connection, string what, ulong through, int entries);

    [LoggerMessage(EventId = 703, Level = LogLevel.Warning, Message = "Learner {Node} (connection {Connection}) closed: {Reason}: {Message}")]
    public static partial void ProtocolError(ILogger logger, string node, int connection, CodecError reason, string message);
}

/// <summary>Learner fan-out counters (System.Diagnostics.Metrics), shared by every fan-out in the process.</summary>
internal static class LearnerMetrics
{
    public static readonly Meter Meter = new("GeoRelay.Relay.Learners");
    public static readonly Counter<long> SlowConsumerCuts = Meter.CreateCounter<long>("georelay.learners.slow_consumer_cuts", description: "Learners disconnected because their send backlog passed the bound");
    public static readonly Counter<long> FramesEncoded = Meter.CreateCounter<long>("georelay.learners.frames_encoded", description: "Deliver frames encoded");
    public static readonly Counter<long> FramesSent = Meter.CreateCounter<long>("georelay.learners.frames_sent", description: "Deliver frames queued to learner connections");
    public static readonly Counter<long> Refills = Meter.CreateCounter<long>("georelay.learners.refills", description: "Deliver frames a member sent for learners below this node's retention");
    public static readonly Counter<long> Truncations = Meter.CreateCounter<long>("georelay.learners.truncations", description: "Learners told that entries they were sent were taken back (delivery: durable)");
    public static readonly Counter<long> SnapshotsSent = Meter.CreateCounter<long>("georelay.learners.snapshots_sent", description: "Snapshots of keyed state sent to learners in full");
    public static readonly Counter<long> SnapshotChunks = Meter.CreateCounter<long>("georelay.learners.snapshot_chunks", description: "SnapshotChunk frames sent to learners");
    public static readonly Counter<long> SnapshotsRequired = Meter.CreateCounter<long>("georelay.learners.snapshot_required", description: "Learners told the index they asked for is no longer retained");
}
