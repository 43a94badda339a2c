using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.LearnerClient;
using Upstream = GeoRelay.LearnerClient.LearnerClient;
using GeoRelay.Server.Security;
using GeoRelay.Engines;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>A refusal to answer before the stream starts: HTTP status, a short code and the reason.</summary>
public readonly record struct WebRefusal(int Status, string Code, string Message);

/// <summary>
/// Opens each web client's own subscription: a <see cref="LearnerClient"/> on this node's learner port, so resume, gaps,
/// filtering, truncation and tokens are exactly the SDK's and the node's. Refusals become HTTP answers.
/// </summary>
internal sealed class WebUpstream
{
    private const string MintHint = "mint one with `georelay token --config TOPOLOGY --subject NAME --scope learn`";
    private readonly TopologyConfig _topology;
    private readonly string _nodeId;
    private readonly string _learners;
    private readonly HostSecurity _security;
    private readonly WebEndpointOptions _options;

    public WebUpstream(TopologyConfig topology, string nodeId, HostSecurity security, WebEndpointOptions options)
    {
        _topology = topology;
        _nodeId = nodeId;
        var node = topology.GetNode(nodeId);
        var learners = node.Learners ?? throw new ArgumentException($"node '{nodeId}' has no learners address for the web endpoint to subscribe to", nameof(nodeId));
        _learners = Reachable(learners).ToString();
        _security = security;
        _options = options;
    }

    /// <summary>The learner port as this machine dials it: a wildcard listens on loopback too.</summary>
    private static NodeEndpoint Reachable(NodeEndpoint learners) =>
        IPAddress.TryParse(learners.Host, out var ip) && ip.Equals(IPAddress.Any) ? learners with { Host = "127.0.0.1" }
        : IPAddress.TryParse(learners.Host, out ip) && ip.Equals(IPAddress.IPv6Any) ? learners with { Host = "::1" }
        : learners;

    /// <summary>Connects for one web client; null and a refusal when the node does not take it.</summary>
    public async Task<(Upstream? Client, WebRefusal Refusal)> ConnectAsync(WebStreamRequest request, string clientId, ILogger logger,
        Action<CodecError?, string> disconnected, CancellationToken ct)
    {
        // Checked here with the node's own rule so a token that may not read this prefix is answered 403 before the
        // upgrade; the node checks it again at Subscribe.
        if (Claims(request.Token) is { } claims && PrefixRefusal(claims, request.Prefix) is { } refused) return (null, refused);
        var options = Options(clientId, request.Token, request.Prefix, disconnected);
        try
        {
            return (await Upstream.ConnectAsync(options, logger, ct).ConfigureAwait(false), default);
        }
        catch (ClientRefusedException e) when (e.Code == CodecError.Unauthorized)
        {
            return (null, Classify(request.Token, e.Detail));
        }
        catch (ClientRefusedException e)
        {
            return (null, new(502, "refused", $"this node's learner port refused the web endpoint: {e.Detail}"));
        }
        catch (LearnerConnectException e)
        {
            return (null, new(503, "unavailable", $"this node serves no learners right now ({e.Message}); retry shortly"));
        }
    }

    /// <summary>
    /// Connects a shared feed (<see cref="WebFeed"/>) at <paramref name="from"/>: with a token this node mints for itself
    /// (learn scope, the feed's prefix, an hour), since the feed outlives any one client's token. The clients' own
    /// tokens are checked by <see cref="Authorize"/> instead.
    /// </summary>
    public async Task<(Upstream? Client, WebRefusal Refusal)> ConnectFeedAsync(string? prefix, ulong from, ILogger logger, CancellationToken ct)
    {
        string? token = null;
        if (_security.RequiredScope(PortKind.Learner) != TokenScopes.None)
            token = _security.Tokens!.Current.Authority.Mint(new TokenClaims($"web-feed@{_nodeId}", DateTimeOffset.UtcNow.AddHours(1),
                TokenScopes.Learn, [Encoding.UTF8.GetBytes(prefix ?? "")]));
        var options = Options($"web-feed-{_nodeId}", token, prefix, null);
        try
        {
            return (await Upstream.ConnectAsync(options, logger, ct).ConfigureAwait(false), default);
        }
        catch (ClientRefusedException e)
        {
            return (null, new(502, "refused", $"this node's learner port refused the web endpoint: {e.Detail}"));
        }
        catch (LearnerConnectException e)
        {
            return (null, new(503, "unavailable", $"this node serves no learners right now ({e.Message}); retry shortly"));
        }
    }

