using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Transport.Security;

/// <summary>What a token lets its holder do.</summary>
[Flags]
public enum TokenScopes : byte
{
    None = 0,
    /// <summary>Subscribe on learner ports.</summary>
    Learn = 1,
    /// <summary>Publish on the leader's publish port.</summary>
    Publish = 2,
}

/// <summary>
/// The claims of an authentication token: who it is for, until when, what it may do, and the key
/// prefixes it may read or publish (an empty prefix means every key).
/// </summary>
public sealed record TokenClaims(string Subject, DateTimeOffset Expires, TokenScopes Scopes, IReadOnlyList<byte[]> Prefixes)
{
    public const int MaxPrefixes = 64;
    public const int MaxPrefixBytes = 1024;

    /// <summary>True when <paramref name="key"/> starts with one of the allowed prefixes.</summary>
    public bool Allows(ReadOnlySpan<byte> key)
    {
        foreach (var prefix in Prefixes)
            if (key.StartsWith(prefix)) return true;
        return false;
    }

    /// <summary>
    /// True when a subscription filtered by <paramref name="filter"/> can only ever see keys the token allows:
    /// the filter itself starts with an allowed prefix.
    /// </summary>
    public bool AllowsSubscription(ReadOnlySpan<byte> filter) => Allows(filter);

    /// <summary>
    /// <code>u8 version (1) | u8 scopes | u64 expires (unix seconds) | str subject | v n | n × bytes prefix</code>
    /// </summary>
    internal void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Byte(w, 1);
        PayloadWriter.Byte(w, (byte)Scopes);
        PayloadWriter.UInt64(w, (ulong)Expires.ToUnixTimeSeconds());
        PayloadWriter.String(w, Subject);
        PayloadWriter.Varint(w, (ulong)Prefixes.Count);
        foreach (var p in Prefixes) PayloadWriter.Bytes(w, p);
    }

    /// <summary>Decodes a token body; throws only <see cref="CodecException"/>.</summary>
    public static TokenClaims Read(ReadOnlySequence<byte> body)
    {
        var r = new PayloadReader(body, "token");
        if (r.ReadByte("version") != 1) throw r.Corrupt("version", "unknown token version");
        var scopes = (TokenScopes)r.ReadByte("scopes");
        if (((byte)scopes & ~3) != 0) throw r.Corrupt("scopes", $"unknown scope bits 0x{(byte)scopes:x2}");
        ulong expires = r.ReadUInt64("expires");
        if (expires > (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds()) throw r.Corrupt("expires", $"{expires} is past year 9999");
        var subject = r.ReadString("subject", Hello.MaxIdLength);
        ulong n = r.ReadVarint("prefixes");
        if (n > MaxPrefixes) throw r.Corrupt("prefixes", $"{n} prefixes; at most {MaxPrefixes}");
        var prefixes = new byte[n][];
        for (int i = 0; i < prefixes.Length; i++) prefixes[i] = r.ReadBytes("prefix", MaxPrefixBytes).ToArray();
        r.ExpectEnd();
        return new TokenClaims(subject, DateTimeOffset.FromUnixTimeSeconds((long)expires), scopes, prefixes);
    }
}

/// <summary>
/// Mints and verifies tokens <c>grt1.&lt;body&gt;.&lt;mac&gt;</c> (base64url): the body holds
/// <see cref="TokenClaims"/>, the mac is HMAC-SHA256 over <c>grt1.&lt;body&gt;</c> with the cluster's key.
/// The mac is checked (in constant time) before the body is decoded, so forged bytes never reach the decoder.
/// </summary>
public sealed class TokenAuthority : IDisposable
{
    public const int MinKeyBytes = 32;
    private const string Prefix = "grt1.";
    private readonly byte[] _key;

