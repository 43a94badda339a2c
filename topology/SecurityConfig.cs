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
/// <c>auth:</c> — tokens signed with HMAC-SHA256 by the key in <see cref="KeyFile"/>, carrying an expiry
/// and the key prefixes their holder may read or publish. The key itself never appears in the topology file.
/// </summary>
public sealed record AuthConfig
{
    /// <summary><c>key-file</c>: file holding the signing key (at least 32 bytes, base64 or raw). Required.</summary>
    public required string KeyFile { get; init; }

    /// <summary><c>learners</c>: learner ports require a token. Default true.</summary>
    public bool Learners { get; init; } = true;

    /// <summary><c>publish</c>: the publish port requires a token. Default true.</summary>
    public bool Publish { get; init; } = true;
}
