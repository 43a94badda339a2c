using System.Globalization;
using System.Text.RegularExpressions;

namespace GeoRelay.Topology.Internal;

// The `tls:`, `auth:` and `insecure:` keys and the connection limits under `defaults:`.
internal sealed partial class TopologyReader
{
    private static readonly string[] TlsKeys = ["ca", "certificates", "learners", "publish"];
    private static readonly string[] AuthKeys = ["key-file", "learners", "publish", "revoked-keys", "revoked-tokens", "revoked-file"];

    private ClusterDefaults ReadLimit(ClusterDefaults d, string key, YamlNode value, string path)
    {
        if (key == "idle-timeout")
        {
            return TryDuration(value, path, allowZero: false, out var idle) ? d with { IdleTimeout = idle } : d;
        }
        if (key == "frame-timeout")
        {
            return TryDuration(value, path, allowZero: false, out var frame) ? d with { FrameTimeout = frame } : d;
        }
        if (!TryPositiveInt(value, path, out int count))
        {
            return d;
        }
        return key switch
        {
            "max-connections-per-port" => d with { MaxConnectionsPerPort = count },
            "max-connections-per-address" => d with { MaxConnectionsPerAddress = count },
            _ => d with { MaxSubscribesPerSecond = count },
        };
    }

    private TlsConfig? ReadTls(YamlNode value, string sourcePath)
    {
        if (!Expect<YamlMapping>(value, "tls", out var map, "tls: { ca: certs/ca.crt, certificates: certs }"))
        {
            return null;
        }
        string? ca = null, certificates = null;
        bool learners = true, publish = true;
        ForEachKey(map, "in 'tls'", TlsKeys, (key, _, v) =>
        {
            string path = "tls." + key;
            switch (key)
            {
                case "ca": ca = ReadPath(v, path, sourcePath); break;
                case "certificates": certificates = ReadPath(v, path, sourcePath); break;
                case "learners": learners = ReadBool(v, path, learners); break;
                case "publish": publish = ReadBool(v, path, publish); break;
            }
        });
        if (ca is null || certificates is null)
        {
            Problem(map, "tls needs both 'ca' (the CA certificate, PEM) and 'certificates' (the folder of <node>.crt and <node>.key)");
            return null;
        }
        return new TlsConfig { CaFile = ca, CertificateDirectory = certificates, Learners = learners, Publish = publish };
    }

    private AuthConfig? ReadAuth(YamlNode value, string sourcePath)
    {
        if (!Expect<YamlMapping>(value, "auth", out var map, "auth: { key-file: secrets/token.key }"))
        {
            return null;
        }
        string? keyFile = null, revokedFile = null;
        bool learners = true, publish = true;
        List<string> revokedKeys = [], revokedTokens = [];
        ForEachKey(map, "in 'auth'", AuthKeys, (key, _, v) =>
        {
            string path = "auth." + key;
            switch (key)
            {
                case "key-file": keyFile = ReadPath(v, path, sourcePath); break;
                case "learners": learners = ReadBool(v, path, learners); break;
                case "publish": publish = ReadBool(v, path, publish); break;
                case "revoked-keys": ReadIds(v, path, KeyIdPattern(), "a key id (letters, digits, '_' or '-', at most 32)", revokedKeys, lowerCase: false); break;
                case "revoked-tokens": ReadIds(v, path, TokenIdPattern(), "a token id (16 hex digits, as georelay token prints it)", revokedTokens, lowerCase: true); break;
                case "revoked-file": revokedFile = ReadPath(v, path, sourcePath); break;
            }
        });
        if (keyFile is null)
        {
            Problem(map, "auth needs 'key-file': the file holding the token signing keys (the keys never go in this file)");
            return null;
        }
        return new AuthConfig
        {
            KeyFile = keyFile, Learners = learners, Publish = publish,
            RevokedKeys = revokedKeys, RevokedTokens = revokedTokens, RevokedFile = revokedFile,
        };
    }

