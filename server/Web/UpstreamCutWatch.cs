using GeoRelay.Codec;

namespace GeoRelay.Server.Web;

/// <summary>
/// Notices when a web client's upstream subscription was cut (<see cref="GeoRelay.LearnerClient.LearnerClientOptions.Disconnected"/>).
/// The SDK resumes such a cut by itself, right for a process but not for a web client that cannot keep up: the gateway
/// then closes that client and says why.
/// </summary>
internal sealed class UpstreamCutWatch : IDisposable
{
    private readonly CancellationTokenSource _cut = new();

    /// <summary>Cancelled once the upstream subscription was cut.</summary>
    public CancellationToken Cut => _cut.Token;

    /// <summary>The node's reason when it sent one; null when only the connection was lost.</summary>
    public CodecError? Code { get; private set; }

    /// <summary>The node's words, or the connection's failure.</summary>
    public string? Message { get; private set; }

    /// <summary>Entries were still waiting for the web client when the cut came: the client had fallen behind.</summary>
    public bool Behind { get; private set; }

    /// <summary>Entries the upstream holds for the web client; set once the upstream exists.</summary>
    public Func<long>? Buffered { get; set; }

    /// <summary>The SDK's <c>Disconnected</c> callback: the first cut counts.</summary>
    public void OnDisconnected(CodecError? code, string message)
    {
        if (_cut.IsCancellationRequested) return;
        Code = code;
        Message = message;
        // The SDK reads again only once half its buffer is taken: a cut found then, with entries still waiting,
        // happened while the client was behind. A client that keeps up leaves the buffer empty.
        Behind = Buffered?.Invoke() > 0;
        _cut.Cancel();
    }

    public void Dispose() => _cut.Dispose();
}
