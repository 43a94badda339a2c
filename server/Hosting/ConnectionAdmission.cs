using System.ComponentModel;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Transport;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Decides whether an accepted socket becomes a connection, within the handshake timeout: TLS where the port speaks it
/// (a peer port's client certificate names the node), then the handshake, with the port's token scope and the engine's
/// own check. A refusal is counted, logged and told to the peer where it can be.
/// </summary>
internal sealed class ConnectionAdmission(ConnectionOptions options, HostSecurity security, AddressBlacklist blacklist, EngineLoop loop,
    RefusalCounters refusals, ILogger logger, CancellationToken stopping)
{
    /// <summary>The admitted connection, who it is and its guard; null when it was refused (and disposed).</summary>
    public async Task<(FramedConnection Connection, PeerInfo Peer, ConnectionGuard Guard)?> AdmitAsync(Socket socket, PortKind port)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(options.HandshakeTimeout);
        string? certifiedNode = null;
        SslStream? tls = null;
        if (security.UsesTls(port))
        {
            bool peerPort = port == PortKind.Peer;
            tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
            try
            {
                await tls.AuthenticateAsServerAsync(security.Tls!.ServerOptions(requireClientCertificate: peerPort), deadline.Token).ConfigureAwait(false);
                if (peerPort)
                {
                    if (tls.RemoteCertificate is not System.Security.Cryptography.X509Certificates.X509Certificate2 cert)
                        throw new AuthenticationException("the peer presented no certificate");
                    certifiedNode = NodeTls.NodeIdOf(cert);
                }
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException or Win32Exception)
            {
                bool timedOut = e is OperationCanceledException && !stopping.IsCancellationRequested;
                refusals.Add(timedOut ? RefusalKind.HandshakeTimeout : RefusalKind.Tls);
                EngineHostLog.Refused(logger, socket.RemoteEndPoint, timedOut ? CodecError.Timeout : CodecError.Unauthorized,
                    timedOut ? $"no TLS handshake within {options.HandshakeTimeout.TotalMilliseconds:0} ms" : "TLS handshake failed: " + e.Message);
                await tls.DisposeAsync().ConfigureAwait(false);
                socket.Dispose();
                return null;
            }
        }
        var connection = new FramedConnection(socket, options, tls);
        connection.StartWriting();
        Hello hello;
        ushort version;
        TokenClaims? claims = null;
        int tokenVersion = 0;
        RefusalKind refusal = RefusalKind.HandshakeRefused;
        try
        {
            (hello, version) = await Handshake.AcceptAsync(connection, loop.LocalHello, h =>
            {
                // Refused in the handshake, not at accept: after TLS is the first point the client can be told why.
                if (port is PortKind.Learner or PortKind.Publish && socket.RemoteEndPoint is System.Net.IPEndPoint { Address: var address }
                    && blacklist.Match(address) is { } entry)
                {
                    refusal = RefusalKind.Blacklisted;
                    return new CodecException(CodecError.Unauthorized, AddressBlacklist.Refusal(address, entry));
                }
                if (certifiedNode is not null && h.NodeId != certifiedNode)
                {
                    refusal = RefusalKind.Tls;
                    return new CodecException(CodecError.Unauthorized, $"certificate is for node '{certifiedNode}' but the handshake claims '{h.NodeId}'");
                }
                var scope = security.RequiredScope(port);
                if (scope != TokenScopes.None)
                {
                    var tokens = security.Tokens!.Current;
                    tokenVersion = tokens.Version;
                    claims = tokens.Authority.Verify(h.Auth.Span, DateTimeOffset.UtcNow, out string error);
                    if (claims is null || (claims.Scopes & scope) == 0)
                    {
                        refusal = RefusalKind.Unauthorized;
                        return new CodecException(CodecError.Unauthorized, claims is null ? error : $"token for '{claims.Subject}' does not allow {scope}");
                    }
                }
                return loop.CheckPeer(h, port);
            }, options.HandshakeTimeout, deadline.Token).ConfigureAwait(false);
            ClearAuth(hello);
        }
        catch (Exception e) when (e is CodecException or OperationCanceledException or IOException or SocketException)
        {
            var (reason, message) = e is CodecException ce ? (ce.Reason, ce.Detail) : (CodecError.Protocol, e.Message);
            if (e is OperationCanceledException && !stopping.IsCancellationRequested)
            {
                (reason, message) = (CodecError.Timeout, $"no handshake within {options.HandshakeTimeout.TotalMilliseconds:0} ms");
                connection.Close(reason, message); // tells a slow but honest client why
                refusal = RefusalKind.HandshakeTimeout;
            }
            else if (reason == CodecError.Timeout) refusal = RefusalKind.HandshakeTimeout;
            else if (reason == CodecError.TooLarge) refusal = RefusalKind.FrameTooLarge;
            refusals.Add(refusal);
            EngineHostLog.Refused(logger, connection.RemoteEndPoint, reason, message);
            await connection.DisposeAsync().ConfigureAwait(false);
            return null;
        }
        var guard = new ConnectionGuard(port, claims, options.MaxSubscribesPerSecond) { TokenVersion = tokenVersion };
        return (connection, new PeerInfo(hello.NodeId, hello.Kind, hello.Epoch, port, hello.Capabilities, version), guard);
    }

    /// <summary>The token has been checked: its bytes need not linger in memory.</summary>
    private static void ClearAuth(in Hello hello)
    {
        if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(hello.Auth, out var segment) && segment.Array is not null)
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(segment.AsSpan());
    }
}
