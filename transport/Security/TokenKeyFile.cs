using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace GeoRelay.Transport.Security;

/// <summary>One token signing key and its id.</summary>
public sealed record TokenKey(string Id, byte[] Bytes);

/// <summary>
/// The token key file (<c>auth.key-file</c>). Its format:
/// <code>
/// # comments
/// georelay-token-keys 1
/// &lt;key id&gt; &lt;base64 key, at least 32 bytes&gt;     (one line per key, oldest first: the last one signs)
/// </code>
/// The older format, one key (base64 text or at least 32 raw bytes) and nothing else, is still read: that key gets
/// the id <see cref="TokenAuthority.LegacyKeyId"/>, which also verifies tokens of the first format (no key id).
/// </summary>
public static class TokenKeyFile
{
    public const string Header = "georelay-token-keys 1";
    private const string HeaderName = "georelay-token-keys";

    /// <summary>Reads the keys, oldest first; every buffer that held key bytes, but the returned keys, is cleared.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message names the file and line.</exception>
    public static List<TokenKey> Read(string path, out bool olderFormat)
    {
        byte[] raw = File.ReadAllBytes(path);
        try
        {
            olderFormat = !HasHeader(raw);
            return olderFormat ? [new TokenKey(TokenAuthority.LegacyKeyId, ReadSingleKey(path, raw))] : ReadKeys(path, raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>The file's text for <paramref name="keys"/> (oldest first). It holds secrets: write it readable by its owner only.</summary>
    public static string Format(IReadOnlyList<TokenKey> keys)
    {
        var text = new StringBuilder();
        text.Append("# GeoRelay token signing keys, oldest first: <key id> <base64 key>. The last key signs new tokens;\n");
        text.Append("# every key here verifies the tokens that name it. Rotate with georelay token --add-key / --remove-key.\n");
        text.Append(Header).Append('\n');
        foreach (var key in keys) text.Append(key.Id).Append(' ').Append(Convert.ToBase64String(key.Bytes)).Append('\n');
        return text.ToString();
    }

    /// <summary>A fresh random key with a key id from the current time (<c>k20250601-120000</c>) unless one is given.</summary>
    public static TokenKey NewKey(string? id = null) =>
        new(id ?? "k" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture),
            RandomNumberGenerator.GetBytes(TokenAuthority.MinKeyBytes));

    private static bool HasHeader(ReadOnlySpan<byte> raw)
    {
        foreach (var line in Lines(raw))
        {
            if (line.IsEmpty || line[0] == (byte)'#') continue;
            return line.StartsWith(Encoding.ASCII.GetBytes(HeaderName));
        }
        return false;
    }

    private static List<TokenKey> ReadKeys(string path, ReadOnlySpan<byte> raw)
    {
        var keys = new List<TokenKey>();
        int number = 0;
        bool headerSeen = false;
        try
        {
            foreach (var line in Lines(raw))
            {
                number++;
                if (line.IsEmpty || line[0] == (byte)'#') continue;
                if (!headerSeen)
                {
                    if (!line.SequenceEqual(Encoding.ASCII.GetBytes(Header)))
                        throw new InvalidDataException($"{path}:{number}: '{Encoding.ASCII.GetString(line)}' is a key file format this version does not read (it reads '{Header}')");
                    headerSeen = true;
                    continue;
                }
                int space = line.IndexOfAny((byte)' ', (byte)'\t');
                string id = Encoding.ASCII.GetString(space < 0 ? line : line[..space]);
                if (space < 0 || !TokenClaims.IsKeyId(id))
                    throw new InvalidDataException($"{path}:{number}: expected '<key id> <base64 key>' with a key id of 1 to 32 letters, digits, '_' or '-'");
                if (keys.Exists(k => k.Id == id))
                    throw new InvalidDataException($"{path}:{number}: key id '{id}' appears twice");
                keys.Add(new TokenKey(id, DecodeKey(line[(space + 1)..].Trim(" \t"u8), $"{path}:{number}: key '{id}'")));
            }
            if (keys.Count == 0) throw new InvalidDataException($"{path}: no keys after '{Header}'");
            return keys;
        }
        catch
        {
            foreach (var k in keys) CryptographicOperations.ZeroMemory(k.Bytes);
            throw;
        }
    }

    private static byte[] ReadSingleKey(string path, ReadOnlySpan<byte> raw)
    {
        var text = raw.Trim("\r\n\t "u8);
        byte[] decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        try
        {
            if (Base64.DecodeFromUtf8(text, decoded, out _, out int written) == OperationStatus.Done && written >= TokenAuthority.MinKeyBytes)
                return decoded.AsSpan(0, written).ToArray();
            if (raw.Length < TokenAuthority.MinKeyBytes)
                throw new InvalidDataException($"{path}: a token key needs at least {TokenAuthority.MinKeyBytes} bytes (base64 or raw)");
            return raw.ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(decoded);
        }
    }

    private static byte[] DecodeKey(ReadOnlySpan<byte> base64, string what)
    {
        byte[] decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(base64.Length)];
        try
        {
            if (Base64.DecodeFromUtf8(base64, decoded, out _, out int written) != OperationStatus.Done)
                throw new InvalidDataException($"{what} is not base64");
            if (written < TokenAuthority.MinKeyBytes)
                throw new InvalidDataException($"{what} has {written} bytes; a token key needs at least {TokenAuthority.MinKeyBytes}");
            return decoded.AsSpan(0, written).ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(decoded);
        }
    }

    private static LineEnumerator Lines(ReadOnlySpan<byte> raw) => new(raw);

    /// <summary>Lines without their line ends and surrounding blanks, over the bytes (no strings of secrets).</summary>
    private ref struct LineEnumerator(ReadOnlySpan<byte> rest)
    {
        private ReadOnlySpan<byte> _rest = rest;
        private bool _done = rest.IsEmpty;

        public ReadOnlySpan<byte> Current { get; private set; }

        public readonly LineEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_done) return false;
            int end = _rest.IndexOf((byte)'\n');
            Current = (end < 0 ? _rest : _rest[..end]).Trim("\r\t "u8);
            if (end < 0) _done = true;
            else _rest = _rest[(end + 1)..];
            return true;
        }
    }
}