    private LearnerClientOptions Options(string clientId, string? token, string? prefix, Action<CodecError?, string>? disconnected) =>
        LearnerClientOptions.Default with
        {
            Endpoints = [_learners],
            Cluster = _topology.Cluster,
            NodeId = clientId,
            AuthToken = token,
            KeyPrefix = prefix,
            BufferedEntries = _options.BufferedEntries,
            ReceiveBufferSize = _options.ReceiveBufferSize,
            // Each entry is encoded before the next is asked for: the SDK may reuse its frame buffers.
            ReuseBuffers = true,
            MaxFrameBytes = (int)Math.Min(_topology.Defaults.MaxFrame, int.MaxValue),
            ConnectRetryFor = _options.ConnectRetryFor,
            TlsValidation = _security.UsesTls(PortKind.Learner) ? IsThisNode : null,
            Disconnected = disconnected,
        };

    /// <summary>
    /// The node's own learner-port rule for a client that reads a shared feed, checked here since its token never
    /// reaches the node: a valid token (signature, expiry, revocation) with the learn scope, for the prefix asked.
    /// Null when the client may read; <paramref name="claims"/> then holds its token's claims when tokens are required.
    /// </summary>
    public WebRefusal? Authorize(WebStreamRequest request, out TokenClaims? claims)
    {
        claims = null;
        var scope = _security.RequiredScope(PortKind.Learner);
        if (scope == TokenScopes.None) return null;
        if (request.Token is null) return Classify(null, "no token");
        claims = Claims(request.Token, out string error);
        if (claims is null) return new(401, "invalid-token", "the token was refused: " + error);
        if ((claims.Scopes & scope) != scope)
            return new(403, "forbidden", $"the token for '{claims.Subject}' lacks the learn scope; " + MintHint);
        return PrefixRefusal(claims, request.Prefix);
    }

    private static WebRefusal? PrefixRefusal(TokenClaims claims, string? prefix) =>
        claims.AllowsSubscription(Encoding.UTF8.GetBytes(prefix ?? "")) ? null
        : new(403, "forbidden", $"the token for '{claims.Subject}' does not allow key prefix '{prefix ?? ""}'; subscribe with one of its prefixes");

    /// <summary>
    /// Whether a feed client's token still holds: not expired, and not revoked by a reload since <paramref name="version"/>
    /// (which moves to the current version). Null when it holds.
    /// </summary>
    public WebRefusal? Recheck(TokenClaims? claims, ref int version)
    {
        if (claims is null) return null;
        if (claims.Expires <= DateTimeOffset.UtcNow) return new(401, "invalid-token", $"token for '{claims.Subject}' expired at {claims.Expires:u}");
        var current = _security.Tokens!.Current;
        if (current.Version == version) return null;
        version = current.Version;
        return current.Authority.IsRevoked(claims, out string why) ? new(401, "invalid-token", why) : null;
    }

    /// <summary>The token authority's version now, for <see cref="Recheck"/>.</summary>
    public int TokenVersion => _security.Tokens?.Current.Version ?? 0;

    /// <summary>
    /// The node refused the token; which HTTP status says it best: 401 without a token or with one the node cannot
    /// verify, 403 for a valid token that lacks the learn scope or the prefix.
    /// </summary>
    public WebRefusal Classify(string? token, string detail)
    {
        if (token is null) return new(401, "missing-token", $"this node needs a token with the learn scope (`Authorization: Bearer <token>` or `?token=`): {detail}; " + MintHint);
        return Claims(token) is null ? new(401, "invalid-token", "the token was refused: " + detail) : new(403, "forbidden", "the token was refused: " + detail);
    }

    private TokenClaims? Claims(string? token) => Claims(token, out _);

    private TokenClaims? Claims(string? token, out string error)
    {
        error = "no token";
        if (token is null || _security.RequiredScope(PortKind.Learner) == TokenScopes.None) return null;
        var bytes = Encoding.UTF8.GetBytes(token);
        try
        {
            return _security.Tokens!.Current.Authority.Verify(bytes, DateTimeOffset.UtcNow, out error);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(bytes);
        }
    }

    // The upstream dials this very node: its certificate must chain to the cluster CA and name this node.
    private bool IsThisNode(object sender, X509Certificate? certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors) =>
        certificate is not null && _security.Tls!.ChainsToCa(certificate, out _) && NodeTls.NodeIdOf(new X509Certificate2(certificate)) == _nodeId;
}
