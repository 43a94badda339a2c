using System.Net;
using GeoRelay.Server.Security;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Admin;

[TestFixture]
public sealed class AddressBlacklistTests
{
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [TestCase("127.0.0.2", "127.0.0.2/32")]
    [TestCase(" 10.0.0.0/8 ", "10.0.0.0/8")]
    [TestCase("0.0.0.0/0", "0.0.0.0/0")]
    [TestCase("::1", "::1/128")]
    [TestCase("fd00::/8", "fd00::/8")]
    [TestCase("::ffff:10.1.2.3", "10.1.2.3/32")]
    public void AnAddressOrRangeParses(string text, string range)
    {
        Assert.That(AddressBlacklist.TryParseRange(text, out var parsed, out var error), Is.True, error);
        Assert.That(parsed.ToString(), Is.EqualTo(range));
    }

    [TestCase("", "expected an address or a CIDR range such as 10.0.0.0/8, found nothing")]
    [TestCase("10.0.0", "'10.0.0': '10.0.0' is not an IPv4 or IPv6 address")]
    [TestCase("example.com", "'example.com': 'example.com' is not an IPv4 or IPv6 address")]
    [TestCase("10.0.0.0/33", "'10.0.0.0/33': the prefix length after '/' must be a number from 0 to 32 for an IPv4 address")]
    [TestCase("10.0.0.0/", "'10.0.0.0/': the prefix length after '/' must be a number from 0 to 32")]
    [TestCase("10.0.0.0/-1", "'10.0.0.0/-1': the prefix length after '/' must be a number from 0 to 32")]
    [TestCase("fd00::/129", "'fd00::/129': the prefix length after '/' must be a number from 0 to 128 for an IPv6 address")]
    [TestCase("10.0.0.1/8", "'10.0.0.1/8': 10.0.0.1 has bits set past the first 8; the range is written 10.0.0.0/8")]
    public void BadInputIsRefusedSayingWhatIsWrong(string text, string message)
    {
        Assert.That(AddressBlacklist.TryParseRange(text, out _, out var error), Is.False);
        Assert.That(error, Does.StartWith(message));
    }

    [Test]
    public void AnEntryCoversItsRangeUntilItLapsesOrIsRemoved()
    {
        var clock = new ManualClock(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var blacklist = new AddressBlacklist(clock);
        AddressBlacklist.TryParseRange("10.1.0.0/16", out var lasting, out _);
        AddressBlacklist.TryParseRange("127.0.0.2", out var brief, out _);
        blacklist.Add(lasting, null);
        var entry = blacklist.Add(brief, TimeSpan.FromMinutes(10));
        Assert.That(entry.Until, Is.EqualTo(clock.Now.AddMinutes(10)));

        Assert.That(blacklist.Match(IPAddress.Parse("10.1.200.3"))?.Range, Is.EqualTo(lasting));
        Assert.That(blacklist.Match(IPAddress.Parse("::ffff:10.1.0.1"))?.Range, Is.EqualTo(lasting), "IPv4-mapped addresses match their IPv4 range");
        Assert.That(blacklist.Match(IPAddress.Parse("10.2.0.1")), Is.Null);
        Assert.That(blacklist.Match(IPAddress.Parse("127.0.0.2"))?.Range, Is.EqualTo(brief));
        Assert.That(AddressBlacklist.Refusal(IPAddress.Parse("127.0.0.2"), entry),
            Is.EqualTo("address 127.0.0.2 is blacklisted on this node (127.0.0.2/32, until 2030-01-01 00:10:00Z)"));

        clock.Now = clock.Now.AddMinutes(10);
        Assert.That(blacklist.Match(IPAddress.Parse("127.0.0.2")), Is.Null, "lapsed");
        Assert.That(blacklist.Entries().Select(e => e.Range), Is.EqualTo(new[] { lasting }));

        Assert.That(blacklist.Remove(brief), Is.Null, "a lapsed entry is gone");
        Assert.That(blacklist.Remove(lasting)?.Range, Is.EqualTo(lasting));
        Assert.That(blacklist.Match(IPAddress.Parse("10.1.200.3")), Is.Null);
        Assert.That(blacklist.Entries(), Is.Empty);
    }

    [Test]
    public void AddingARangeAgainReplacesItsEntry()
    {
        var blacklist = new AddressBlacklist();
        AddressBlacklist.TryParseRange("192.0.2.0/24", out var range, out _);
        blacklist.Add(range, TimeSpan.FromMinutes(1));
        blacklist.Add(range, null);
        Assert.That(blacklist.Entries(), Has.Count.EqualTo(1));
        Assert.That(blacklist.Entries()[0].Until, Is.Null);
        Assert.Throws<ArgumentOutOfRangeException>(() => blacklist.Add(range, TimeSpan.Zero));
    }
}
