using System.Text;
using GeoRelay.Cli;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay publish --keyed`: what a stdin line publishes, and which lines stop the command.
[TestFixture]
public sealed class KeyedLineParserTests
{
    [Test]
    public void KeyTabValueSetsTheKey()
    {
        Assert.That(KeyedLineParser.TryParse("orders/1\tpaid", 1, out var entry, out var error), Is.True, error);
        Assert.Multiple(() =>
        {
            Assert.That(Encoding.UTF8.GetString(entry.Key.Span), Is.EqualTo("orders/1"));
            Assert.That(Encoding.UTF8.GetString(entry.Payload.Span), Is.EqualTo("paid"));
            Assert.That(entry.IsTombstone, Is.False);
        });
    }

    [Test]
    public void TheLineSplitsAtItsFirstTabSoTheValueKeepsTheOthers()
    {
        Assert.That(KeyedLineParser.TryParse("k\ta\tb\t", 1, out var entry, out var error), Is.True, error);
        Assert.That(Encoding.UTF8.GetString(entry.Key.Span), Is.EqualTo("k"));
        Assert.That(Encoding.UTF8.GetString(entry.Payload.Span), Is.EqualTo("a\tb\t"));
    }

    [Test]
    public void AKeyAloneIsItsTombstone()
    {
        Assert.That(KeyedLineParser.TryParse("orders/1", 1, out var entry, out var error), Is.True, error);
        Assert.That(entry.IsTombstone, Is.True);
        Assert.That(Encoding.UTF8.GetString(entry.Key.Span), Is.EqualTo("orders/1"));
        Assert.That(entry.Payload.IsEmpty, Is.True);
    }

    [Test]
    public void AKeyWithATabAndNothingAfterIsAnEmptyValueNotADelete()
    {
        Assert.That(KeyedLineParser.TryParse("k\t", 1, out var entry, out var error), Is.True, error);
        Assert.That(entry.IsTombstone, Is.False);
        Assert.That(entry.Payload.IsEmpty, Is.True);
    }

    [Test]
    public void KeysAreUtf8()
    {
        Assert.That(KeyedLineParser.TryParse("clé\tvaleur", 1, out var entry, out var error), Is.True, error);
        Assert.That(entry.Key.ToArray(), Is.EqualTo(new byte[] { (byte)'c', (byte)'l', 0xC3, 0xA9 }));
    }

    [Test]
    public void AnEmptyLineIsRefusedNamingItsNumber()
    {
        Assert.That(KeyedLineParser.TryParse("", 17, out _, out var error), Is.False);
        Assert.That(error, Is.EqualTo("line 17: an empty line has no key"));
    }

    [Test]
    public void ALineStartingWithATabHasAnEmptyKeyAndIsRefused()
    {
        Assert.That(KeyedLineParser.TryParse("\tvalue", 3, out _, out var error), Is.False);
        Assert.That(error, Is.EqualTo("line 3: the line starts with a TAB, so its key is empty"));
    }

    [Test]
    public void AKeyOf1024BytesIsTakenAndOneOf1025IsRefused()
    {
        Assert.That(KeyedLineParser.TryParse(new string('k', 1024) + "\tv", 1, out var entry, out var error), Is.True, error);
        Assert.That(entry.Key.Length, Is.EqualTo(1024));
        Assert.That(KeyedLineParser.TryParse(new string('k', 1025) + "\tv", 9, out _, out error), Is.False);
        Assert.That(error, Is.EqualTo("line 9: the key is 1025 bytes in UTF-8; the log takes keys of at most 1024"));
    }

    [Test]
    public void TheKeyLimitCountsUtf8BytesNotCharacters()
    {
        // 513 × 'é' is 513 characters but 1026 bytes; a key alone (a tombstone) is held to the same limit.
        Assert.That(KeyedLineParser.TryParse(new string('é', 513), 2, out _, out var error), Is.False);
        Assert.That(error, Is.EqualTo("line 2: the key is 1026 bytes in UTF-8; the log takes keys of at most 1024"));
    }
}
