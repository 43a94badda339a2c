using System.Security.Cryptography;
using System.Text;
using GeoRelay.Server.Security;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Admin;

/// <summary>What an admin request gets: allowed, or the status code and the error to answer with.</summary>
public readonly record struct AdminVerdict(int Status, AdminError? Error)
{
    public bool Allowed => Error is null;
}

/// <summary>
/// Who may use a node's admin endpoint (every route but <c>/healthz</c>). A node with token keys (<c>auth</c>) asks for
/// <c>Authorization: Bearer &lt;token&gt;</c> with the admin scope, checked by the same verifier as its learner and publish
/// tokens (key ids, revocations, SIGHUP reloads). Without token keys, an insecure node (<c>insecure: true</c>, no TLS) is
/// open, and a node with TLS refuses: its operator asked for security and has given it nothing to check with.
/// </summary>
public sealed class AdminAccess
{
    private const string MintHint = "mint one with `georelay token --config TOPOLOGY --subject NAME --scope admin`";
    private readonly TokenVerifier? _tokens;
    private readonly bool _open;

    private AdminAccess(TokenVerifier? tokens, bool open)
    {
        _tokens = tokens;
        _open = open;
    }

    public static AdminAccess For(HostSecurity security) => new(security.Tokens, open: security.Tokens is null && security.Tls is null);

    /// <summary>Admin-scope tokens checked against <paramref name="tokens"/>, whatever the node's own settings (the demo's console).</summary>
    public static AdminAccess WithTokens(TokenVerifier tokens) => new(tokens, open: false);

    /// <summary>Anyone who reaches the endpoint may use it.</summary>
    public bool IsOpen => _open;

    /// <summary>For the start-up log line.</summary>
    public string Describe() =>
        _tokens is not null ? "a token with the admin scope is required on every route but /healthz"
        : _open ? "open to anyone who can reach it (insecure: true and no auth section)"
        : "refusing every route but /healthz: this node has TLS but no token keys (auth.key-file)";

    /// <summary>Whether a request with this <c>Authorization</c> header may proceed.</summary>
    public AdminVerdict Check(string? authorization, DateTimeOffset now)
    {
        if (_open) return new(200, null);
        if (_tokens is null)
            return Unauthorized("no-token-keys",
                "this node serves TLS but has no token keys, so its admin endpoint answers only /healthz: add `auth: { key-file: FILE }` " +
                "to the topology (`georelay token --new-key FILE` writes one), restart the node, and " + MintHint);
        if (string.IsNullOrWhiteSpace(authorization))
            return Unauthorized("missing-token", "this endpoint needs a token with the admin scope in the header `Authorization: Bearer <token>`; " + MintHint);
        var text = authorization.AsSpan().Trim();
        if (!text.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Unauthorized("bad-authorization", "the Authorization header must read `Bearer <token>`");
        var token = Encoding.UTF8.GetBytes(text["Bearer ".Length..].Trim().ToString());
        TokenClaims? claims;
        string error;
        try
        {
            claims = _tokens.Current.Authority.Verify(token, now, out error);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(token);
        }
        if (claims is null) return Unauthorized("invalid-token", "the token was refused: " + error);
        if ((claims.Scopes & TokenScopes.Admin) == 0)
            return new(403, new AdminError("forbidden",
                $"the token for '{claims.Subject}' has the scopes {ScopeNames(claims.Scopes)}, not admin; " + MintHint));
        return new(200, null);
    }

    private static AdminVerdict Unauthorized(string code, string message) => new(401, new AdminError(code, message));

    private static string ScopeNames(TokenScopes scopes) =>
        scopes == TokenScopes.None ? "(none)" : scopes.ToString().ToLowerInvariant().Replace(", ", ",", StringComparison.Ordinal);
}
