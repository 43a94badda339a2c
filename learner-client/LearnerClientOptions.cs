namespace GeoRelay.LearnerClient;

/// <summary>How a <see cref="LearnerClient"/> connects and buffers. Immutable; start from <see cref="Default"/>.</summary>
public sealed record LearnerClientOptions
{
    /// <summary>
    /// Relays or members to subscribe to, as <c>host:port</c> (their learner port), in preference order:
    /// own datacenter first. Every reconnect starts again from the first. Default: none (required).
    /// </summary>
    public IReadOnlyList<string> Endpoints { get; init; } = Array.Empty<string>();

    /// <summary>This learner's id in the handshake and in relay status. Default <c>learner-{machine}-{pid}</c>.</summary>
    public string NodeId { get; init; } = $"learner-{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Cluster name sent in the handshake; relays check it when set. Default empty (any).</summary>
    public string Cluster { get; init; } = "";

    /// <summary>
    /// Authentication token sent in the handshake (UTF-8), as minted by <c>georelay token</c>; relays with
    /// <c>auth</c> configured refuse learners without a valid one, and only serve key prefixes it allows.
    /// Default null (none).
    /// </summary>
    public string? AuthToken { get; init; }

    /// <summary>
    /// PEM file of the CA that issued the relays' certificates. When set, connections use TLS and a relay must
    /// present a certificate from this CA for the host dialed (or <see cref="TlsServerName"/>). Default null (plain TCP).
    /// </summary>
    public string? TlsCaFile { get; init; }

    /// <summary>Name the relay's certificate must carry instead of the endpoint's host. Default null (the host dialed).</summary>
    public string? TlsServerName { get; init; }

    /// <summary>
    /// Replaces the certificate check (chain to <see cref="TlsCaFile"/> and host name) when set; with it TLS is used
    /// even without <see cref="TlsCaFile"/>. Default null.
    /// </summary>
    public System.Net.Security.RemoteCertificateValidationCallback? TlsValidation { get; init; }

    /// <summary>
    /// A connected client sends a heartbeat this often, so relays' <c>idle-timeout</c> does not take a quiet
    /// learner for a dead one; zero disables it. Default 10 s.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Server-side filter: only entries whose key starts with this prefix (UTF-8) are delivered; resume
    /// still works without gaps. Default null (every entry).
    /// </summary>
    public string? KeyPrefix { get; init; }

    /// <summary>First delay before retrying after every endpoint failed; doubles per failed round. Default 100 ms.</summary>
    public TimeSpan ReconnectInitial { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest delay between reconnect rounds. Default 5 s.</summary>
    public TimeSpan ReconnectMax { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time allowed for one TCP connect plus handshake. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long <c>ConnectAsync</c> keeps going round the endpoints, with back-off, while every one that answers
    /// asks the learner to go elsewhere (a relay the leader does not feed yet, as at cluster start or during a
    /// failover). Unreachable endpoints and refusals for any other reason still fail at once. Default 30 s.
    /// </summary>
    public TimeSpan ConnectRetryFor { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Entries buffered between the socket and the enumerator, in entries. When full the client stops
    /// reading the socket until the enumerator has consumed half (back-pressure; a relay cuts a learner that
    /// falls too far behind, and the client resumes). Frames are handed over whole, so the buffer may pass
    /// this by one frame. Default 4096.
    /// </summary>
    public int BufferedEntries { get; init; } = 4096;

    /// <summary>
    /// Reuse the client's buffers: an entry's <see cref="LearnerEntry.Key"/> and <see cref="LearnerEntry.Payload"/>
    /// are valid only until the enumerator is asked for the next entry (copy what you keep). The client then
    /// allocates nothing per frame, which matters to a process with many learners or a high rate (its garbage
    /// collections pause every learner in it). Default false: the memory of every entry stays valid.
    /// </summary>
    public bool ReuseBuffers { get; init; }

    /// <summary>Socket receive buffer, in bytes; 0 leaves the OS default. Default 1 MiB.</summary>
    public int ReceiveBufferSize { get; init; } = 1 << 20;

    /// <summary>Largest frame accepted from a relay, in bytes. Default 16 MiB.</summary>
    public int MaxFrameBytes { get; init; } = 16 << 20;

    /// <summary>Confirms are coalesced and sent at most once per this interval; zero sends each at once. Default 100 ms.</summary>
    public TimeSpan ConfirmInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Idle time before TCP keep-alive probes detect a dead relay; zero disables them. Default 10 s.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(10);

    public static LearnerClientOptions Default { get; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad property.</summary>
    public void Validate()
    {
        if (Endpoints is null || Endpoints.Count == 0)
            throw new ArgumentException("at least one endpoint (host:port) is required", nameof(Endpoints));
        foreach (var endpoint in Endpoints)
            Internal.EndpointAddress.Parse(endpoint);
        if (string.IsNullOrEmpty(NodeId) || NodeId.Length > 255)
            throw new ArgumentException("must be 1 to 255 characters", nameof(NodeId));
        if (KeyPrefix is not null && System.Text.Encoding.UTF8.GetByteCount(KeyPrefix) > 1024)
            throw new ArgumentException("must be at most 1024 bytes in UTF-8", nameof(KeyPrefix));
        if (ReconnectInitial <= TimeSpan.Zero || ReconnectMax < ReconnectInitial)
            throw new ArgumentException("ReconnectInitial must be positive and at most ReconnectMax", nameof(ReconnectInitial));
        if (ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentException("must be positive", nameof(ConnectTimeout));
        if (BufferedEntries < 1)
            throw new ArgumentException("must be at least 1", nameof(BufferedEntries));
        if (ReceiveBufferSize < 0)
            throw new ArgumentException("must not be negative", nameof(ReceiveBufferSize));
        if (MaxFrameBytes < 1024)
            throw new ArgumentException("must be at least 1024", nameof(MaxFrameBytes));
        if (AuthToken is not null && System.Text.Encoding.UTF8.GetByteCount(AuthToken) > Codec.Frames.Hello.MaxAuthLength)
            throw new ArgumentException($"must be at most {Codec.Frames.Hello.MaxAuthLength} bytes in UTF-8", nameof(AuthToken));
        if (HeartbeatInterval < TimeSpan.Zero)
            throw new ArgumentException("must not be negative", nameof(HeartbeatInterval));
        if (ConfirmInterval < TimeSpan.Zero || KeepAlive < TimeSpan.Zero)
            throw new ArgumentException("ConfirmInterval and KeepAlive must not be negative", nameof(ConfirmInterval));
    }
}
