using Microsoft.Extensions.Logging;

namespace GeoRelay.LearnerClient.Internal;

internal static partial class EndpointDialerLog
{
    [LoggerMessage(EventId = 820, Level = LogLevel.Information, Message = "{Endpoint} speaks protocol {Version} only; redialed with protocol {Version}")]
    public static partial void ProtocolFallback(ILogger logger, string endpoint, ushort version);
}
