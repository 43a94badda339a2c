using System.Text;
using GeoRelay.Server.Admin;
using GeoRelay.Server.Security;
using GeoRelay.Transport.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Admin;

/// <summary>Who gets past the admin endpoint: the rule for each security posture, and the answer for each kind of token.</summary>
[TestFixture]
public sealed class AdminAccessTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TokenVerifier Verifier(params string[] revokedTokens) =>
        new(new TokenAuthority([new TokenKey("k1", Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef"))], new TokenRevocations([], revokedTokens)), "unused.yaml");

    private static string Mint(TokenVerifier verifier, TokenScopes scopes, string id = "00000000000000a1", TimeSpan? ttl = null) =>
        verifier.Current.Authority.Mint(new TokenClaims("ops", Now + (ttl ?? TimeSpan.FromHours(1)), scopes, [[]]) { Id = id });

    [Test]
    public void AnInsecureNodeWithoutTokenKeysIsOpen()
    {
        var access = AdminAccess.For(HostSecurity.None);
        Assert.That(access.IsOpen, Is.True);
        Assert.That(access.Check(null, Now), Is.EqualTo(new AdminVerdict(200, null)));
    }

    [Test]
    public void ANodeWithTlsButNoTokenKeysRefusesNamingTheMissingConfig()
    {
        using var tls = new NodeTls(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(SelfSigned()), null);
        var access = AdminAccess.For(new HostSecurity { Tls = tls });
        var verdict = access.Check("Bearer anything", Now);
        Assert.That((verdict.Status, verdict.Error?.Error), Is.EqualTo((401, "no-token-keys")));
        Assert.That(verdict.Error!.Message, Does.Contain("auth: { key-file: FILE }"));
    }

    private static byte[] SelfSigned()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=ca", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return cert.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Cert);
    }

    [TestCase(null, 401, "missing-token", "Authorization: Bearer <token>")]
    [TestCase("", 401, "missing-token", "--scope admin")]
    [TestCase("Basic b3BzOnB3", 401, "bad-authorization", "must read `Bearer <token>`")]
    [TestCase("Bearer grt2.k9.AAAA.BBBB", 401, "invalid-token", "key 'k9', which this node does not hold")]
    [TestCase("Bearer nonsense", 401, "invalid-token", "not a GeoRelay token")]
    public void AMissingOrBadTokenIsRefusedWith401SayingWhy(string? header, int status, string code, string message)
    {
        using var verifier = Verifier();
        var verdict = AdminAccess.For(new HostSecurity { Tokens = verifier }).Check(header, Now);
        Assert.That((verdict.Status, verdict.Error?.Error), Is.EqualTo((status, code)));
        Assert.That(verdict.Error!.Message, Does.Contain(message));
    }

    [Test]
    public void OnlyAValidTokenWithTheAdminScopeGetsThrough()
    {
        using var verifier = Verifier(revokedTokens: "00000000000000ff");
        var access = AdminAccess.For(new HostSecurity { Tokens = verifier });
        Assert.That(access.IsOpen, Is.False);

        Assert.That(access.Check("Bearer " + Mint(verifier, TokenScopes.Admin), Now).Allowed, Is.True);
        Assert.That(access.Check("bearer  " + Mint(verifier, TokenScopes.Learn | TokenScopes.Admin) + " ", Now).Allowed, Is.True, "scheme case and spaces");

        var learnOnly = access.Check("Bearer " + Mint(verifier, TokenScopes.Learn | TokenScopes.Publish), Now);
        Assert.That((learnOnly.Status, learnOnly.Error?.Error), Is.EqualTo((403, "forbidden")));
        Assert.That(learnOnly.Error!.Message, Does.Contain("'ops' has the scopes learn,publish, not admin"));

        var expired = access.Check("Bearer " + Mint(verifier, TokenScopes.Admin, ttl: TimeSpan.FromSeconds(-1)), Now);
        Assert.That((expired.Status, expired.Error?.Message), Is.EqualTo((401, "the token was refused: token for 'ops' expired at 2029-12-31 23:59:59Z")));

        var revoked = access.Check("Bearer " + Mint(verifier, TokenScopes.Admin, id: "00000000000000ff"), Now);
        Assert.That((revoked.Status, revoked.Error?.Message), Is.EqualTo((401, "the token was refused: token 00000000000000ff for 'ops' is revoked")));
    }
}
