using System.Text;
using GeoRelay.Cli;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay tail`: one line per entry, with or without --keys; snapshot markers print nothing.
[TestFixture]
public sealed class TailLineTests
{
    private static LearnerEntry Entry(ulong index, string key, string payload, LearnerEntryFlags flags = LearnerEntryFlags.None) =>
        new(index, 1, DateTimeOffset.UnixEpoch, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(payload), flags);

    private static string? Format(LearnerEntry entry, bool keys)
    {
        var line = new StringBuilder("left over from the previous line");
        return TailLine.TryFormat(entry, keys, line) ? line.ToString() : null;
    }

    [Test]
    public void WithoutKeysALineIsTheIndexAndThePayloadAsBefore()
    {
        Assert.That(Format(Entry(42, "k", "hello\tworld"), keys: false), Is.EqualTo("42\thello\tworld"), "unescaped, as tail always printed");
        Assert.That(Format(Entry(43, "k", "", LearnerEntryFlags.Tombstone), keys: false), Is.EqualTo("43\t"), "a tombstone's payload is empty");
        Assert.That(Format(Entry(7, "k", "v", LearnerEntryFlags.Snapshot), keys: false), Is.EqualTo("7\tv"), "a snapshot entry prints as any other");
    }

    [Test]
    public void WithKeysALineIsTheIndexTheKeyAndThePayload()
    {
        Assert.That(Format(Entry(42, "orders/1", "paid"), keys: true), Is.EqualTo("42\torders/1\tpaid"));
        Assert.That(Format(Entry(43, "", "no key"), keys: true), Is.EqualTo("43\t\tno key"), "an entry without a key has an empty key field");
        Assert.That(Format(Entry(44, "k", ""), keys: true), Is.EqualTo("44\tk\t"), "an empty value keeps its second TAB");
    }

    [Test]
    public void WithKeysATombstoneIsTheIndexAndTheKeyWithNoSecondTab()
    {
        Assert.That(Format(Entry(9, "orders/1", "", LearnerEntryFlags.Tombstone), keys: true), Is.EqualTo("9\torders/1"));
        Assert.That(Format(Entry(5, "k", "", LearnerEntryFlags.Snapshot | LearnerEntryFlags.Tombstone), keys: true), Is.EqualTo("5\tk"));
    }

    [Test]
    public void WithKeysKeyAndPayloadAreEscapedSoTheFieldsStayApart()
    {
        Assert.That(Format(Entry(1, "a\tb", "x\ny\\z"), keys: true), Is.EqualTo("1\t" + @"a\tb" + "\t" + @"x\ny\\z"));
        Assert.That(Format(Entry(2, "a\tb", "", LearnerEntryFlags.Tombstone), keys: true), Is.EqualTo("2\t" + @"a\tb"));
    }

    [TestCase(LearnerEntryFlags.SnapshotBegin)]
    [TestCase(LearnerEntryFlags.SnapshotEnd)]
    public void MarkersPrintNothing(LearnerEntryFlags which)
    {
        var marker = new LearnerEntry(30, 0, DateTimeOffset.UnixEpoch, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty, LearnerEntryFlags.Snapshot | which);
        Assert.That(Format(marker, keys: false), Is.Null);
        Assert.That(Format(marker, keys: true), Is.Null);
    }
}
