namespace GeoRelay.LearnerClient;

/// <summary>How a <see cref="PublisherClient"/> connects and how much it keeps in flight. Immutable; start from <see cref="Default"/>.</summary>
/// <remarks>
/// <see cref="GeoRelayClientOptions.Endpoints"/> are publish ports (the leader's <c>publish</c> address). Today the
/// client publishes to the first one that answers and stays there: when that connection closes, publishes fail
/// and the application connects a new client. Following a leader change is left to a later version.
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
    /// never appends a request twice: one sent again after a lost answer or a leader change (by this client) is
    /// answered with where it went. Each request then costs one internal entry (an index learners skip). Default false,
    /// until the client resends on its own after a leader change.
    /// </summary>
    public bool ExactlyOnce { get; init; }

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
    }
}
