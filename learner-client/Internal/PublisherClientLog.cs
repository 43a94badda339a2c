using Microsoft.Extensions.Logging;

namespace GeoRelay.LearnerClient.Internal;

internal static partial class PublisherClientLog
{
    [LoggerMessage(EventId = 810, Level = LogLevel.Information, Message = "Publishing to {Endpoint}")]
    public static partial void Connected(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 811, Level = LogLevel.Warning, Message = "Could not connect to {Endpoint}: {Message}")]
    public static partial void ConnectFailed(ILogger logger, string endpoint, string message);

    [LoggerMessage(EventId = 812, Level = LogLevel.Warning, Message = "Connection to {Endpoint} closed: {Reason}; {Sent} sent and {Waiting} waiting publishes failed")]
    public static partial void ConnectionLost(ILogger logger, string endpoint, string reason, int sent, int waiting);

    [LoggerMessage(EventId = 813, Level = LogLevel.Warning, Message = "Connection to {Endpoint} lost: {Reason}; looking for the leader for up to {Timeout}, holding {Held} unacknowledged and {Waiting} waiting publishes; {Failed} failed (sent without ExactlyOnce, so not sent again)")]
    public static partial void Reconnecting(ILogger logger, string endpoint, string reason, int held, int waiting, int failed, TimeSpan timeout);

    [LoggerMessage(EventId = 814, Level = LogLevel.Information, Message = "{Endpoint} does not lead and names {Leader}: trying it next")]
    public static partial void Redirected(ILogger logger, string endpoint, string leader);

    [LoggerMessage(EventId = 815, Level = LogLevel.Warning, Message = "No endpoint takes publishes; retrying in {Delay}")]
    public static partial void Backoff(ILogger logger, TimeSpan delay);

    [LoggerMessage(EventId = 816, Level = LogLevel.Information, Message = "Reconnected to {Endpoint} after {After}; {Resent} unacknowledged requests sent again, in their order")]
    public static partial void Reconnected(ILogger logger, string endpoint, TimeSpan after, int resent);

    [LoggerMessage(EventId = 817, Level = LogLevel.Error, Message = "Gave up reconnecting: no endpoint took publishes within {Timeout}; {Sent} sent and {Waiting} waiting publishes failed")]
    public static partial void GaveUp(ILogger logger, TimeSpan timeout, int sent, int waiting);
}
