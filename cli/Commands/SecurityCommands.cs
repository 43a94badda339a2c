using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using GeoRelay.Topology;
using GeoRelay.Transport.Security;

namespace GeoRelay.Cli;

/// <summary><c>georelay token</c> (mint tokens; create and rotate signing keys) and <c>georelay dev-certs</c> (a CA and node certificates).</summary>
public static class SecurityCommands
{
    public static IEnumerable<Command> Create() => [Token(), DevCerts()];

    /// <summary>Whether a node may start with <paramref name="topology"/>; if not, says why and what to add (on stderr).</summary>
    public static bool MayStart(TopologyConfig topology)
    {
        if (SecurityPosture.StartRefusal(topology) is not { } refusal) return true;
        Console.Error.WriteLine(refusal);
        return false;
    }

    private static Command Token()
    {
        var config = new Option<string?>("--config") { Description = "Topology file whose auth.key-file signs the token" };
        var subject = new Option<string>("--subject") { Description = "Who the token is for (shown in logs and refusals)", DefaultValueFactory = _ => "learner" };
        var prefixes = new Option<string[]>("--prefix") { Description = "Key prefix the holder may read or publish; repeat for several; default every key", AllowMultipleArgumentsPerToken = false };
        var ttl = new Option<string>("--ttl") { Description = "How long the token is valid: 30m, 12h, ...", DefaultValueFactory = _ => "24h" };
        var scope = new Option<TokenScopes>("--scope")
        {
            Description = "learn, publish, admin, or several joined by commas (learn,admin); all means learn and publish, never admin",
            HelpName = "scopes",
            DefaultValueFactory = _ => TokenScopes.Learn,
            CustomParser = result =>
            {
                string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (TryParseScopes(text, out var parsed, out var problem)) return parsed;
                result.AddError("--scope: " + problem);
                return TokenScopes.None;
            },
        };
        var newKey = new Option<string?>("--new-key") { HelpName = "file", Description = "Instead: write a new key file with one fresh signing key, readable by its owner only (refuses to overwrite a file)" };
        var addKey = new Option<string?>("--add-key") { HelpName = "file", Description = "Instead: add a fresh key to this key file; it signs from then on, older keys still verify (an older single-key file is converted, its key named 'legacy'). Then SIGHUP the nodes" };
        var removeKey = new Option<string?>("--remove-key") { HelpName = "file", Description = "Instead: remove the key named by --kid from this key file; its tokens are refused (and cut) once the nodes get SIGHUP" };
        var listKeys = new Option<string?>("--list-keys") { HelpName = "file", Description = "Instead: list the key ids in this key file, oldest first, and which one signs" };
        var kid = new Option<string?>("--kid") { HelpName = "id", Description = "The key id for --new-key or --add-key (default: k<date>-<time>), or the key to --remove-key" };
        var command = new Command("token", "Mint an authentication token (printed on stdout, its id on stderr), or manage the signing keys with --new-key, --add-key, --remove-key, --list-keys")
        {
            config, subject, prefixes, ttl, scope, newKey, addKey, removeKey, listKeys, kid,
        };
        command.SetAction(parse =>
        {
            var error = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            try
            {
                if (parse.GetValue(newKey) is { } newPath) return NewKeyFile(newPath, parse.GetValue(kid), error);
                if (parse.GetValue(addKey) is { } addPath) return AddKey(addPath, parse.GetValue(kid), error);
                if (parse.GetValue(removeKey) is { } removePath) return RemoveKey(removePath, parse.GetValue(kid), error);
                if (parse.GetValue(listKeys) is { } listPath) return ListKeys(listPath, output);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                error.WriteLine(e.Message);
                return 2;
            }
            if (parse.GetValue(config) is not { } configPath)
            {
                error.WriteLine("--config is required (its auth.key-file signs the token), or use --new-key, --add-key, --remove-key or --list-keys");
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
            var scopes = parse.GetValue(scope);
            TokenAuthority authority;
            try
            {
                authority = TokenAuthority.LoadKeyFile(topology.Auth.KeyFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                error.WriteLine(e.Message);
                return 2;
            }
            using (authority)
            {
                var claims = new TokenClaims(parse.GetValue(subject)!, DateTimeOffset.UtcNow + lifetime, scopes, allowed) { Id = TokenClaims.NewId() };
                output.WriteLine(authority.Mint(claims));
                error.WriteLine($"token {claims.Id} for '{claims.Subject}', signed with key '{authority.SigningKeyId}', expires {claims.Expires:u} (revoke it with auth.revoked-tokens: [{claims.Id}])");
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// <c>learn</c>, <c>publish</c>, <c>admin</c> or <c>all</c>, or several joined by commas. <c>all</c> keeps the meaning it had
    /// before the admin scope existed (learn and publish): a script minting "all" tokens for applications must not hand out admin.
    /// </summary>
    internal static bool TryParseScopes(string text, out TokenScopes scopes, out string? problem)
    {
        scopes = TokenScopes.None;
        problem = null;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            switch (part)
            {
                case "learn": scopes |= TokenScopes.Learn; break;
                case "publish": scopes |= TokenScopes.Publish; break;
                case "admin": scopes |= TokenScopes.Admin; break;
                case "all": scopes |= TokenScopes.Learn | TokenScopes.Publish; break;
                default:
                    problem = $"'{part}' in '{text}' is not a scope; use learn, publish, admin or all, joined by commas (learn,admin)";
                    return false;
            }
        }
        return true;
    }

    private static int NewKeyFile(string path, string? kid, TextWriter error)
    {
        if (!ValidKeyId(kid, error)) return 2;
        if (File.Exists(path))
        {
            error.WriteLine($"{path} exists; use --add-key to add a key to it (rotation), or remove it first");
            return 2;
        }
        var key = TokenKeyFile.NewKey(kid);
        WriteSecret(path, TokenKeyFile.Format([key]), replace: false);
        error.WriteLine($"wrote a new token key file to {path} with key '{key.Id}'; name it in the topology as auth.key-file");
        return 0;
    }

    private static int AddKey(string path, string? kid, TextWriter error)
    {
        if (!ValidKeyId(kid, error)) return 2;
        var keys = TokenKeyFile.Read(path, out bool olderFormat);
        var key = TokenKeyFile.NewKey(kid);
        if (keys.Exists(k => k.Id == key.Id))
        {
            error.WriteLine($"{path} already has a key '{key.Id}'; choose another with --kid");
            return 2;
        }
        keys.Add(key);
        WriteSecret(path, TokenKeyFile.Format(keys), replace: true);
        error.WriteLine((olderFormat ? $"converted {path} to the key-ring format (its key is now '{TokenAuthority.LegacyKeyId}') and added" : $"added to {path}")
            + $" key '{key.Id}', which signs new tokens once the nodes reload (kill -HUP); tokens of the older keys stay valid until those are removed");
        return 0;
    }

    private static int RemoveKey(string path, string? kid, TextWriter error)
    {
        if (kid is null)
        {
            error.WriteLine("--remove-key needs --kid, the id of the key to remove (--list-keys shows them)");
            return 2;
        }
        var keys = TokenKeyFile.Read(path, out _);
        int removed = keys.RemoveAll(k => k.Id == kid);
        if (removed == 0)
        {
            error.WriteLine($"{path} has no key '{kid}'; it has {string.Join(", ", keys.ConvertAll(k => k.Id))}");
            return 2;
        }
        if (keys.Count == 0)
        {
            error.WriteLine($"'{kid}' is the only key in {path}; add another (--add-key) before removing it");
            return 2;
        }
        WriteSecret(path, TokenKeyFile.Format(keys), replace: true);
        error.WriteLine($"removed key '{kid}' from {path}; once the nodes reload (kill -HUP) its tokens are refused and their connections cut");
        return 0;
    }

    private static int ListKeys(string path, TextWriter output)
    {
        var keys = TokenKeyFile.Read(path, out bool olderFormat);
        for (int i = 0; i < keys.Count; i++)
            output.WriteLine(keys[i].Id + (i == keys.Count - 1 ? " (signs)" : ""));
        if (olderFormat) output.WriteLine("(older single-key format: --add-key converts it)");
        return 0;
    }

    private static bool ValidKeyId(string? kid, TextWriter error)
    {
        if (kid is null || TokenClaims.IsKeyId(kid)) return true;
        error.WriteLine($"--kid: '{kid}' is not a key id (1 to 32 letters, digits, '_' or '-')");
        return false;
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
            var error = parse.InvocationConfiguration.Error;
            error.WriteLine($"wrote ca.crt and {topology.Nodes.Count} node certificates to {Path.GetFullPath(dir)}");
            if (topology.Tls is { } tls && Path.GetFullPath(dir).TrimEnd('/') != tls.CertificateDirectory.TrimEnd('/'))
                error.WriteLine($"note: the topology expects them in {tls.CertificateDirectory}");
            if (topology.Tls is null)
                error.WriteLine($"note: {topology.SourcePath} has no tls section; add\n  tls:\n    ca: {Path.Combine(Path.GetFullPath(dir), "ca.crt")}\n    certificates: {Path.GetFullPath(dir)}"
                    + (topology.Insecure ? "\nand remove insecure: true" : ""));
            return 0;
        });
        return command;
    }

    /// <summary>Writes a file readable by its owner only; with <paramref name="replace"/> through a temporary file, so a crash leaves the old one whole.</summary>
    internal static void WriteSecret(string path, string text, bool replace)
    {
        string target = replace ? path + ".new" : path;
        var options = new FileStreamOptions { Mode = replace ? FileMode.Create : FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(target, options))
        {
            file.Write(Encoding.ASCII.GetBytes(text));
            file.Flush(flushToDisk: true);
        }
        if (replace) File.Move(target, path, overwrite: true);
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
        SecurityCommands.WriteSecret(Path.Combine(directory, "ca.key"), caKey.ExportPkcs8PrivateKeyPem() + "\n", replace: true);
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
        SecurityCommands.WriteSecret(Path.Combine(directory, subject + ".key"), key.ExportPkcs8PrivateKeyPem() + "\n", replace: true);
    }

    private static void TryAddName(SubjectAlternativeNameBuilder names, HashSet<string> seen, string name)
    {
        seen.Add(name);
        try { names.AddDnsName(name); }
        catch (ArgumentException) { } // not a DNS name (e.g. has '_'): the common name still carries the node id
    }
}
