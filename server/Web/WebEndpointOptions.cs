namespace GeoRelay.Server.Web;

/// <summary>How the web learner endpoint buffers and waits, per web client. Immutable; start from <see cref="Default"/>.</summary>
public sealed record WebEndpointOptions
{
    /// <summary>
    /// Entries the upstream subscription buffers before it stops reading from the node (the learner SDK's
    /// <c>BufferedEntries</c>; whole delivery frames are handed over, so it may pass this by one frame). Default 64.
    /// </summary>
    public int BufferedEntries { get; init; } = 64;

    /// <summary>Socket receive buffer of the upstream subscription, in bytes. Default 64 KiB.</summary>
    public int ReceiveBufferSize { get; init; } = 64 << 10;

    /// <summary>
    /// A web client that takes no message for this long is closed as a slow consumer (one that takes messages slowly
    /// is cut by the node's own <c>learner-backlog</c> instead). Default 30 s.
    /// </summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a new web client waits while the node's learner port sends learners elsewhere (a member not yet fed at
    /// start or in a failover) before it is answered 503. Default 10 s.
    /// </summary>
    public TimeSpan ConnectRetryFor { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether a WebSocket client that offers permessage-deflate (RFC 7692; browsers do) gets it. Each compressed
    /// connection keeps a deflate context (up to about 256 KiB with the client's default window), which repeated JSON
    /// keys and payloads pay back many times over. Every entry a learner is sent is one it may read, so compressing
    /// them together reveals nothing across a boundary (the reason .NET calls it "dangerous"). Default true.
    /// </summary>
    public bool Compression { get; init; } = true;

    /// <summary>WebSocket ping interval, which keeps idle streams open through proxies. Default 30 s.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(30);

    public static WebEndpointOptions Default { get; } = new();
}
