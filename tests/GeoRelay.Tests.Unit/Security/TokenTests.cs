using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Transport.Security;
using NUnit.Framework;
using System.Buffers;
using GeoRelay.Server.Security;

namespace GeoRelay.Tests.Unit.Security;

[TestFixture]
public sealed class TokenTests
{
    private static readonly byte[] Key = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef");
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TokenClaims Claims(TimeSpan ttl, TokenScopes scopes = TokenScopes.Learn, params string[] prefixes) =>
        new("alice", Now + ttl, scopes, prefixes.Length == 0 ? [Array.Empty<byte>()] : Array.ConvertAll(prefixes, Encoding.UTF8.GetBytes));

    [Test]
    public void MintedTokenVerifiesWithItsClaims()
    {
        using var authority = new TokenAuthority(Key);
        var token = authority.Mint(Claims(TimeSpan.FromHours(1), TokenScopes.Learn | TokenScopes.Publish, "orders/", "fx/"));
        var claims = authority.Verify(Encoding.ASCII.GetBytes(token), Now, out var error);
        Assert.That(claims, Is.Not.Null, error);
        Assert.That(claims!.Subject, Is.EqualTo("alice"));
        Assert.That(claims.Scopes, Is.EqualTo(TokenScopes.Learn | TokenScopes.Publish));
        Assert.That(claims.Allows("orders/1"u8), Is.True);
        Assert.That(claims.Allows("fx/eur"u8), Is.True);
        Assert.That(claims.Allows("payroll/1"u8), Is.False);
        Assert.That(claims.AllowsSubscription(""u8), Is.False, "an unfiltered subscription would see keys outside the prefixes");
    }

    [Test]
    public void ExpiredTokenIsRefusedSayingSo()
    {
        using var authority = new TokenAuthority(Key);
        var token = Encoding.ASCII.GetBytes(authority.Mint(Claims(TimeSpan.FromMinutes(5))));
        Assert.That(authority.Verify(token, Now + TimeSpan.FromMinutes(6), out var error), Is.Null);
        Assert.That(error, Does.Contain("expired"));
    }

    [Test]
    public void TokenFromAnotherKeyOrAlteredIsRefused()
    {
        using var authority = new TokenAuthority(Key);
        using var forger = new TokenAuthority(Encoding.ASCII.GetBytes("ffffffffffffffffffffffffffffffff"));
        var forged = Encoding.ASCII.GetBytes(forger.Mint(Claims(TimeSpan.FromHours(1))));
        Assert.That(authority.Verify(forged, Now, out var error), Is.Null);
        Assert.That(error, Does.Contain("signature"));

        // Widen the prefixes of a genuine token by editing its body: the mac no longer matches.
        var genuine = authority.Mint(Claims(TimeSpan.FromHours(1), TokenScopes.Learn, "orders/"));
        var parts = genuine.Split('.');
        var body = System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]);
        var widened = Claims(TimeSpan.FromHours(1));
        var w = new ArrayBufferWriter<byte>();
        widened.Write(w);
        var altered = Encoding.ASCII.GetBytes($"{parts[0]}.{System.Buffers.Text.Base64Url.EncodeToString(w.WrittenSpan)}.{parts[2]}");
        Assert.That(body, Is.Not.EqualTo(w.WrittenSpan.ToArray()));
        Assert.That(authority.Verify(altered, Now, out _), Is.Null);
    }

    /// <summary>Regression (found by the fuzzer): bad base64 characters made Verify throw FormatException instead of refusing.</summary>
    [TestCase("grt1.AQM$kQNr.d4G_2x3v")]
    [TestCase("grt1.AQM0kQNr.d4G_2x3vploBUlSVkBuygTghhe_FAlEODW7CV8V=====")]
    [TestCase("grt1..")]
    [TestCase("grt1.")]
    public void MalformedTokenIsRefusedWithoutThrowing(string token)
    {
        using var authority = new TokenAuthority(Key);
        Assert.That(authority.Verify(Encoding.Latin1.GetBytes(token), Now, out var error), Is.Null);
        Assert.That(error, Is.Not.Empty);
    }

    [Test]
    public void ShortKeyIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new TokenAuthority(new byte[16]));
        Assert.That(e!.Message, Does.Contain("32"));
    }

    [Test]
    public void KeyFileInBase64LoadsAndSignsLikeTheRawKey()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Convert.ToBase64String(Key) + "\n");
            using var fromFile = TokenAuthority.LoadKeyFile(path);
            using var direct = new TokenAuthority(Key);
            var claims = Claims(TimeSpan.FromHours(1));
            Assert.That(fromFile.Mint(claims), Is.EqualTo(direct.Mint(claims)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

[TestFixture]
public sealed class ConnectionGuardTests
{
    private static Frame Subscribe(string prefix)
    {
        var w = new ArrayBufferWriter<byte>();
        new Subscribe(1, Encoding.UTF8.GetBytes(prefix), SubscribeFlags.None).Write(w);
        return new Frame(FrameType.Subscribe, FrameFlags.None, new ReadOnlySequence<byte>(w.WrittenMemory));
    }

    private static Frame Publish(params string[] keys)
    {
        var w = new ArrayBufferWriter<byte>();
        PublishFrame.WriteHeader(w, 1, WaitLevel.Accepted, keys.Length);
        foreach (var k in keys) PublishFrame.WriteEntry(w, Encoding.UTF8.GetBytes(k), "p"u8);
        return new Frame(FrameType.Publish, FrameFlags.None, new ReadOnlySequence<byte>(w.WrittenMemory));
    }

    private static TokenClaims Orders => new("bob", DateTimeOffset.MaxValue, TokenScopes.Learn | TokenScopes.Publish, ["orders/"u8.ToArray()]);

    [Test]
    public void SubscribesPastTheRateAreRefusedUntilTheNextSecond()
    {
        var guard = new ConnectionGuard(PortKind.Learner, null, maxSubscribesPerSecond: 2);
        Assert.That(guard.Check(Subscribe(""), 1000), Is.Null);
        Assert.That(guard.Check(Subscribe(""), 1100), Is.Null);
        var refused = guard.Check(Subscribe(""), 1200);
        Assert.That(refused?.Kind, Is.EqualTo(RefusalKind.SubscribeRate));
        Assert.That(refused?.Error.Reason, Is.EqualTo(CodecError.LimitExceeded));
        Assert.That(guard.Check(Subscribe(""), 2001), Is.Null);
    }

    [Test]
    public void TokenHolderMaySubscribeOnlyInsideItsPrefixes()
    {
        var guard = new ConnectionGuard(PortKind.Learner, Orders, 100);
        Assert.That(guard.Check(Subscribe("orders/eu/"), 0), Is.Null);
        Assert.That(guard.Check(Subscribe(""), 0)?.Error.Reason, Is.EqualTo(CodecError.Unauthorized));
        Assert.That(guard.Check(Subscribe("order"), 0)?.Kind, Is.EqualTo(RefusalKind.Unauthorized));
    }

    [Test]
    public void TokenHolderMayPublishOnlyKeysInsideItsPrefixes()
    {
        var guard = new ConnectionGuard(PortKind.Publish, Orders, 100);
        Assert.That(guard.Check(Publish("orders/1", "orders/2"), 0), Is.Null);
        var refused = guard.Check(Publish("orders/1", "payroll/7"), 0);
        Assert.That(refused?.Error.Message, Does.Contain("payroll/7"));
    }
}
