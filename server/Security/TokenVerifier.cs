using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Security;

/// <summary>The keys and revocations tokens are checked against, and how many reloads produced them.</summary>
public sealed record TokenSnapshot(TokenAuthority Authority, int Version);

/// <summary>What a reload did: whether it took effect, and a line for the log.</summary>
public readonly record struct TokenReload(bool Reloaded, string Message);

/// <summary>
/// A node's token keys and revocations, from the topology's <c>auth</c> section and the files it names. <see cref="Reload"/>
/// (on SIGHUP) re-reads them all and swaps them in at once: a handshake checks against one snapshot, and a connection
/// admitted under an older snapshot is checked again at the host's next sweep, which cuts it if its token was revoked.
/// </summary>
public sealed class TokenVerifier : IDisposable
{
    private readonly string _topologyPath;
    private readonly object _reloading = new();
    // Replaced authorities are cleared only when the node stops: a handshake may still be verifying with one.
    private readonly List<TokenAuthority> _retired = new();
    private TokenSnapshot _current;

    public TokenVerifier(TokenAuthority authority, string topologyPath)
    {
        _current = new TokenSnapshot(authority, 0);
        _topologyPath = topologyPath;
    }

    /// <summary>Reads the key file and the revocations <paramref name="auth"/> names.</summary>
    /// <exception cref="IOException">A file cannot be read.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it and the line.</exception>
    public static TokenVerifier Load(AuthConfig auth, string topologyPath) => new(Build(auth), topologyPath);

    public TokenSnapshot Current => Volatile.Read(ref _current);

    /// <summary>Re-reads the topology file's <c>auth</c> section and its files; on any problem keeps what it had and says why.</summary>
    public TokenReload Reload()
    {
        lock (_reloading)
        {
            var result = TopologyLoader.LoadFile(_topologyPath);
            if (!result.Success)
                return new(false, $"{_topologyPath} has problems, keeping the current token keys: {string.Join("; ", result.Problems)}");
            if (result.Config.Auth is not { } auth)
                return new(false, $"{_topologyPath} has no auth section any more; tokens stay required until a restart");
            TokenAuthority next;
            try
            {
                next = Build(auth);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException)
            {
                return new(false, "keeping the current token keys: " + e.Message);
            }
            var previous = Current;
            _retired.Add(previous.Authority);
            Volatile.Write(ref _current, new TokenSnapshot(next, previous.Version + 1));
            var revoked = next.Revocations;
            return new(true, $"{string.Join(", ", next.KeyIds)} ({next.SigningKeyId} signs); revoked: {revoked.KeyIds.Count} key(s), {revoked.TokenIds.Count} token(s)");
        }
    }

    private static TokenAuthority Build(AuthConfig auth)
    {
        var keys = TokenKeyFile.Read(auth.KeyFile, out _);
        try
        {
            return new TokenAuthority(keys, TokenRevocations.Load(auth.RevokedKeys, auth.RevokedTokens, auth.RevokedFile));
        }
        catch
        {
            foreach (var k in keys) System.Security.Cryptography.CryptographicOperations.ZeroMemory(k.Bytes);
            throw;
        }
    }

    public void Dispose()
    {
        lock (_reloading)
        {
            Current.Authority.Dispose();
            foreach (var a in _retired) a.Dispose();
        }
    }
}
