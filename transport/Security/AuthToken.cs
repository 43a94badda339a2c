using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
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
    /// <summary>Read and use a node's admin endpoint (everything but <c>/healthz</c>).</summary>
    Admin = 4,
}

/// <summary>
/// The claims of an authentication token: who it is for, until when, what it may do, and the key
/// prefixes it may read or publish (an empty prefix means every key).
/// </summary>
public sealed record TokenClaims(string Subject, DateTimeOffset Expires, TokenScopes Scopes, IReadOnlyList<byte[]> Prefixes)
{
    public const int MaxPrefixes = 64;
    public const int MaxPrefixBytes = 1024;

    /// <summary>
    /// The token's id, 16 lower-case hex digits, by which it can be revoked (<c>auth.revoked-tokens</c>). Null for
    /// tokens of the first body format, which had none; <see cref="TokenAuthority.Mint"/> gives one to claims without.
    /// </summary>
    public string? Id { get; init; }

    /// <summary>The id of the key that signed the token (<see cref="TokenAuthority.LegacyKeyId"/> for the first
    /// token format); set by <see cref="TokenAuthority.Verify"/>, not part of the body.</summary>
    public string? KeyId { get; init; }

    /// <summary>A fresh random token id.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

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
    /// <code>u8 version (2) | u8 scopes | u64 expires (unix seconds) | str subject | v n | n × bytes prefix | u64 id</code>
    /// Version 1 is the same without the id; it is written when <see cref="Id"/> is null (tests build old tokens so).
    /// </summary>
    internal void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Byte(w, Id is null ? (byte)1 : (byte)2);
        PayloadWriter.Byte(w, (byte)Scopes);
        PayloadWriter.UInt64(w, (ulong)Expires.ToUnixTimeSeconds());
        PayloadWriter.String(w, Subject);
        PayloadWriter.Varint(w, (ulong)Prefixes.Count);
        foreach (var p in Prefixes) PayloadWriter.Bytes(w, p);
        if (Id is not null) PayloadWriter.UInt64(w, ulong.Parse(Id, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
    }

    /// <summary>Decodes a token body of either version; throws only <see cref="CodecException"/>.</summary>
    public static TokenClaims Read(ReadOnlySequence<byte> body)
    {
        var r = new PayloadReader(body, "token");
        byte version = r.ReadByte("version");
        if (version is not (1 or 2)) throw r.Corrupt("version", "unknown token version");
        var scopes = (TokenScopes)r.ReadByte("scopes");
        if (((byte)scopes & ~7) != 0) throw r.Corrupt("scopes", $"unknown scope bits 0x{(byte)scopes:x2}");
        ulong expires = r.ReadUInt64("expires");
        if (expires > (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds()) throw r.Corrupt("expires", $"{expires} is past year 9999");
        var subject = r.ReadString("subject", Hello.MaxIdLength);
        ulong n = r.ReadVarint("prefixes");
        if (n > MaxPrefixes) throw r.Corrupt("prefixes", $"{n} prefixes; at most {MaxPrefixes}");
        var prefixes = new byte[n][];
        for (int i = 0; i < prefixes.Length; i++) prefixes[i] = r.ReadBytes("prefix", MaxPrefixBytes).ToArray();
        string? id = version == 2 ? r.ReadUInt64("id").ToString("x16", CultureInfo.InvariantCulture) : null;
        r.ExpectEnd();
        return new TokenClaims(subject, DateTimeOffset.FromUnixTimeSeconds((long)expires), scopes, prefixes) { Id = id };
    }

    /// <summary>A key id: 1 to 32 letters, digits, '_' or '-' (no '.', which separates the parts of a token).</summary>
    public static bool IsKeyId(ReadOnlySpan<char> text)
    {
        if (text.Length is 0 or > 32) return false;
        foreach (char c in text)
            if (!char.IsAsciiLetterOrDigit(c) && c != '_' && c != '-') return false;
        return true;
    }

    /// <summary>A token id: 16 hex digits.</summary>
    public static bool IsTokenId(ReadOnlySpan<char> text)
    {
        if (text.Length != 16) return false;
        foreach (char c in text)
            if (!char.IsAsciiHexDigit(c)) return false;
        return true;
    }
}
