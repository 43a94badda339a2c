namespace GeoRelay.Server.Web;

/// <summary>Where one web client's messages go: a WebSocket (<see cref="WebSocketSink"/>) or an SSE response (<see cref="ServerSentEventsSink"/>).</summary>
internal abstract class WebStreamSink
{
    /// <summary>Cancelled when the client goes away, or breaks the protocol (<see cref="Violation"/> then says how).</summary>
    public abstract CancellationToken ClientGone { get; }

    /// <summary>Set when the client broke the protocol (sent a WebSocket message).</summary>
    public WebCloseReason? Violation { get; protected set; }

    /// <summary>Sends one entry's JSON; completes once the transport took it (that wait is the back-pressure).</summary>
    public abstract ValueTask SendAsync(ulong index, ReadOnlyMemory<byte> json, CancellationToken ct);

    /// <summary>Tells the client why the stream ends, then ends it; <paramref name="json"/> is the reason as an error object.</summary>
    public abstract Task CloseAsync(WebCloseReason reason, ReadOnlyMemory<byte> json);
}
