using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

internal static partial class HostingLog
{
    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Catch-up {Name}: at {Done} of {Target} ({Behind} entries behind)")]
    public static partial void CatchUpStarted(ILogger logger, string name, ulong done, ulong target, ulong behind);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Catch-up {Name}: at {Done} of {Target} ({Percent:0.0}%), {Rate:0} entries/s, about {EtaSeconds:0} s to go")]
    public static partial void CatchUpProgress(ILogger logger, string name, ulong done, ulong target, double percent, double rate, double etaSeconds);

    [LoggerMessage(EventId = 502, Level = LogLevel.Information, Message = "Caught up {Name} at {Done} after {Seconds:0.0} s ({Rate:0} entries/s)")]
    public static partial void CaughtUp(ILogger logger, string name, ulong done, double seconds, double rate);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "Draining: publishes paused; waiting up to {Seconds:0.#} s for {Datacenters} connected datacenter(s) to ack through {Durable}")]
    public static partial void Draining(ILogger logger, double seconds, int datacenters, ulong durable);

    [LoggerMessage(EventId = 504, Level = LogLevel.Information, Message = "Drained: every connected datacenter acked through {Durable} (commit {Commit}) in {Seconds:0.000} s")]
    public static partial void Drained(ILogger logger, ulong durable, ulong commit, double seconds);

    [LoggerMessage(EventId = 505, Level = LogLevel.Warning, Message = "Drain timed out after {Seconds:0.#} s: {Pending} not acked through {Durable}; a restarted leader resends from its log")]
    public static partial void DrainTimedOut(ILogger logger, double seconds, string pending, ulong durable);

    [LoggerMessage(EventId = 506, Level = LogLevel.Information, Message = "Admin endpoint on http://{EndPoint} (/metrics, /healthz, /status)")]
    public static partial void AdminListening(ILogger logger, string endPoint);

    [LoggerMessage(EventId = 507, Level = LogLevel.Information, Message = "Exporting metrics over OTLP to {Endpoint} every {Seconds:0.#} s")]
    public static partial void OtlpExporting(ILogger logger, string endpoint, double seconds);

    [LoggerMessage(EventId = 508, Level = LogLevel.Information, Message = "Relay drained: members acked through {Retained}")]
    public static partial void RelayDrained(ILogger logger, ulong retained);

    [LoggerMessage(EventId = 520, Level = LogLevel.Information, Message = "Member draining: Appends no longer taken; making entries through {Last} durable and acking them, for up to {Seconds:0.#} s")]
    public static partial void MemberDraining(ILogger logger, double seconds, ulong last);

    [LoggerMessage(EventId = 521, Level = LogLevel.Information, Message = "Member drained: log ends at {Durable}, durable and acked to {Upstreams} upstream(s)")]
    public static partial void MemberDrained(ILogger logger, ulong durable, int upstreams);

    [LoggerMessage(EventId = 522, Level = LogLevel.Warning, Message = "Member drain timed out after {Seconds:0.#} s with entries through {Durable} durable; a restarted member catches up from its log")]
    public static partial void MemberDrainTimedOut(ILogger logger, double seconds, ulong durable);
}
