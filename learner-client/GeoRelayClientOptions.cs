using System.Net.Security;
using System.Text;

namespace GeoRelay.LearnerClient;

/// <summary>
/// What <see cref="LearnerClientOptions"/> and <see cref="PublisherClientOptions"/> share: where to connect, how
/// to authenticate, TLS, timeouts and payload serializers. Immutable; start from a derived record's <c>Default</c>.
/// </summary>
public abstract record GeoRelayClientOptions
{
    /// <summary>Sets the default <see cref="NodeId"/>, <c>{role}-{machine}-{pid}</c>.</summary>
    protected GeoRelayClientOptions(string role) => NodeId = $"{role}-{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>
    /// Where to connect, as <c>host:port</c>, in preference order. A learner takes the learner ports of relays or
    /// members (its own datacenter first); a publisher takes the leader's publish port. Default: none (required).
    /// </summary>
    public IReadOnlyList<string> Endpoints { get; init; } = Array.Empty<string>();

    /// <summary>This client's id in the handshake and in the nodes' status and logs. Default <c>{role}-{machine}-{pid}</c>.</summary>
    public string NodeId { get; init; }

    /// <summary>Cluster name sent in the handshake; relays check it when set. Default empty (any).</summary>
    public string Cluster { get; init; } = "";

    /// <summary>
    /// Authentication token sent in the handshake (UTF-8), as minted by <c>georelay token</c>; nodes with
    /// <c>auth</c> configured refuse clients without a valid one, and only let them subscribe to or publish the
    /// key prefixes it allows. Default null (none).
    /// </summary>
    public string? AuthToken { get; init; }

    /// <summary>
    /// PEM file of the CA that issued the nodes' certificates. When set, connections use TLS and a node must
    /// present a certificate from this CA for the host dialed (or <see cref="TlsServerName"/>). Default null (plain TCP).
    /// </summary>
    public string? TlsCaFile { get; init; }

    /// <summary>Name the node's certificate must carry instead of the endpoint's host. Default null (the host dialed).</summary>
    public string? TlsServerName { get; init; }

    /// <summary>
    /// Replaces the certificate check (chain to <see cref="TlsCaFile"/> and host name) when set; with it TLS is used
    /// even without <see cref="TlsCaFile"/>. Default null.
    /// </summary>
    public RemoteCertificateValidationCallback? TlsValidation { get; init; }

    /// <summary>
    /// A connected client sends a heartbeat this often, so the nodes' <c>idle-timeout</c> does not take a quiet
    /// client for a dead one; zero disables it. Default 10 s.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time allowed for one TCP connect plus handshake (TLS included). Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>First delay before retrying after every endpoint failed; doubles per failed round. Default 100 ms.</summary>
    public TimeSpan ReconnectInitial { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest delay between reconnect rounds. Default 5 s.</summary>
    public TimeSpan ReconnectMax { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle time before TCP keep-alive probes detect a dead node; zero disables them. Default 10 s.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Serializers for typed payloads (<c>PublishAsync&lt;T&gt;</c>, <c>SubscribeAsync&lt;T&gt;</c>). Default
    /// <see cref="PayloadSerializerRegistry.Default"/>: <c>byte[]</c>, <c>ReadOnlyMemory&lt;byte&gt;</c> and
    /// <c>string</c> (UTF-8) only; <see cref="JsonPayloadSerializerRegistry"/> adds every type as JSON.
    /// </summary>
    public IPayloadSerializerRegistry Serializers { get; init; } = PayloadSerializerRegistry.Default;

    /// <summary>
    /// The wait before reconnect round <paramref name="failures"/> + 1: <see cref="ReconnectInitial"/> doubled per failed
    /// round up to <see cref="ReconnectMax"/>, plus up to 20% jitter so clients cut off together do not return together.
    /// </summary>
    internal TimeSpan ReconnectDelay(int failures)
    {
        double ms = ReconnectInitial.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 20));
        ms = Math.Min(ms, ReconnectMax.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (1 + Random.Shared.NextDouble() * 0.2));
    }

    /// <summary>A derived client has endpoints besides <see cref="Endpoints"/> (a learner's <c>LocalEndpoints</c>).</summary>
    private protected virtual bool HasOtherEndpoints => false;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad property.</summary>
    public virtual void Validate()
    {
        if (Endpoints is null)
            throw new ArgumentException("must not be null (empty: none)", nameof(Endpoints));
        if (Endpoints.Count == 0 && !HasOtherEndpoints)
            throw new ArgumentException("at least one endpoint (host:port) is required", nameof(Endpoints));
        Internal.EndpointAddress.Validate(Endpoints, nameof(Endpoints));
        if (string.IsNullOrEmpty(NodeId) || NodeId.Length > 255)
            throw new ArgumentException("must be 1 to 255 characters", nameof(NodeId));
        if (AuthToken is not null && Encoding.UTF8.GetByteCount(AuthToken) > Codec.Frames.Hello.MaxAuthLength)
            throw new ArgumentException($"must be at most {Codec.Frames.Hello.MaxAuthLength} bytes in UTF-8", nameof(AuthToken));
        if (ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentException("must be positive", nameof(ConnectTimeout));
        if (HeartbeatInterval < TimeSpan.Zero)
            throw new ArgumentException("must not be negative", nameof(HeartbeatInterval));
        if (KeepAlive < TimeSpan.Zero)
            throw new ArgumentException("must not be negative", nameof(KeepAlive));
        if (ReconnectInitial <= TimeSpan.Zero || ReconnectMax < ReconnectInitial)
            throw new ArgumentException("ReconnectInitial must be positive and at most ReconnectMax", nameof(ReconnectInitial));
        if (Serializers is null)
            throw new ArgumentException("must be set (PayloadSerializerRegistry.Default handles raw payloads)", nameof(Serializers));
    }
}
