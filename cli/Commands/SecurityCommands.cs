using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Cli;

/// <summary><c>georelay token</c> (mint tokens, or a fresh signing key) and <c>georelay dev-certs</c> (a CA and node certificates).</summary>
public static class SecurityCommands
{
    public static IEnumerable<Command> Create() => [Token(), DevCerts()];

    private static Command Token()
    {
        var config = new Option<string?>("--config") { Description = "Topology file whose auth.key-file signs the token" };
        var subject = new Option<string>("--subject") { Description = "Who the token is for (shown in logs and refusals)", DefaultValueFactory = _ => "learner" };
        var prefixes = new Option<string[]>("--prefix") { Description = "Key prefix the holder may read or publish; repeat for several; default every key", AllowMultipleArgumentsPerToken = false };
        var ttl = new Option<string>("--ttl") { Description = "How long the token is valid: 30m, 12h, ...", DefaultValueFactory = _ => "24h" };
        var scope = new Option<string>("--scope") { Description = "learn, publish or all", DefaultValueFactory = _ => "learn" };
        scope.AcceptOnlyFromAmong("learn", "publish", "all");
        var newKey = new Option<string?>("--new-key") { Description = "Instead: write a fresh random signing key (base64) to this file, readable by its owner only" };
        var command = new Command("token", "Mint an authentication token (printed on stdout), or write a new signing key with --new-key")
        {
            config, subject, prefixes, ttl, scope, newKey,
        };
        command.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            if (parse.GetValue(newKey) is { } keyPath)
            {
                WriteSecret(keyPath, TokenAuthority.NewKeyText() + "\n");
                error.WriteLine($"wrote a new token signing key to {keyPath}; name it in the topology as auth.key-file");
                return 0;
            }
            if (parse.GetValue(config) is not { } configPath)
            {
                error.WriteLine("--config is required (its auth.key-file signs the token), or use --new-key FILE");
                return 2;
            }
            var topology = DaemonCommands.Load(configPath);
            if (topology is null) return 2;
            if (topology.Auth is null)
            {
                error.WriteLine($"{configPath}: has no auth section, so no key to sign with");
                return 2;
            }
            if (!ConfigUnits.TryParseDuration(parse.GetValue(ttl), out var lifetime, out var ttlError) || lifetime <= TimeSpan.Zero)
            {
                error.WriteLine($"--ttl: {ttlError ?? "must be longer than 0"}");
                return 2;
            }
            var given = parse.GetValue(prefixes) ?? [];
            var allowed = given.Length == 0 ? new[] { Array.Empty<byte>() } : Array.ConvertAll(given, p => Encoding.UTF8.GetBytes(p));
            var scopes = parse.GetValue(scope) switch { "publish" => TokenScopes.Publish, "all" => TokenScopes.Learn | TokenScopes.Publish, _ => TokenScopes.Learn };
            using var authority = TokenAuthority.LoadKeyFile(topology.Auth.KeyFile);
            var claims = new TokenClaims(parse.GetValue(subject)!, DateTimeOffset.UtcNow + lifetime, scopes, allowed);
            parse.InvocationConfiguration.Output.WriteLine(authority.Mint(claims));
            return 0;
        });
        return command;
    }

    private static Command DevCerts()
    {
        var config = new Option<string>("--config") { Description = "Topology file: one certificate per node", Required = true };
        var output = new Option<string>("--out") { Description = "Folder to write ca.crt, ca.key and <node>.crt/.key to", Required = true };
        var days = new Option<int>("--days") { Description = "Validity in days", DefaultValueFactory = _ => 365 };
        var command = new Command("dev-certs", "Create a CA and one certificate per node of a topology, for local use (not for production)") { config, output, days };
        command.SetAction(parse =>
        {
            var topology = DaemonCommands.Load(parse.GetValue(config)!);
            if (topology is null) return 2;
            var dir = parse.GetValue(output)!;
            DevCertificates.Write(topology, dir, TimeSpan.FromDays(parse.GetValue(days)));
            parse.InvocationConfiguration.Error.WriteLine($"wrote ca.crt and {topology.Nodes.Count} node certificates to {Path.GetFullPath(dir)}");
            if (topology.Tls is { } tls && Path.GetFullPath(dir).TrimEnd('/') != tls.CertificateDirectory.TrimEnd('/'))
                parse.InvocationConfiguration.Error.WriteLine($"note: the topology expects them in {tls.CertificateDirectory}");
            return 0;
        });
        return command;
    }

    internal static void WriteSecret(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var file = new FileStream(path, options);
        file.Write(Encoding.ASCII.GetBytes(text));
    }
}

/// <summary>A throwaway PKI for a topology: an ECDSA P-256 CA and one certificate per node (CN = node id).</summary>
public static class DevCertificates
{
    public static void Write(TopologyConfig topology, string directory, TimeSpan validity)
    {
        Directory.CreateDirectory(directory);
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = notBefore + validity;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN=GeoRelay dev CA ({topology.Cluster})", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);
        File.WriteAllText(Path.Combine(directory, "ca.crt"), ca.ExportCertificatePem() + "\n");
        SecurityCommands.WriteSecret(Path.Combine(directory, "ca.key"), caKey.ExportPkcs8PrivateKeyPem() + "\n");
        foreach (var (id, node) in topology.Nodes)
            WriteNode(ca, directory, id, [node.Listen, node.Publish, node.Learners, node.Admin], notBefore, notAfter);
    }

    /// <summary>One certificate signed by <paramref name="ca"/> for <paramref name="subject"/>, valid for both server and client use.</summary>
    public static void WriteNode(X509Certificate2 ca, string directory, string subject, NodeEndpoint?[] addresses,
        DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + subject), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client auth
        var names = new SubjectAlternativeNameBuilder();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        TryAddName(names, seen, subject);
        foreach (var address in addresses)
        {
            if (address is not { } a || !seen.Add(a.Host)) continue;
            if (IPAddress.TryParse(a.Host, out var ip)) names.AddIpAddress(ip);
            else TryAddName(names, seen, a.Host);
        }
        request.CertificateExtensions.Add(names.Build());
        Span<byte> serial = stackalloc byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7f;
        using var cert = request.Create(ca, notBefore, notAfter, serial);
        File.WriteAllText(Path.Combine(directory, subject + ".crt"), cert.ExportCertificatePem() + "\n");
        SecurityCommands.WriteSecret(Path.Combine(directory, subject + ".key"), key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    private static void TryAddName(SubjectAlternativeNameBuilder names, HashSet<string> seen, string name)
    {
        seen.Add(name);
        try { names.AddDnsName(name); }
        catch (ArgumentException) { } // not a DNS name (e.g. has '_'): the common name still carries the node id
    }
}