    private void ReadIds(YamlNode value, string path, Regex pattern, string what, List<string> into, bool lowerCase)
    {
        if (value is YamlScalar { IsNull: true } || !Expect<YamlSequence>(value, path, out var list, $"{path.Split('.')[1]}: [id-1, id-2]"))
        {
            return;
        }
        foreach (var item in list.Items)
        {
            if (!TryString(item, $"an entry of {path}", out string? id))
            {
                continue;
            }
            if (pattern.IsMatch(id))
            {
                into.Add(lowerCase ? id.ToLowerInvariant() : id);
            }
            else
            {
                Problem(item, $"{path}: '{id}' is not {what}");
            }
        }
    }

    /// <summary>
    /// Without TLS nodes refuse to start unless the file says <c>insecure: true</c> (reported here with a position, for
    /// check-config); with it, every address a node would serve plain TCP on that others can reach is a warning.
    /// </summary>
    private void CheckSecurityPosture(YamlMapping top, TlsConfig? tls, bool insecure, YamlNode? insecureAt, Dictionary<string, NodeDraft> nodes)
    {
        if (tls is null && !insecure)
        {
            _startProblems.Add(new ConfigProblem(fileName, (insecureAt ?? top).Line, (insecureAt ?? top).Column, SecurityPosture.MissingTls(fileName)));
            return;
        }
        foreach (var node in nodes.Values)
        {
            foreach (var (key, endpoint, at) in node.Endpoints)
            {
                if (endpoint.IsLoopback)
                {
                    continue;
                }
                string? exposure = key switch
                {
                    "listen" when tls is null => "insecure: true, so the peers connecting there are not authenticated (anyone who reaches it can pose as a node) and entries cross the network in the clear",
                    "learners" when tls is null || !tls.Learners => $"{(tls is null ? "insecure: true" : "tls.learners: false")}, so learners' tokens and entries cross the network in the clear",
                    // With tls the web endpoint serves HTTPS with the node's certificate, as the admin endpoint does.
                    "web" when tls is null => "insecure: true, so web clients' tokens and entries cross the network in the clear",
                    "publish" when tls is null || !tls.Publish => $"{(tls is null ? "insecure: true" : "tls.publish: false")}, so publishers' tokens and entries cross the network in the clear",
                    _ => null,
                };
                if (exposure is not null)
                {
                    _warnings.Add(new ConfigProblem(fileName, at.Line, at.Column, $"node '{node.Id}' {key} address {endpoint} is not loopback and speaks plain TCP: {exposure}"));
                }
            }
        }
    }

    // The same forms as the token code (transport/Security/AuthToken.cs) accepts; topology references nothing of ours.
    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$")]
    private static partial Regex KeyIdPattern();

    [GeneratedRegex("^[0-9a-fA-F]{16}$")]
    private static partial Regex TokenIdPattern();

    /// <summary>A file or folder path; relative ones are resolved against the topology file's folder. Existence is checked when a node starts.</summary>
    private string? ReadPath(YamlNode value, string path, string sourcePath)
    {
        if (!TryString(value, path, out string? text))
        {
            return null;
        }
        if (text.Length == 0)
        {
            Problem(value, $"{path} is empty");
            return null;
        }
        string folder = Path.GetDirectoryName(Path.GetFullPath(sourcePath)) ?? ".";
        return Path.GetFullPath(Path.Combine(folder, text));
    }

    private bool ReadBool(YamlNode value, string path, bool fallback)
    {
        if (!TryString(value, path, out string? flag))
        {
            return fallback;
        }
        if (flag is "true" or "True" or "TRUE")
        {
            return true;
        }
        if (flag is "false" or "False" or "FALSE")
        {
            return false;
        }
        Problem(value, $"{path} must be true or false, not '{flag}'");
        return fallback;
    }
}
