namespace GeoRelay.Topology;

/// <summary>
/// <c>tls:</c> — TLS on every link. Peers (leader, relays, members) authenticate each other with
/// certificates issued by <see cref="CaFile"/> (mutual TLS; the certificate's common name must be the
/// node id claimed in the handshake). Learner and publish ports use TLS with server authentication.
/// Paths are absolute (relative ones in the file are resolved against the file's folder).
/// </summary>
public sealed record TlsConfig
{
    /// <summary><c>ca</c>: PEM file of the certificate authority every node certificate must chain to. Required.</summary>
    public required string CaFile { get; init; }

    /// <summary><c>certificates</c>: folder holding <c>&lt;node&gt;.crt</c> and <c>&lt;node&gt;.key</c> (PEM) for every node. Required.</summary>
    public required string CertificateDirectory { get; init; }

    /// <summary><c>learners</c>: learner ports use TLS. Default true.</summary>
    public bool Learners { get; init; } = true;

    /// <summary><c>publish</c>: the leader's publish port uses TLS. Default true.</summary>
    public bool Publish { get; init; } = true;

    public string CertificateFile(string nodeId) => Path.Combine(CertificateDirectory, nodeId + ".crt");

    public string KeyFile(string nodeId) => Path.Combine(CertificateDirectory, nodeId + ".key");
}

/// <summary>
/// <c>auth:</c> — tokens signed with HMAC-SHA256 by the keys in <see cref="KeyFile"/>, carrying an expiry
/// and the key prefixes their holder may read or publish. The keys never appear in the topology file.
/// Nodes re-read this section, the key file and the revocation file on SIGHUP.
/// </summary>
public sealed record AuthConfig
{
    /// <summary><c>key-file</c>: the signing keys, each with a key id, newest last (the newest signs); or, in the
    /// older format, one key (at least 32 bytes, base64 or raw) that takes the key id <c>legacy</c>. Required.</summary>
    public required string KeyFile { get; init; }

    /// <summary><c>revoked-keys</c>: key ids whose tokens are refused, and whose connections are cut. Default none.</summary>
    public IReadOnlyList<string> RevokedKeys { get; init; } = [];

    /// <summary><c>revoked-tokens</c>: token ids (16 hex digits, printed by <c>georelay token</c>) refused and cut. Default none.</summary>
    public IReadOnlyList<string> RevokedTokens { get; init; } = [];

    /// <summary><c>revoked-file</c>: a file with more revocations, one per line: <c>key KID</c> or <c>token ID</c>
    /// (<c>#</c> starts a comment). Default none.</summary>
    public string? RevokedFile { get; init; }

    /// <summary><c>learners</c>: learner ports require a token. Default true.</summary>
    public bool Learners { get; init; } = true;

    /// <summary><c>publish</c>: the publish port requires a token. Default true.</summary>
    public bool Publish { get; init; } = true;
}
