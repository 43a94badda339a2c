using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using GeoRelay.Codec;

namespace GeoRelay.Transport.Security;

/// <summary>
/// Mints and verifies tokens with a ring of keys, each with a key id. A token is
/// <c>grt2.&lt;key id&gt;.&lt;body&gt;.&lt;mac&gt;</c> (body and mac base64url): the body holds <see cref="TokenClaims"/>,
/// the mac is HMAC-SHA256 over <c>grt2.&lt;key id&gt;.&lt;body&gt;</c> with the key of that id. The newest key (the last)
/// signs; every key verifies the tokens that name it, so a rotation keeps older tokens valid until their key is removed.
/// Tokens of the first format, <c>grt1.&lt;body&gt;.&lt;mac&gt;</c>, name no key and verify with the key
/// <see cref="LegacyKeyId"/>. The mac is checked (in constant time) before the body is decoded, so forged bytes never
/// reach the decoder; then revoked key ids and token ids are refused.
/// </summary>
public sealed class TokenAuthority : IDisposable
{
    public const int MinKeyBytes = 32;
    /// <summary>The id of a key read from a key file of the older, single-key format; it also verifies <c>grt1</c> tokens.</summary>
    public const string LegacyKeyId = "legacy";
    private const string Current = "grt2.";
    private const string First = "grt1.";

    private readonly TokenKey[] _keys; // oldest first; the last signs
    private readonly TokenRevocations _revoked;

    /// <summary>One key (at least 32 bytes), with the id <see cref="LegacyKeyId"/>; the copy taken is cleared on dispose.</summary>
    public TokenAuthority(ReadOnlySpan<byte> key) : this([new TokenKey(LegacyKeyId, key.ToArray())], TokenRevocations.None)
    {
    }

    /// <summary>Takes <paramref name="keys"/> (oldest first, their arrays included: they are cleared on dispose).</summary>
    public TokenAuthority(IReadOnlyList<TokenKey> keys, TokenRevocations revocations)
    {
        if (keys.Count == 0) throw new ArgumentException("a token authority needs at least one key", nameof(keys));
        foreach (var key in keys)
        {
            if (key.Bytes.Length < MinKeyBytes)
                throw new ArgumentException($"a token key needs at least {MinKeyBytes} bytes, key '{key.Id}' has {key.Bytes.Length}", nameof(keys));
            if (!TokenClaims.IsKeyId(key.Id))
                throw new ArgumentException($"'{key.Id}' is not a key id (1 to 32 letters, digits, '_' or '-')", nameof(keys));
        }
        _keys = [.. keys];
        _revoked = revocations;
    }

    /// <summary>Reads a key file (either format, see <see cref="TokenKeyFile"/>), with no revocations.</summary>
    public static TokenAuthority LoadKeyFile(string path) => new(TokenKeyFile.Read(path, out _), TokenRevocations.None);

    /// <summary>The key ids, oldest first.</summary>
    public IEnumerable<string> KeyIds => _keys.Select(k => k.Id);

    /// <summary>The id of the key that signs new tokens (the newest).</summary>
    public string SigningKeyId => _keys[^1].Id;

    public TokenRevocations Revocations => _revoked;

    /// <summary>Signs <paramref name="claims"/> with the newest key; claims without an id get a fresh one.</summary>
    public string Mint(TokenClaims claims)
    {
        var key = _keys[^1];
        var body = new ArrayBufferWriter<byte>(128);
        (claims.Id is null ? claims with { Id = TokenClaims.NewId() } : claims).Write(body);
        string signed = Current + key.Id + "." + Base64Url.EncodeToString(body.WrittenSpan);
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key.Bytes, Encoding.ASCII.GetBytes(signed), mac);
        return signed + "." + Base64Url.EncodeToString(mac);
    }

    /// <summary>
    /// Checks a token's mac, revocation and expiry. Returns the claims (with <see cref="TokenClaims.KeyId"/>), or null
    /// with <paramref name="error"/> saying why (never echoing the token). Throws nothing on malformed input.
    /// </summary>
    public TokenClaims? Verify(ReadOnlySpan<byte> token, DateTimeOffset now, out string error)
    {
        error = "";
        if (token.IsEmpty) { error = "no token"; return null; }
        int dot = token.LastIndexOf((byte)'.');
        ReadOnlySpan<byte> signed, bodyText;
        TokenKey? key;
        if (token.StartsWith("grt2."u8))
        {
            var rest = token[Current.Length..];
            int kidEnd = rest.IndexOf((byte)'.');
            if (kidEnd <= 0 || dot <= Current.Length + kidEnd) { error = "malformed token"; return null; }
            var kid = rest[..kidEnd];
            string? id = KeyIdText(kid);
            if (id is null) { error = "malformed token"; return null; }
            key = Find(id);
            if (key is null) { error = $"token signed with key '{id}', which this node does not hold (removed, or never added)"; return null; }
            signed = token[..dot];
            bodyText = signed[(Current.Length + kidEnd + 1)..];
        }
        else if (token.StartsWith("grt1."u8))
        {
            if (dot <= First.Length - 1) { error = "malformed token"; return null; }
            key = Find(LegacyKeyId);
            if (key is null) { error = $"token of the first format (no key id), and no key '{LegacyKeyId}' to verify it"; return null; }
            signed = token[..dot];
            bodyText = signed[First.Length..];
        }
        else
        {
            error = "not a GeoRelay token";
            return null;
        }
        var macText = token[(dot + 1)..];
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Span<byte> given = stackalloc byte[HMACSHA256.HashSizeInBytes + 3];
        HMACSHA256.HashData(key.Bytes, signed, expected);
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
            claims = TokenClaims.Read(new ReadOnlySequence<byte>(body, 0, bodyLength)) with { KeyId = key.Id };
        }
        catch (CodecException e)
        {
            error = "malformed token body: " + e.Message;
            return null;
        }
        if (IsRevoked(claims, out error)) return null;
        if (claims.Expires <= now) { error = $"token for '{claims.Subject}' expired at {claims.Expires:u}"; return null; }
        return claims;
    }

    /// <summary>
    /// Whether claims verified earlier (perhaps by another authority, before a reload) are no longer good here: their
    /// key is gone or revoked, or their token id is revoked. <paramref name="why"/> says which.
    /// </summary>
    public bool IsRevoked(TokenClaims claims, out string why)
    {
        why = "";
        if (claims.KeyId is not { } kid) return false;
        string token = claims.Id is null ? $"token for '{claims.Subject}'" : $"token {claims.Id} for '{claims.Subject}'";
        if (Find(kid) is null) why = $"{token} was signed with key '{kid}', which is no longer held";
        else if (_revoked.KeyIds.Contains(kid)) why = $"{token} was signed with key '{kid}', which is revoked";
        else if (claims.Id is not null && _revoked.TokenIds.Contains(claims.Id)) why = $"{token} is revoked";
        return why.Length > 0;
    }

    private TokenKey? Find(string id)
    {
        foreach (var k in _keys)
            if (k.Id == id) return k;
        return null;
    }

    private static string? KeyIdText(ReadOnlySpan<byte> kid)
    {
        if (kid.Length > 32) return null;
        Span<char> chars = stackalloc char[kid.Length];
        for (int i = 0; i < kid.Length; i++) chars[i] = (char)kid[i];
        return TokenClaims.IsKeyId(chars) ? new string(chars) : null;
    }

    public void Dispose()
    {
        foreach (var k in _keys) CryptographicOperations.ZeroMemory(k.Bytes);
    }
}
