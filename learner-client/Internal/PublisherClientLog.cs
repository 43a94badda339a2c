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
}
