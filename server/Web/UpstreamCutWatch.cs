using GeoRelay.Codec;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// The logger a web client's upstream <c>LearnerClient</c> writes to: passes its lines on and notices when the node cut
/// the subscription with <see cref="CodecError.SlowConsumer"/>. The SDK resumes such a cut by itself, which is right for
/// a process but not for a web client that cannot keep up: the gateway then closes that client and says why. The SDK
/// has no callback for a cut; its log event (id 803, "closed the subscription", with its <c>Reason</c>) is the signal.
/// </summary>
internal sealed class UpstreamCutWatch(ILogger inner) : ILogger, IDisposable
{
    /// <summary>LearnerClientLog.ClosedByRelay in learner-client/Internal/LearnerClientLog.cs.</summary>
    private const int ClosedByRelayEventId = 803;

    private readonly CancellationTokenSource _cut = new();

    /// <summary>Cancelled once the node cut the upstream subscription as a slow consumer.</summary>
    public CancellationToken SlowConsumerCut => _cut.Token;

    /// <summary>The node's words for the cut, once there was one.</summary>
    public string? Reason { get; private set; }

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (eventId.Id == ClosedByRelayEventId && state is IReadOnlyList<KeyValuePair<string, object?>> fields && IsSlowConsumer(fields))
        {
            Reason = Field(fields, "Message") as string;
            _cut.Cancel();
        }
        inner.Log(logLevel, eventId, state, exception, formatter);
    }

    private static bool IsSlowConsumer(IReadOnlyList<KeyValuePair<string, object?>> fields) =>
        Field(fields, "Reason") is CodecError.SlowConsumer;

    private static object? Field(IReadOnlyList<KeyValuePair<string, object?>> fields, string name)
    {
        foreach (var (key, value) in fields)
            if (key == name) return value;
        return null;
    }

    // Always enabled for the event it watches, whatever the node's log level lets through.
    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning || inner.IsEnabled(logLevel);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public void Dispose() => _cut.Dispose();
}
