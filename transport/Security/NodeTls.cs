using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace GeoRelay.Transport.Security;

/// <summary>
/// TLS material of one node: the cluster CA every peer certificate must chain to, and this node's own
/// certificate and key. A node certificate names its node id as its common name.
/// </summary>
public sealed class NodeTls : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2? _own;
    private readonly SslStreamCertificateContext? _context;

    public NodeTls(X509Certificate2 ca, X509Certificate2? own)
    {
        _ca = ca;
        _own = own;
        if (own is not null) _context = SslStreamCertificateContext.Create(own, additionalCertificates: null, offline: true);
    }

    /// <summary>Loads PEM files; <paramref name="certificateFile"/> and <paramref name="keyFile"/> may be null for a client without a certificate.</summary>
    public static NodeTls Load(string caFile, string? certificateFile, string? keyFile)
    {
        var ca = X509CertificateLoader.LoadCertificateFromFile(caFile);
        X509Certificate2? own = null;
        if (certificateFile is not null)
            own = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        return new NodeTls(ca, own);
    }

    public X509Certificate2 Ca => _ca;

    /// <summary>The node id a certificate speaks for: its common name.</summary>
    public static string NodeIdOf(X509Certificate2 certificate) => certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>Whether <paramref name="certificate"/> chains to the cluster CA (no revocation lists: a dev/closed PKI).</summary>
    public bool ChainsToCa(X509Certificate? certificate, out string error)
    {
        error = "";
        if (certificate is null)
        {
            error = "no certificate presented";
            return false;
        }
        using var cert = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain.Build(cert)) return true;
        var status = chain.ChainStatus.Length > 0 ? chain.ChainStatus[0].StatusInformation.Trim() : "unknown chain error";
        error = $"certificate '{cert.Subject}' does not chain to the cluster CA: {status}";
        return false;
    }

    /// <summary>Server side. Peer ports require a client certificate from the CA; learner and publish ports do not ask for one.</summary>
    public SslServerAuthenticationOptions ServerOptions(bool requireClientCertificate)
    {
        if (_context is null) throw new InvalidOperationException("this node has no certificate to serve TLS with");
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _context,
            ClientCertificateRequired = requireClientCertificate,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = requireClientCertificate
                ? (_, certificate, _, _) => ChainsToCa(certificate, out _)
                : (_, _, _, _) => true,
        };
    }

    /// <summary>
    /// Client side. With <paramref name="expectedNodeId"/> (a peer link) the server's certificate must chain to
    /// the CA and name that node; without it (learners, publishers) the usual host name check applies.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost, string? expectedNodeId) => new()
    {
        TargetHost = expectedNodeId ?? targetHost,
        ClientCertificateContext = _context,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (!ChainsToCa(certificate, out _)) return false;
            if (expectedNodeId is not null)
                return certificate is not null && NodeIdOf(new X509Certificate2(certificate)) == expectedNodeId;
            return (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
        },
    };

    public void Dispose()
    {
        _own?.Dispose();
        _ca.Dispose();
    }
}
