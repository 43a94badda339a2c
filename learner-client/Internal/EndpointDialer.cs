using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using GeoRelay.Transport.Security;
using Microsoft.Extensions.Logging;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// Opens a handshaken connection to one of <paramref name="endpoints"/> (the options' in the order the client tries them):
/// TCP (keep-alive, receive buffer), TLS when configured, then Hello as <paramref name="kind"/>. Clients ask for no
/// compression: learners get the relay's one shared uncompressed buffer, and a publisher's acks are tiny.
/// </summary>
internal sealed class EndpointDialer(GeoRelayClientOptions options, IReadOnlyList<string> endpoints, NodeKind kind, ConnectionOptions connection,
    ILogger logger, int receiveBufferSize = 0) : IDisposable
{
    private readonly EndPoint[] _endpoints = Parse(endpoints);
    // A learner asks to be heartbeated (LearnerClientOptions.SilenceTimeout); a publisher's acks need none.
    private readonly Hello _hello = Hello.ForThisBuild(options.NodeId, kind, epoch: 0, options.Cluster, topologyHash: 0,
        kind == NodeKind.Learner ? Capabilities.LearnerHeartbeats : Capabilities.None,
        options.AuthToken is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(options.AuthToken));
    private readonly NodeTls? _tls = options.TlsCaFile is null ? null
        : new NodeTls(X509CertificateLoader.LoadCertificateFromFile(options.TlsCaFile), null);

    public int Count => _endpoints.Length;

    /// <summary>The endpoints in the order they are tried, as the options spell them.</summary>
    public IReadOnlyList<string> Endpoints => endpoints;

    /// <summary>The endpoint as the options spell it.</summary>
    public string Name(int endpoint) => endpoints[endpoint];

    /// <summary>The index of the endpoint <paramref name="name"/> is (the same spelling, or the same address), or -1.</summary>
    public int IndexOf(string name)
    {
        for (int i = 0; i < _endpoints.Length; i++)
            if (string.Equals(endpoints[i], name, StringComparison.OrdinalIgnoreCase)) return i;
        EndPoint parsed;
        try
        {
            parsed = EndpointAddress.Parse(name);
        }
        catch (ArgumentException)
        {
            return -1;
        }
        for (int i = 0; i < _endpoints.Length; i++)
            if (EndpointAddress.Same(_endpoints[i], parsed)) return i;
        return -1;
    }

    public Task<FramedConnection> DialAsync(int endpoint, CancellationToken ct) => DialAsync(_endpoints[endpoint], ct);

    /// <summary>
    /// Dials an address that need not be one of the options' endpoints (a leader a node named); a node of the previous
    /// protocol version is redialed once with a Hello it accepts (see <see cref="Handshake.FallbackHello"/>).
    /// </summary>
    public async Task<FramedConnection> DialAsync(EndPoint target, CancellationToken ct)
    {
        try
        {
            return await DialAsync(target, _hello, ct).ConfigureAwait(false);
        }
        catch (HandshakeRefusedException e) when (Handshake.FallbackHello(_hello, e) is { } fallback)
        {
            EndpointDialerLog.ProtocolFallback(logger, target.ToString() ?? "", fallback.MaxVersion);
            return await DialAsync(target, fallback, ct).ConfigureAwait(false);
        }
    }

    private async Task<FramedConnection> DialAsync(EndPoint target, Hello hello, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = target is IPEndPoint ip
            ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        FramedConnection? framed = null;
        try
        {
            if (receiveBufferSize > 0) socket.ReceiveBufferSize = receiveBufferSize;
            if (options.KeepAlive > TimeSpan.Zero)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, Math.Max(1, (int)options.KeepAlive.TotalSeconds));
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Math.Max(1, (int)options.KeepAlive.TotalSeconds / 5));
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 5);
            }
            await socket.ConnectAsync(target, timeout.Token).ConfigureAwait(false);
            framed = _tls is not null || options.TlsValidation is not null
                ? await FramedConnection.SecureAsync(socket, connection, TlsOptions(target), timeout.Token).ConfigureAwait(false)
                : new FramedConnection(socket, connection);
            framed.StartWriting();
            await Handshake.DialAsync(framed, hello, options.ConnectTimeout, timeout.Token).ConfigureAwait(false);
            return framed;
        }
        catch
        {
            if (framed is not null) await framed.DisposeAsync().ConfigureAwait(false);
            else socket.Dispose();
            throw;
        }
    }

    private SslClientAuthenticationOptions TlsOptions(EndPoint target)
    {
        string host = options.TlsServerName ?? target switch
        {
            IPEndPoint ip => ip.Address.ToString(),
            DnsEndPoint dns => dns.Host,
            _ => target.ToString() ?? "",
        };
        var tls = _tls?.ClientOptions(host, expectedNodeId: null) ?? new SslClientAuthenticationOptions { TargetHost = host };
        if (options.TlsValidation is not null) tls.RemoteCertificateValidationCallback = options.TlsValidation;
        return tls;
    }

    private static EndPoint[] Parse(IReadOnlyList<string> endpoints)
    {
        var parsed = new EndPoint[endpoints.Count];
        for (int i = 0; i < parsed.Length; i++) parsed[i] = EndpointAddress.Parse(endpoints[i]);
        return parsed;
    }

    public void Dispose() => _tls?.Dispose();
}
