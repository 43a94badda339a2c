using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using GeoRelay.Transport.Security;

namespace GeoRelay.TestUtilities;

/// <summary>
/// Tokens of the first format, <c>grt1.&lt;body&gt;.&lt;mac&gt;</c> with no key id and a body without a token id, as
/// releases before key rotation minted them; the product only verifies these, so tests build them here.
/// </summary>
public static class LegacyTokens
{
    public static string Mint(ReadOnlySpan<byte> key, TokenClaims claims)
    {
        var body = new ArrayBufferWriter<byte>();
        (claims with { Id = null }).Write(body);
        string signed = "grt1." + Base64Url.EncodeToString(body.WrittenSpan);
        return signed + "." + Base64Url.EncodeToString(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signed)));
    }
}
