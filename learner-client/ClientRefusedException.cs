using GeoRelay.Codec;

namespace GeoRelay.LearnerClient;

/// <summary>
/// An endpoint refused this client for a reason that reconnecting cannot fix, so the connect or the subscription ends
/// with it instead of retrying: the token (<see cref="CodecError.Unauthorized"/>: missing, expired, revoked, signed
/// by a key the cluster does not hold, or lacking the scope or key prefix asked for), or, when every endpoint said
/// so in one round, a protocol version, cluster or kind of port this client does not match.
/// </summary>
/// <remarks>
/// Every node of a cluster checks tokens with the same keys and revocations, so the first
/// <see cref="CodecError.Unauthorized"/> speaks for all of them. The other refusals depend on the endpoint (during a
/// rolling upgrade nodes speak different versions; one wrong address may sit among right ones), so they end the
/// attempt only when no endpoint took the client.
/// </remarks>
public sealed class ClientRefusedException : Exception
{
    /// <summary>Creates the exception for a refusal by <paramref name="endpoint"/>.</summary>
    /// <param name="endpoint">The endpoint that refused, as the options spell it.</param>
    /// <param name="code">Why, as the node sent it.</param>
    /// <param name="detail">The node's explanation.</param>
    /// <param name="inner">The failure that carried the refusal, when there was one.</param>
    public ClientRefusedException(string endpoint, CodecError code, string detail, Exception? inner = null)
        : base(code == CodecError.Unauthorized
            ? $"{endpoint} refused the token: {detail}"
            : $"{endpoint} refused this client ({code}): {detail}", inner)
    {
        Endpoint = endpoint;
        Code = code;
        Detail = detail;
    }

    /// <summary>The endpoint that refused, as <see cref="GeoRelayClientOptions.Endpoints"/> spells it.</summary>
    public string Endpoint { get; }

    /// <summary>Why, as the node sent it: <see cref="CodecError.Unauthorized"/> for the token.</summary>
    public CodecError Code { get; }

    /// <summary>The node's explanation, e.g. <c>token for 'alice' expired at 2026-01-01 00:00:00Z</c>.</summary>
    public string Detail { get; }
}
