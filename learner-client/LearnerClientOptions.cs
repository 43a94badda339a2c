namespace GeoRelay.LearnerClient;

/// <summary>How a <see cref="LearnerClient"/> connects and buffers. Immutable; start from <see cref="Default"/>.</summary>
/// <remarks>
/// Endpoints are learner ports of relays or members (a node's <c>learners</c> address): <see cref="LocalEndpoints"/>, those
/// of the client's own datacenter, in an order each client draws at random, then <see cref="GeoRelayClientOptions.Endpoints"/>
/// in the order given. Every reconnect starts again from the first of that order.
/// </remarks>
public sealed record LearnerClientOptions : GeoRelayClientOptions
{
    /// <summary>Options with every default; <see cref="GeoRelayClientOptions.NodeId"/> is <c>learner-{machine}-{pid}</c>.</summary>
    public LearnerClientOptions() : base("learner") { }

    /// <summary>
    /// Learner ports of the client's own datacenter, tried before <see cref="GeoRelayClientOptions.Endpoints"/> in an order
    /// each client draws once, at random: many clients given the same list spread over its nodes instead of all
    /// subscribing at the first. <see cref="GeoRelayClientOptions.Endpoints"/> then holds the other datacenters' (or
    /// endpoints whose order matters) and may be empty; an address in both lists is tried once, as a local one. A node
    /// that refuses a learner because it is full or draining names others of its datacenter ("try ID at HOST:PORT"); the
    /// client dials the first of those it has in either list next, so name endpoints as the topology spells them.
    /// Learners only: a publisher's writes all go to the one leader, which it follows by itself. Default: none.
    /// </summary>
    public IReadOnlyList<string> LocalEndpoints { get; init; } = Array.Empty<string>();

    /// <summary>
    /// Server-side filter: only entries whose key starts with this prefix (UTF-8) are delivered; resume
    /// still works without gaps. Default null (every entry).
    /// </summary>
    public string? KeyPrefix { get; init; }

    /// <summary>
    /// How long <c>ConnectAsync</c> keeps going round the endpoints, with back-off, while every one that answers
    /// asks the learner to go elsewhere (a relay the leader does not feed yet, as at cluster start or during a
    /// failover; a node that is full or draining). Unreachable endpoints and refusals for any other reason still fail
    /// at once. Default 30 s.
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

    /// <summary>
    /// Called, on the client's reading task, each time the connection of a subscription ends: with the node's reason when
    /// it sent one (a slow-consumer cut, a drain) and its words, else null and the failure. The client then resumes at the
    /// next index by itself; a caller for whom that is wrong (a gateway whose own client fell behind) cancels the
    /// enumeration here. Keep it short: the next connection waits for it. Default null.
    /// </summary>
    public Action<GeoRelay.Codec.CodecError?, string>? Disconnected { get; init; }

    /// <summary>
    /// A node that heartbeats its learners (it says so in the handshake; a node sends one after a second of nothing)
    /// and has sent nothing for this long is taken for hung: its kernel may still answer TCP, so the connection never
    /// breaks by itself. The client drops it and resumes at the next index on another endpoint. Zero never does.
    /// Default 5 s; at least 2 s when set.
    /// </summary>
    public TimeSpan SilenceTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The defaults: an instance to start from with <c>with { Endpoints = ... }</c>.</summary>
    public static LearnerClientOptions Default { get; } = new();

    private protected override bool HasOtherEndpoints => LocalEndpoints is { Count: > 0 };

    /// <inheritdoc/>
    public override void Validate()
    {
        if (LocalEndpoints is null)
            throw new ArgumentException("must not be null (empty: none)", nameof(LocalEndpoints));
        if ((Endpoints?.Count ?? 0) + LocalEndpoints.Count == 0)
            throw new ArgumentException("at least one endpoint (host:port) is required, in Endpoints or LocalEndpoints", nameof(Endpoints));
        Internal.EndpointAddress.Validate(LocalEndpoints, nameof(LocalEndpoints));
        base.Validate();
        if (KeyPrefix is not null && System.Text.Encoding.UTF8.GetByteCount(KeyPrefix) > 1024)
            throw new ArgumentException("must be at most 1024 bytes in UTF-8", nameof(KeyPrefix));
        if (BufferedEntries < 1)
            throw new ArgumentException("must be at least 1", nameof(BufferedEntries));
        if (ReceiveBufferSize < 0)
            throw new ArgumentException("must not be negative", nameof(ReceiveBufferSize));
        if (MaxFrameBytes < 1024)
            throw new ArgumentException("must be at least 1024", nameof(MaxFrameBytes));
        if (ConfirmInterval < TimeSpan.Zero)
            throw new ArgumentException("must not be negative", nameof(ConfirmInterval));
        if (SilenceTimeout != TimeSpan.Zero && SilenceTimeout < TimeSpan.FromSeconds(2))
            throw new ArgumentException("must be zero (never) or at least 2 s: nodes heartbeat after a second of nothing", nameof(SilenceTimeout));
    }
}
