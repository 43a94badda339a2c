using System.Net;
using GeoRelay.Codec;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

internal static partial class EngineHostLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Listening for {Port} connections on {EndPoint}")]
    public static partial void Listening(ILogger logger, string port, EndPoint endPoint);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Connected to {Peer} ({Kind}) at {EndPoint}, protocol {Version}")]
    public static partial void Connected(ILogger logger, string peer, string kind, EndPoint? endPoint, ushort version);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Refused connection from {EndPoint}: {Reason}: {Message}")]
    public static partial void Refused(ILogger logger, EndPoint? endPoint, CodecError reason, string message);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Dial to {Peer} at {EndPoint} failed: {Message}")]
    public static partial void DialFailed(ILogger logger, string peer, string endPoint, string message);

    [LoggerMessage(EventId = 124, Level = LogLevel.Information, Message = "{Peer} speaks protocol {Version} only; redialed with protocol {Version}")]
    public static partial void ProtocolFallback(ILogger logger, string peer, ushort version);

    [LoggerMessage(EventId = 113, Level = LogLevel.Debug, Message = "Dial to {Peer} at {EndPoint}: it does not serve now ({Message}); the engine tries elsewhere")]
    public static partial void DialNotServing(ILogger logger, string peer, string endPoint, string message);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Bad frame from {Peer} at {EndPoint}, closing: {Reason}: {Message}")]
    public static partial void BadFrame(ILogger logger, string peer, EndPoint? endPoint, CodecError reason, string message);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Disconnected from {Peer} at {EndPoint}: {Reason}")]
    public static partial void Disconnected(ILogger logger, string peer, EndPoint? endPoint, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Warning, Message = "Cut {Peer} at {EndPoint} ({Limit}): {Message}")]
    public static partial void LimitBroken(ILogger logger, string peer, EndPoint? endPoint, GeoRelay.Server.Security.RefusalKind limit, string message);

    [LoggerMessage(EventId = 108, Level = LogLevel.Error, Message = "Accepting a connection from {EndPoint} failed")]
    public static partial void AcceptFailed(ILogger logger, EndPoint? endPoint, Exception exception);

    [LoggerMessage(EventId = 106, Level = LogLevel.Error, Message = "Engine failed handling a frame from {Peer}")]
    public static partial void EngineFailed(ILogger logger, string peer, Exception exception);

    [LoggerMessage(EventId = 109, Level = LogLevel.Warning, Message = "Timers ran {Millis} ms late: this process was not running (a GC pause or an overloaded machine), and peers may have taken the silence for a failure")]
    public static partial void LateTick(ILogger logger, long millis);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Runtime summary: gc0={Gen0} gc1={Gen1} gc2={Gen2} gc_pause_ms={PauseMillis} cpu_ms={CpuMillis}")]
    public static partial void RuntimeSummary(ILogger logger, int gen0, int gen1, int gen2, long pauseMillis, long cpuMillis);

    [LoggerMessage(EventId = 111, Level = LogLevel.Critical, Message = "Disk failed: {Operation} of {Path} failed: {Error}. This node stops now and acknowledges nothing more; restart it once the disk is fixed and it recovers from its log (a failed fsync is never retried: the retry may report success for writes the disk dropped)")]
    public static partial void DiskFailed(ILogger logger, string operation, string path, string error);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "{Port} port {EndPoint} is not loopback and speaks plain TCP ({Why}): {Exposure}")]
    public static partial void PlaintextListen(ILogger logger, string port, EndPoint endPoint, string why, string exposure);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "Dialing {Peer} at {EndPoint}, not loopback, over plain TCP (insecure: true): the node answering there is not authenticated and entries cross the network in the clear")]
    public static partial void PlaintextDial(ILogger logger, string peer, EndPoint endPoint);

    [LoggerMessage(EventId = 122, Level = LogLevel.Information, Message = "Reloaded token keys: {Summary}")]
    public static partial void TokensReloaded(ILogger logger, string summary);

    [LoggerMessage(EventId = 123, Level = LogLevel.Error, Message = "Token key reload failed: {Reason}")]
    public static partial void TokenReloadFailed(ILogger logger, string reason);
}
