namespace GeoRelay.LearnerClient;

/// <summary>How a <see cref="PublisherClient"/> connects and how much it keeps in flight. Immutable; start from <see cref="Default"/>.</summary>
/// <remarks>
/// <see cref="GeoRelayClientOptions.Endpoints"/> are publish ports: the leader's <c>publish</c> address, or, with
/// elections, every voter's (those that do not lead refuse, naming the leader). The client publishes to the first that
/// takes it and follows the leader from then on: when the connection closes it reconnects on its own for up to
/// <see cref="ReconnectTimeout"/>, and with <see cref="ExactlyOnce"/> (the default) sends what was not acknowledged
/// again without any of it being appended twice. See <see cref="PublisherClient"/>.
/// </remarks>
public sealed record PublisherClientOptions : GeoRelayClientOptions
{
    /// <summary>Options with every default; <see cref="GeoRelayClientOptions.NodeId"/> is <c>publisher-{machine}-{pid}</c>.</summary>
    public PublisherClientOptions() : base("publisher") { }

    /// <summary>
    /// Request bytes sent and not yet acknowledged, at most. A publish that would pass it waits (its task does not
    /// complete) until acknowledgements free room; publishes go out in the order they were called. A single
    /// request larger than this goes out alone, once nothing else is in flight. Default 8 MiB.
    /// </summary>
    public long MaxInFlightBytes { get; init; } = 8L << 20;

    /// <summary>Entries sent and not yet acknowledged, at most; as <see cref="MaxInFlightBytes"/>, in entries. Default 65,536.</summary>
    public int MaxInFlightEntries { get; init; } = 65_536;

    /// <summary>
    /// Largest request, in bytes: the leader's <c>max-frame</c>, which closes a connection that sends a longer one.
    /// A publish that would make a larger request throws <see cref="ArgumentException"/> instead. Default 16 MiB.
    /// </summary>
    public int MaxFrameBytes { get; init; } = 16 << 20;

    /// <summary>
    /// Number every request under a producer id of this client (<see cref="PublisherClient.ProducerId"/>), so the leader
    /// never appends a request twice: after a reconnect (a lost connection, a leader change) the client sends every
    /// request not acknowledged again, in its order and with the same numbers, and the leader answers one its log holds
    /// with where it went. Each request costs one internal entry (an index learners skip). When false, a request sent
    /// and not acknowledged when the connection closes fails with <see cref="PublishFailedException"/>
    /// (<see cref="PublishFailedException.WasSent"/> true: it may be in the log; sent again it could be there twice), and
    /// only later publishes go to the new connection. Default true.
    /// </summary>
    public bool ExactlyOnce { get; init; } = true;

    /// <summary>
    /// How long the client looks for a leader after its connection closes (dialing the leader a refusing node names,
    /// then the endpoints in order, with back-off from <see cref="GeoRelayClientOptions.ReconnectInitial"/> to
    /// <see cref="GeoRelayClientOptions.ReconnectMax"/>); publishes wait meanwhile. Past it every publish not yet
    /// acknowledged fails with <see cref="PublishFailedException"/>, and so does every later one. Also how long
    /// <c>ConnectAsync</c> keeps trying while the nodes that answer say none of them leads. Zero: no reconnect (the
    /// first close fails what is pending, and every later publish). Default 30 s.
    /// </summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A connection on which publishes wait and nothing at all has arrived for this long is taken for dead and dropped,
    /// and the client reconnects (as after any close): a leader cut off by a silent partition can neither answer nor
    /// say NotLeader, and TCP does not notice while it retransmits. Zero: never. Default 5 s (a leader steps down
    /// within an election timeout when it cannot commit, and says so).
    /// </summary>
    public TimeSpan AnswerTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The defaults: an instance to start from with <c>with { Endpoints = ... }</c>.</summary>
    public static PublisherClientOptions Default { get; } = new();

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (MaxInFlightBytes < 1)
            throw new ArgumentException("must be at least 1", nameof(MaxInFlightBytes));
        if (MaxInFlightEntries < 1)
            throw new ArgumentException("must be at least 1", nameof(MaxInFlightEntries));
        if (MaxFrameBytes < 1024)
            throw new ArgumentException("must be at least 1024", nameof(MaxFrameBytes));
        if (AnswerTimeout < TimeSpan.Zero)
            throw new ArgumentException("must not be negative (zero: never)", nameof(AnswerTimeout));
        if (ReconnectTimeout < TimeSpan.Zero)
            throw new ArgumentException("must not be negative (zero: no reconnect)", nameof(ReconnectTimeout));
    }
}
