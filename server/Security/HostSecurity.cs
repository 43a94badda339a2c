using GeoRelay.Engines;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Security;

/// <summary>What an <see cref="EngineHost"/> enforces beyond the engine's own handshake checks.</summary>
public sealed record HostSecurity
{
    /// <summary>TLS material, or null for plain TCP everywhere.</summary>
    public NodeTls? Tls { get; init; }

    /// <summary>Learner ports speak TLS (with <see cref="Tls"/> set). Peer ports and dials always do.</summary>
    public bool TlsOnLearners { get; init; } = true;

    /// <summary>The publish port speaks TLS (with <see cref="Tls"/> set).</summary>
    public bool TlsOnPublish { get; init; } = true;

    /// <summary>Verifies tokens (and reloads their keys), or null when no port requires one.</summary>
    public TokenVerifier? Tokens { get; init; }

    /// <summary>Learner ports require a token with <see cref="TokenScopes.Learn"/>.</summary>
    public bool TokensOnLearners { get; init; } = true;

    /// <summary>The publish port requires a token with <see cref="TokenScopes.Publish"/>.</summary>
    public bool TokensOnPublish { get; init; } = true;

    public static HostSecurity None { get; } = new();

    public bool UsesTls(PortKind port) => Tls is not null && port switch
    {
        PortKind.Learner => TlsOnLearners,
        PortKind.Publish => TlsOnPublish,
        _ => true,
    };

    public TokenScopes RequiredScope(PortKind port) => Tokens is null ? TokenScopes.None : port switch
    {
        PortKind.Learner when TokensOnLearners => TokenScopes.Learn,
        PortKind.Publish when TokensOnPublish => TokenScopes.Publish,
        _ => TokenScopes.None,
    };
}
