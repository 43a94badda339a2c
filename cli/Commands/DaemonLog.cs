using Microsoft.Extensions.Logging;

namespace GeoRelay.Cli;

internal static partial class DaemonLog
{
    [LoggerMessage(EventId = 900, Level = LogLevel.Information, Message = "Data directory {DataDirectory} ({Source})")]
    public static partial void DataDirectory(ILogger logger, string dataDirectory, string source);

    [LoggerMessage(EventId = 901, Level = LogLevel.Critical, Message = "Disk failed while opening the log: {Operation} of {Path} failed: {Error}")]
    public static partial void DiskFailedAtStart(ILogger logger, string operation, string path, string error);

    [LoggerMessage(EventId = 902, Level = LogLevel.Critical, Message = "Stopped after a disk failure ({Path}); exiting with code {ExitCode}")]
    public static partial void StoppedAfterDiskFailure(ILogger logger, int exitCode, string path);
}
