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

    [LoggerMessage(EventId = 506, Level = LogLevel.Information, Message = "Admin endpoint on {Scheme}://{EndPoint} (/metrics, /healthz, /status, /learners, /blacklist); {Access}")]
    public static partial void AdminListening(ILogger logger, string scheme, string endPoint, string access);

    [LoggerMessage(EventId = 509, Level = LogLevel.Warning, Message = "Admin request {Method} {Path} from {Remote} refused with {Status}: {Message}")]
    public static partial void AdminRefused(ILogger logger, string remote, string method, string path, int status, string message);

    [LoggerMessage(EventId = 510, Level = LogLevel.Warning, Message = "Admin endpoint {EndPoint} is not loopback and is open (insecure: true, no auth section): anyone who can reach it can read this node's status and cut its learners")]
    public static partial void AdminOpenBeyondLoopback(ILogger logger, string endPoint);

    [LoggerMessage(EventId = 511, Level = LogLevel.Information, Message = "Admin: disconnecting learner connection {Connection} ({Learner} at {Remote})")]
    public static partial void AdminDisconnect(ILogger logger, int connection, string learner, string remote);

    [LoggerMessage(EventId = 512, Level = LogLevel.Information, Message = "Admin: blacklisted {Entry}; cut {Cut} connection(s) from it")]
    public static partial void Blacklisted(ILogger logger, string entry, int cut);

    [LoggerMessage(EventId = 513, Level = LogLevel.Information, Message = "Admin: removed {Range} from the blacklist")]
    public static partial void Unblacklisted(ILogger logger, string range);

    [LoggerMessage(EventId = 507, Level = LogLevel.Information, Message = "Exporting metrics over OTLP to {Endpoint} every {Seconds:0.#} s")]
    public static partial void OtlpExporting(ILogger logger, string endpoint, double seconds);

    [LoggerMessage(EventId = 515, Level = LogLevel.Warning, Message = "Admin: leadership transfer from {From} to {To} requested in term {Term}")]
    public static partial void TransferRequested(ILogger logger, string from, string to, ulong term);

    [LoggerMessage(EventId = 516, Level = LogLevel.Warning, Message = "Admin: {Node} appended configuration entry {Index} in term {Term}: {Membership}")]
    public static partial void MembershipProposed(ILogger logger, string node, ulong index, ulong term, string membership);

    [LoggerMessage(EventId = 514, Level = LogLevel.Information, Message = "Stopping: {Node} hands leadership to {Target} first")]
    public static partial void VoterHandingOver(ILogger logger, string node, string target);

    [LoggerMessage(EventId = 508, Level = LogLevel.Information, Message = "Relay drained: members acked through {Retained}")]
    public static partial void RelayDrained(ILogger logger, ulong retained);

    [LoggerMessage(EventId = 520, Level = LogLevel.Information, Message = "Member draining: Appends no longer taken; making entries through {Last} durable and acking them, for up to {Seconds:0.#} s")]
    public static partial void MemberDraining(ILogger logger, double seconds, ulong last);

    [LoggerMessage(EventId = 521, Level = LogLevel.Information, Message = "Member drained: log ends at {Durable}, durable and acked to {Upstreams} upstream(s)")]
    public static partial void MemberDrained(ILogger logger, ulong durable, int upstreams);

    [LoggerMessage(EventId = 522, Level = LogLevel.Warning, Message = "Member drain timed out after {Seconds:0.#} s with entries through {Durable} durable; a restarted member catches up from its log")]
    public static partial void MemberDrainTimedOut(ILogger logger, double seconds, ulong durable);

    [LoggerMessage(EventId = 530, Level = LogLevel.Warning, Message = "{File} differs from the configuration the log holds (entry {Index}, committed through entry {Committed}); the log's is used. Differences: {Changes}")]
    public static partial void FileDiffersFromLog(ILogger logger, string file, ulong index, ulong committed, string changes);
}
