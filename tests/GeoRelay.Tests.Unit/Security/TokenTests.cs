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
        var genuine = authority.Mint(Claims(TimeSpan.FromHours(1), TokenScopes.Learn, "orders/") with { Id = "00000000000000aa" });
        var parts = genuine.Split('.');
        Assert.That(parts, Has.Length.EqualTo(4), "grt2.<key id>.<body>.<mac>");
        var body = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
        var widened = Claims(TimeSpan.FromHours(1)) with { Id = "00000000000000aa" };
        var w = new ArrayBufferWriter<byte>();
        widened.Write(w);
        var altered = Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}.{System.Buffers.Text.Base64Url.EncodeToString(w.WrittenSpan)}.{parts[3]}");
        Assert.That(body, Is.Not.EqualTo(w.WrittenSpan.ToArray()));
        Assert.That(authority.Verify(altered, Now, out error), Is.Null);
        Assert.That(error, Does.Contain("signature"));
    }

    /// <summary>Regression (found by the fuzzer): bad base64 characters made Verify throw FormatException instead of refusing.</summary>
    [TestCase("grt1.AQM$kQNr.d4G_2x3v")]
    [TestCase("grt1.AQM0kQNr.d4G_2x3vploBUlSVkBuygTghhe_FAlEODW7CV8V=====")]
    [TestCase("grt1..")]
    [TestCase("grt1.")]
    [TestCase("grt2.")]
    [TestCase("grt2..")]
    [TestCase("grt2.legacy.")]
    [TestCase("grt2.legacy..")]
    [TestCase("grt2.leg$acy.AQ.AQ")]
    [TestCase("grt2.legacy.AQ.AQ.AQ")]
    [TestCase("grt2.0123456789012345678901234567890123.AQ.AQ")]
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
            var claims = Claims(TimeSpan.FromHours(1)) with { Id = "0123456789abcdef" };
            Assert.That(fromFile.Mint(claims), Is.EqualTo(direct.Mint(claims)));
            Assert.That(fromFile.SigningKeyId, Is.EqualTo(TokenAuthority.LegacyKeyId), "a key file of the older format holds the key 'legacy'");
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>Several keys with ids, the newest signing; older tokens; revocation.</summary>
[TestFixture]
public sealed class TokenRotationTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static byte[] KeyBytes(char c) => Encoding.ASCII.GetBytes(new string(c, 32));

    private static TokenAuthority Ring(TokenRevocations? revoked = null, params string[] ids) =>
        new(Array.ConvertAll(ids, id => new TokenKey(id, KeyBytes(id[^1]))), revoked ?? TokenRevocations.None);

    private static TokenClaims Claims(string? id = null) =>
        new("alice", Now.AddHours(1), TokenScopes.Learn, [Array.Empty<byte>()]) { Id = id };

    [Test]
    public void TheNewestKeySignsAndEveryKeyHeldVerifiesItsTokens()
    {
        using var before = Ring(null, "k1");
        using var after = Ring(null, "k1", "k2");
        var old = before.Mint(Claims());
        var fresh = after.Mint(Claims());
        Assert.That(old, Does.StartWith("grt2.k1."));
        Assert.That(fresh, Does.StartWith("grt2.k2."));
        var claims = after.Verify(Encoding.ASCII.GetBytes(old), Now, out var error);
        Assert.That(claims, Is.Not.Null, error);
        Assert.That(claims!.KeyId, Is.EqualTo("k1"));
        Assert.That(claims.Id, Does.Match("^[0-9a-f]{16}$"), "minted tokens get an id");
        Assert.That(after.Verify(Encoding.ASCII.GetBytes(fresh), Now, out error)?.KeyId, Is.EqualTo("k2"), error);
        Assert.That(before.Verify(Encoding.ASCII.GetBytes(fresh), Now, out error), Is.Null, "a node without k2 cannot check its tokens");
        Assert.That(error, Does.Contain("key 'k2'").And.Contain("does not hold"));
    }

    [Test]
    public void TokenOfARemovedKeyIsRefusedAndFlaggedWhenRecheckedAfterAReload()
    {
        using var rotated = Ring(null, "k1", "k2");
        var oldToken = Encoding.ASCII.GetBytes(Ring(null, "k1").Mint(Claims("00000000000000c1")));
        var verified = rotated.Verify(oldToken, Now, out var error)!;
        Assert.That(verified, Is.Not.Null, error);

        using var removed = Ring(null, "k2");
        Assert.That(removed.Verify(oldToken, Now, out error), Is.Null);
        Assert.That(error, Does.Contain("'k1'"));
        Assert.That(removed.IsRevoked(verified, out var why), Is.True);
        Assert.That(why, Does.Contain("00000000000000c1").And.Contain("alice").And.Contain("no longer held"));
        Assert.That(rotated.IsRevoked(verified, out _), Is.False);
    }

    [Test]
    public void RevokedKeysAndTokenIdsAreRefusedWhileOthersPass()
    {
        using var signer = Ring(null, "k1", "k2");
        var revokedOne = signer.Mint(Claims("00000000000000d1"));
        var other = signer.Mint(Claims("00000000000000d2"));
        using var revokingToken = Ring(new TokenRevocations([], ["00000000000000D1"]), "k1", "k2");
        Assert.That(revokingToken.Verify(Encoding.ASCII.GetBytes(revokedOne), Now, out var error), Is.Null);
        Assert.That(error, Does.Contain("00000000000000d1 for 'alice' is revoked"));
        Assert.That(revokingToken.Verify(Encoding.ASCII.GetBytes(other), Now, out error), Is.Not.Null, error);

        using var revokingKey = Ring(new TokenRevocations(["k2"], []), "k1", "k2");
        Assert.That(revokingKey.Verify(Encoding.ASCII.GetBytes(other), Now, out error), Is.Null);
        Assert.That(error, Does.Contain("key 'k2', which is revoked"));
    }

    [Test]
    public void FirstFormatTokensVerifyWithTheLegacyKeyOnly()
    {
        var legacyKey = KeyBytes('L');
        var token = Encoding.ASCII.GetBytes(TestUtilities.LegacyTokens.Mint(legacyKey, Claims()));
        Assert.That(Encoding.ASCII.GetString(token), Does.StartWith("grt1."));
        using var upgraded = new TokenAuthority([new TokenKey(TokenAuthority.LegacyKeyId, legacyKey.ToArray()), new TokenKey("k2", KeyBytes('2'))], TokenRevocations.None);
        var claims = upgraded.Verify(token, Now, out var error);
        Assert.That(claims, Is.Not.Null, error);
        Assert.That((claims!.KeyId, claims.Id), Is.EqualTo((TokenAuthority.LegacyKeyId, (string?)null)));

        using var withoutLegacy = Ring(null, "k2");
        Assert.That(withoutLegacy.Verify(token, Now, out error), Is.Null);
        Assert.That(error, Does.Contain("first format").And.Contain("'legacy'"));
        using var revoked = new TokenAuthority([new TokenKey(TokenAuthority.LegacyKeyId, legacyKey.ToArray())], new TokenRevocations([TokenAuthority.LegacyKeyId], []));
        Assert.That(revoked.Verify(token, Now, out error), Is.Null, "first-format tokens are revoked by revoking the key 'legacy'");
    }

    [Test]
    public void BothBodyVersionsRoundTrip()
    {
        foreach (var claims in new[] { Claims("fedcba9876543210"), Claims() })
        {
            var w = new ArrayBufferWriter<byte>();
            claims.Write(w);
            var read = TokenClaims.Read(new ReadOnlySequence<byte>(w.WrittenMemory));
            Assert.That((read.Subject, read.Expires, read.Scopes, read.Id), Is.EqualTo((claims.Subject, claims.Expires, claims.Scopes, claims.Id)));
            Assert.That(w.WrittenSpan[0], Is.EqualTo(claims.Id is null ? 1 : 2), "the body version");
        }
    }
}

