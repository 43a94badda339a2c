using System.Globalization;

namespace GeoRelay.Topology.Internal;

// The `tls:` and `auth:` sections and the connection limits under `defaults:`.
internal sealed partial class TopologyReader
{
    private static readonly string[] TlsKeys = ["ca", "certificates", "learners", "publish"];
    private static readonly string[] AuthKeys = ["key-file", "learners", "publish"];

    private ClusterDefaults ReadLimit(ClusterDefaults d, string key, YamlNode value, string path)
    {
        if (key == "idle-timeout")
        {
            return TryDuration(value, path, allowZero: false, out var idle) ? d with { IdleTimeout = idle } : d;
        }
        if (!TryString(value, path, out string? text))
        {
            return d;
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count < 1)
        {
            Problem(value, $"{path} must be a whole number from 1 to {int.MaxValue}, not '{text}'");
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
        string? keyFile = null;
        bool learners = true, publish = true;
        ForEachKey(map, "in 'auth'", AuthKeys, (key, _, v) =>
        {
            string path = "auth." + key;
            switch (key)
            {
                case "key-file": keyFile = ReadPath(v, path, sourcePath); break;
                case "learners": learners = ReadBool(v, path, learners); break;
                case "publish": publish = ReadBool(v, path, publish); break;
            }
        });
        if (keyFile is null)
        {
            Problem(map, "auth needs 'key-file': the file holding the token signing key (the key never goes in this file)");
            return null;
        }
        return new AuthConfig { KeyFile = keyFile, Learners = learners, Publish = publish };
    }

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