    /// <summary>Takes a copy of <paramref name="key"/> (at least 32 bytes); the copy is cleared on dispose.</summary>
    public TokenAuthority(ReadOnlySpan<byte> key)
    {
        if (key.Length < MinKeyBytes)
            throw new ArgumentException($"a token key needs at least {MinKeyBytes} bytes, this one has {key.Length}", nameof(key));
        _key = key.ToArray();
    }

    /// <summary>
    /// Reads a key file: base64 text (as <c>georelay token --new-key</c> writes) or raw bytes.
    /// Every intermediate buffer is cleared.
    /// </summary>
    public static TokenAuthority LoadKeyFile(string path)
    {
        byte[] raw = File.ReadAllBytes(path);
        byte[]? decoded = null;
        try
        {
            var text = raw.AsSpan().Trim("\r\n\t "u8);
            decoded = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
            if (Base64.DecodeFromUtf8(text, decoded, out _, out int written) == OperationStatus.Done && written >= MinKeyBytes)
                return new TokenAuthority(decoded.AsSpan(0, written));
            if (raw.Length < MinKeyBytes)
                throw new InvalidDataException($"{path}: a token key needs at least {MinKeyBytes} bytes (base64 or raw)");
            return new TokenAuthority(raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
            if (decoded is not null) CryptographicOperations.ZeroMemory(decoded);
        }
    }

    /// <summary>A fresh random key, base64, for a key file.</summary>
    public static string NewKeyText()
    {
        Span<byte> key = stackalloc byte[MinKeyBytes];
        RandomNumberGenerator.Fill(key);
        var text = Convert.ToBase64String(key);
        CryptographicOperations.ZeroMemory(key);
        return text;
    }

    public string Mint(TokenClaims claims)
    {
        var body = new ArrayBufferWriter<byte>(128);
        claims.Write(body);
        string signed = Prefix + Base64Url.EncodeToString(body.WrittenSpan);
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(signed), mac);
        return signed + "." + Base64Url.EncodeToString(mac);
    }

    /// <summary>
    /// Checks a token's mac and expiry. Returns the claims, or null with <paramref name="error"/> saying why
    /// (never echoing the token). Throws nothing on malformed input.
    /// </summary>
    public TokenClaims? Verify(ReadOnlySpan<byte> token, DateTimeOffset now, out string error)
    {
        error = "";
        if (token.IsEmpty) { error = "no token"; return null; }
        if (!token.StartsWith("grt1."u8)) { error = "not a GeoRelay token"; return null; }
        int dot = token.LastIndexOf((byte)'.');
        if (dot <= Prefix.Length - 1) { error = "malformed token"; return null; }
        var signed = token[..dot];
        var macText = token[(dot + 1)..];
        var bodyText = signed[Prefix.Length..];
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Span<byte> given = stackalloc byte[HMACSHA256.HashSizeInBytes + 3];
        HMACSHA256.HashData(_key, signed, expected);
        // DecodeFromUtf8 reports bad characters as a status; TryDecodeFromUtf8 would throw on them.
        bool macOk = Base64Url.DecodeFromUtf8(macText, given, out _, out int macLength) == OperationStatus.Done && macLength == expected.Length
            && CryptographicOperations.FixedTimeEquals(expected, given[..macLength]);
        CryptographicOperations.ZeroMemory(expected);
        if (!macOk) { error = "token signature does not verify"; return null; }
        byte[] body = new byte[Base64Url.GetMaxDecodedLength(bodyText.Length)];
        if (Base64Url.DecodeFromUtf8(bodyText, body, out _, out int bodyLength) != OperationStatus.Done) { error = "malformed token body"; return null; }
        TokenClaims claims;
        try
        {
            claims = TokenClaims.Read(new ReadOnlySequence<byte>(body, 0, bodyLength));
        }
        catch (CodecException e)
        {
            error = "malformed token body: " + e.Message;
            return null;
        }
        if (claims.Expires <= now) { error = $"token for '{claims.Subject}' expired at {claims.Expires:u}"; return null; }
        return claims;
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
