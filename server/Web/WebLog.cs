using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

internal static partial class WebLog
{
    [LoggerMessage(EventId = 530, Level = LogLevel.Information, Message = "Web endpoint on {Scheme}://{EndPoint} (GET /stream over WebSocket or Server-Sent Events, /georelay.js); subscribing to {Learners} for each client")]
    public static partial void Listening(ILogger logger, string scheme, string endPoint, string learners);

    [LoggerMessage(EventId = 531, Level = LogLevel.Information, Message = "Web client {Client} from {Remote}: {Transport} from index {From}{Prefix}")]
    public static partial void Started(ILogger logger, string client, string remote, string transport, ulong from, string prefix);

    [LoggerMessage(EventId = 532, Level = LogLevel.Information, Message = "Web client {Client} ended at index {Last}: {Code}: {Message}")]
    public static partial void Ended(ILogger logger, string client, ulong last, string code, string message);

    [LoggerMessage(EventId = 533, Level = LogLevel.Warning, Message = "Web request {Path} from {Remote} refused with {Status}: {Message}")]
    public static partial void Refused(ILogger logger, string path, string remote, int status, string message);

    [LoggerMessage(EventId = 534, Level = LogLevel.Error, Message = "Web client {Client} failed")]
    public static partial void Failed(ILogger logger, string client, Exception exception);

    [LoggerMessage(EventId = 535, Level = LogLevel.Warning, Message = "Web endpoint {EndPoint} is not loopback and serves plain HTTP (insecure: true): web clients' tokens and entries cross the network in the clear")]
    public static partial void PlainBeyondLoopback(ILogger logger, string endPoint);

    [LoggerMessage(EventId = 536, Level = LogLevel.Information, Message = "Web feed for prefix '{Prefix}' subscribed from index {From}: its live clients share it")]
    public static partial void FeedStarted(ILogger logger, string prefix, ulong from);

    [LoggerMessage(EventId = 537, Level = LogLevel.Information, Message = "Web feed for prefix '{Prefix}' renews its token ({Reason})")]
    public static partial void FeedTokenRenewed(ILogger logger, string prefix, string reason);

    [LoggerMessage(EventId = 538, Level = LogLevel.Error, Message = "Web feed for prefix '{Prefix}' failed")]
    public static partial void FeedFailed(ILogger logger, string prefix, Exception exception);

    [LoggerMessage(EventId = 539, Level = LogLevel.Information, Message = "Web client {Client} caught up: reads the shared feed from index {From}")]
    public static partial void JoinedFeed(ILogger logger, string client, ulong from);
}
