using GeoRelay.Codec;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// The logger a web client's upstream <c>LearnerClient</c> writes to: passes its lines on and notices when the node
/// closed the subscription. The SDK resumes such a cut by itself, right for a process but not for a web client that
/// cannot keep up: the gateway then closes that client and says why. The SDK has no callback for a cut; its log events
/// are the signal: 803 (the node closed the subscription, with its <c>Reason</c>) and 802 (the connection was lost,
/// as when the node gave up waiting for a stalled learner to read its close).
/// </summary>
internal sealed class UpstreamCutWatch(ILogger inner) : ILogger, IDisposable
{
    // learner-client/Internal/LearnerClientLog.cs
    private const int DisconnectedEventId = 802;
    private const int ClosedByRelayEventId = 803;

    private readonly CancellationTokenSource _cut = new();

    /// <summary>Cancelled once the upstream subscription was cut.</summary>
    public CancellationToken Cut => _cut.Token;

    /// <summary>The node's reason when it sent one (803); null when only the connection was lost (802).</summary>
    public CodecError? Code { get; private set; }

    /// <summary>The node's words, or the connection's failure.</summary>
    public string? Message { get; private set; }

    /// <summary>Entries were still waiting for the web client when the cut came: the client had fallen behind.</summary>
    public bool Behind { get; private set; }

    /// <summary>Entries the upstream holds for the web client; set once the upstream exists.</summary>
    public Func<long>? Buffered { get; set; }

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (eventId.Id is DisconnectedEventId or ClosedByRelayEventId && !_cut.IsCancellationRequested
            && state is IReadOnlyList<KeyValuePair<string, object?>> fields)
        {
            Code = Field(fields, "Reason") as CodecError?;
            Message = Field(fields, "Message") as string;
            // The SDK reads again only once half its buffer is taken: a cut found then, with entries still waiting,
            // happened while the client was behind. A client that keeps up leaves the buffer empty.
            Behind = Buffered?.Invoke() > 0;
            _cut.Cancel();
        }
        inner.Log(logLevel, eventId, state, exception, formatter);
    }

    private static object? Field(IReadOnlyList<KeyValuePair<string, object?>> fields, string name)
    {
        foreach (var (key, value) in fields)
            if (key == name) return value;
        return null;
    }

    // Always enabled for the events it watches, whatever the node's log level lets through.
    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning || inner.IsEnabled(logLevel);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

    public void Dispose() => _cut.Dispose();
}