/// <summary>The key file (both formats) and the revocation file.</summary>
[TestFixture]
public sealed class TokenFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "georelay-keys-" + Guid.NewGuid().ToString("N")[..8]));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void KeyRingFormatRoundTripsOldestFirst()
    {
        var keys = new List<TokenKey> { TokenKeyFile.NewKey("legacy"), TokenKeyFile.NewKey("k2"), TokenKeyFile.NewKey() };
        var path = Write("keys", TokenKeyFile.Format(keys));
        var read = TokenKeyFile.Read(path, out bool older);
        Assert.That(older, Is.False);
        Assert.That(read.ConvertAll(k => k.Id), Is.EqualTo(keys.ConvertAll(k => k.Id)));
        for (int i = 0; i < keys.Count; i++) Assert.That(read[i].Bytes, Is.EqualTo(keys[i].Bytes));
        using var authority = TokenAuthority.LoadKeyFile(path);
        Assert.That(authority.SigningKeyId, Is.EqualTo(keys[^1].Id));
    }

    [Test]
    public void OlderSingleKeyFileReadsAsTheLegacyKey()
    {
        var raw = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef");
        var read = TokenKeyFile.Read(Write("old", Convert.ToBase64String(raw) + "\n"), out bool older);
        Assert.That(older, Is.True);
        Assert.That(read.Single().Id, Is.EqualTo(TokenAuthority.LegacyKeyId));
        Assert.That(read.Single().Bytes, Is.EqualTo(raw));
    }

    [TestCase("georelay-token-keys 1\nk1\n", 2, "expected '<key id> <base64 key>'")]
    [TestCase("# c\ngeorelay-token-keys 1\nk1 AAAA\n", 3, "needs at least 32")]
    [TestCase("georelay-token-keys 1\nk1 !!!!\n", 2, "not base64")]
    [TestCase("georelay-token-keys 1\nk.1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 2, "key id")]
    [TestCase("georelay-token-keys 1\nk1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\nk1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 3, "twice")]
    [TestCase("georelay-token-keys 2\nk1 MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 1, "does not read")]
    public void MalformedKeyFileNamesTheLine(string text, int line, string fragment)
    {
        var path = Write("keys", text);
        var e = Assert.Throws<InvalidDataException>(() => TokenKeyFile.Read(path, out _));
        Assert.That(e!.Message, Does.StartWith($"{path}:{line}:").And.Contain(fragment));
    }

    [Test]
    public void EmptyRingIsRefused()
    {
        var path = Write("keys", "georelay-token-keys 1\n# nothing yet\n");
        Assert.That(Assert.Throws<InvalidDataException>(() => TokenKeyFile.Read(path, out _))!.Message, Does.Contain("no keys"));
    }

    [Test]
    public void RevocationFileAddsToTheTopologysLists()
    {
        var path = Write("revoked", "# revoked after the March leak\nkey k2020\n\ntoken 00000000000000AB\n");
        var revoked = TokenRevocations.Load(["k1"], ["00000000000000cd"], path);
        Assert.That(revoked.KeyIds, Is.EquivalentTo(new[] { "k1", "k2020" }));
        Assert.That(revoked.TokenIds.Contains("00000000000000ab"), Is.True);
        Assert.That(revoked.TokenIds.Contains("00000000000000cd"), Is.True);

        var bad = Write("bad", "key k1\ntoken nothex\n");
        var e = Assert.Throws<InvalidDataException>(() => TokenRevocations.Load([], [], bad));
        Assert.That(e!.Message, Does.StartWith($"{bad}:2:"));
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
