using System.Net;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Topology;

[TestFixture]
public sealed class ConfigValueParsingTests
{
    [TestCase("0", 0L)]
    [TestCase("4096", 4096L)]
    [TestCase("512B", 512L)]
    [TestCase("1KiB", 1024L)]
    [TestCase("64MiB", 64L << 20)]
    [TestCase("2GiB", 2L << 30)]
    [TestCase("1 MiB", 1L << 20)]
    public void SizesParse(string text, long bytes)
    {
        Assert.That(ConfigUnits.TryParseSize(text, out long parsed, out string? error), Is.True, error);
        Assert.That(parsed, Is.EqualTo(bytes));
    }

    [TestCase("1MB", "unknown size unit 'MB'; use B, KiB, MiB or GiB (1MiB = 1048576 bytes)")]
    [TestCase("1mib", "unknown size unit 'mib'")]
    [TestCase("1.5MiB", "is not a size")]
    [TestCase("-1KiB", "is not a size")]
    [TestCase("MiB", "is not a size")]
    [TestCase("", "is not a size")]
    [TestCase("99999999999GiB", "is too large")]
    public void BadSizesSayWhy(string text, string message)
    {
        Assert.That(ConfigUnits.TryParseSize(text, out _, out string? error), Is.False);
        Assert.That(error, Does.Contain(message));
    }

    [TestCase("0", 0L)]
    [TestCase("8", 8_000L)]
    [TestCase("100", 100_000L)]
    [TestCase("1ms", 1L)]
    [TestCase("250ms", 250L)]
    [TestCase("5s", 5_000L)]
    [TestCase("2m", 120_000L)]
    [TestCase("1h", 3_600_000L)]
    public void DurationsParse(string text, long milliseconds)
    {
        Assert.That(ConfigUnits.TryParseDuration(text, out var parsed, out string? error), Is.True, error);
        Assert.That(parsed, Is.EqualTo(TimeSpan.FromMilliseconds(milliseconds)));
    }

    [TestCase("1.5s", "is not a duration; write seconds as a whole number (8), or a whole number followed by ms, s, m or h")]
    [TestCase("1:30", "is not a duration")]
    [TestCase("10us", "unknown duration unit 'us'; use ms, s, m or h")]
    [TestCase("1d", "unknown duration unit 'd'")]
    [TestCase("soon", "is not a duration")]
    public void BadDurationsSayWhy(string text, string message)
    {
        Assert.That(ConfigUnits.TryParseDuration(text, out _, out string? error), Is.False);
        Assert.That(error, Does.Contain(message));
    }

    [TestCase(1L << 20, "1MiB")]
    [TestCase(1536L, "1536B")]
    [TestCase(3L << 10, "3KiB")]
    [TestCase(0L, "0B")]
    public void SizesFormatInTheLargestExactUnit(long bytes, string text)
    {
        Assert.That(ConfigUnits.FormatSize(bytes), Is.EqualTo(text));
        Assert.That(ConfigUnits.ParseSize(text), Is.EqualTo(bytes));
    }

    [TestCase(100L, "100ms")]
    [TestCase(90_000L, "90s")]
    [TestCase(3_600_000L, "1h")]
    [TestCase(120_000L, "2m")]
    public void DurationsFormatInTheLargestExactUnit(long milliseconds, string text)
    {
        Assert.That(ConfigUnits.FormatDuration(TimeSpan.FromMilliseconds(milliseconds)), Is.EqualTo(text));
        Assert.That(ConfigUnits.ParseDuration(text), Is.EqualTo(TimeSpan.FromMilliseconds(milliseconds)));
    }

    [TestCase("127.0.0.1:7000", "127.0.0.1", 7000, "127.0.0.1:7000")]
    [TestCase("[::1]:7000", "::1", 7000, "[::1]:7000")]
    [TestCase("[0:0:0:0:0:0:0:1]:7000", "::1", 7000, "[::1]:7000")]
    [TestCase("[fe80::1]:1", "fe80::1", 1, "[fe80::1]:1")]
    [TestCase("localhost:65535", "localhost", 65535, "localhost:65535")]
    [TestCase("Relay-1.EU.example.com:7201", "relay-1.eu.example.com", 7201, "relay-1.eu.example.com:7201")]
    [TestCase(" 10.0.0.5:80 ", "10.0.0.5", 80, "10.0.0.5:80")]
    public void AddressesParseAndPrint(string text, string host, int port, string printed)
    {
        Assert.That(NodeEndpoint.TryParse(text, out var endpoint, out string? error), Is.True, error);
        Assert.That(endpoint, Is.EqualTo(new NodeEndpoint(host, port)));
        Assert.That(endpoint.ToString(), Is.EqualTo(printed));
    }

    [TestCase("127.0.0.1", "missing ':port'")]
    [TestCase(":7000", "missing host")]
    [TestCase("::1:7000", "an IPv6 address needs brackets, as in [::1]:7000")]
    [TestCase("[::1:7000", "missing ']'")]
    [TestCase("[::1]7000", "missing ':port' after ']'")]
    [TestCase("[127.0.0.1]:7000", "is not an IPv6 address")]
    [TestCase("[nothex::z]:7000", "is not an IPv6 address")]
    [TestCase("256.1.1.1:7000", "'256.1.1.1' is not an IPv4 address")]
    [TestCase("1.2.3:7000", "'1.2.3' is not an IPv4 address")]
    [TestCase("host:0", "port must be a number from 1 to 65535")]
    [TestCase("host:65536", "port must be a number from 1 to 65535")]
    [TestCase("host:-1", "port must be a number from 1 to 65535")]
    [TestCase("host:+80", "port must be a number from 1 to 65535")]
    [TestCase("ho st:80", "is not a valid host name")]
    [TestCase("", "expected host:port, found nothing")]
    public void BadAddressesSayWhy(string text, string message)
    {
        Assert.That(NodeEndpoint.TryParse(text, out _, out string? error), Is.False);
        Assert.That(error, Does.Contain(message));
    }

    [Test]
    public void EndpointsBecomeIpOrDnsEndPoints()
    {
        Assert.That(NodeEndpoint.Parse("[::1]:7000").ToEndPoint(), Is.EqualTo(new IPEndPoint(IPAddress.IPv6Loopback, 7000)));
        Assert.That(NodeEndpoint.Parse("127.0.0.1:7000").ToEndPoint(), Is.EqualTo(new IPEndPoint(IPAddress.Loopback, 7000)));
        Assert.That(NodeEndpoint.Parse("localhost:7000").ToEndPoint(), Is.EqualTo(new DnsEndPoint("localhost", 7000)));
    }

    [TestCase("majority", 5, 3)]
    [TestCase("majority", 4, 3)]
    [TestCase("majority", 1, 1)]
    [TestCase("all", 8, 8)]
    [TestCase("2", 8, 2)]
    public void QuorumCountsMemberAcks(string text, int members, int acks)
    {
        Assert.That(QuorumSpec.TryParse(text, out var quorum, out string? error), Is.True, error);
        Assert.That(quorum.RequiredAcks(members), Is.EqualTo(acks));
        Assert.That(quorum.ToString(), Is.EqualTo(text));
    }

    [Test]
    public void FixedQuorumLargerThanTheMembersCannotBeMet() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => QuorumSpec.Fixed(4).RequiredAcks(3));
}
