using System.Text;
using GeoRelay.Cli;
using GeoRelay.LearnerClient;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay state`: the lines it prints for the snapshot a subscription from SubscribeFrom.Snapshot brings.
[TestFixture]
public sealed class KeyedStateBuilderTests
{
    private static LearnerEntry Begin(ulong through) => Marker(through, LearnerEntryFlags.SnapshotBegin);

    private static LearnerEntry End(ulong through) => Marker(through, LearnerEntryFlags.SnapshotEnd);

    // As the SDK hands them over: markers carry the Snapshot flag too.
    private static LearnerEntry Marker(ulong through, LearnerEntryFlags which) =>
        new(through, 0, DateTimeOffset.UnixEpoch, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty, LearnerEntryFlags.Snapshot | which);

    private static LearnerEntry Value(ulong index, string key, string value) => Value(index, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    private static LearnerEntry Value(ulong index, byte[] key, byte[] value) =>
        new(index, 1, DateTimeOffset.UnixEpoch, key, value, LearnerEntryFlags.Snapshot);

    private static LearnerEntry Tombstone(ulong index, string key) =>
        new(index, 1, DateTimeOffset.UnixEpoch, Encoding.UTF8.GetBytes(key), ReadOnlyMemory<byte>.Empty, LearnerEntryFlags.Snapshot | LearnerEntryFlags.Tombstone);

    private static string Lines(KeyedStateBuilder state)
    {
        var output = new StringWriter();
        state.WriteTo(output);
        return output.ToString();
    }

    /// <summary>Applies every entry; the last must complete the state and no earlier one may.</summary>
    private static KeyedStateBuilder Build(params LearnerEntry[] entries)
    {
        var state = new KeyedStateBuilder();
        for (int i = 0; i < entries.Length; i++)
            Assert.That(state.Apply(entries[i]), Is.EqualTo(i == entries.Length - 1), $"entry {i} completes the state only if it is the end marker");
        return state;
    }

    [Test]
    public void TheSnapshotPrintsAsKeyTabValueLinesSortedByKey()
    {
        var state = Build(Begin(40), Value(3, "b", "2"), Value(7, "c", "3"), Value(12, "a", "1"), End(40));
        Assert.Multiple(() =>
        {
            Assert.That(Lines(state), Is.EqualTo("a\t1\nb\t2\nc\t3\n"));
            Assert.That(state.Index, Is.EqualTo(40ul));
            Assert.That(state.Count, Is.EqualTo(3));
            Assert.That(state.Complete, Is.True);
        });
    }

    [Test]
    public void KeysSortByTheirUtf8BytesNotByUtf16()
    {
        // U+FF61 sorts after U+1F600's surrogates in UTF-16 but before its bytes in UTF-8 (EF BD A1 < F0 9F 98 80).
        var state = Build(Begin(9), Value(1, "\U0001F600", "emoji"), Value(2, "\uFF61", "halfwidth"), Value(3, "Z", "upper"), Value(4, "a", "lower"), End(9));
        Assert.That(Lines(state), Is.EqualTo("Z\tupper\na\tlower\n\uFF61\thalfwidth\n\U0001F600\temoji\n"));
    }

    [Test]
    public void ASecondBeginMarkerDropsWhatTheFirstSnapshotBrought()
    {
        var state = Build(Begin(10), Value(4, "old", "x"), Value(8, "both", "first"),
            Begin(25), Value(8, "both", "second"), Value(20, "new", "y"), End(25));
        Assert.That(Lines(state), Is.EqualTo("both\tsecond\nnew\ty\n"));
        Assert.That(state.Index, Is.EqualTo(25ul), "the state is the newer snapshot's");
    }

    [Test]
    public void ATombstoneInTheSnapshotLeavesItsKeyOut()
    {
        var state = Build(Begin(30), Value(5, "gone", "x"), Value(6, "kept", "y"), Tombstone(29, "gone"), End(30));
        Assert.That(Lines(state), Is.EqualTo("kept\ty\n"));
    }

    [Test]
    public void AnEmptySnapshotAtZeroPrintsNothing()
    {
        var state = Build(Begin(0), End(0));
        Assert.That(Lines(state), Is.Empty);
        Assert.That(state.Index, Is.EqualTo(0ul));
    }

    [Test]
    public void EntriesWithoutAKeyAreNotKeyedState()
    {
        var state = Build(Begin(3), Value(1, "", "no key"), Value(2, "k", "v"), End(3));
        Assert.That(Lines(state), Is.EqualTo("k\tv\n"));
    }

    [Test]
    public void TabsNewlinesAndBackslashesAreEscapedSoEveryPairIsOneLineOfTwoFields()
    {
        var state = Build(Begin(5), Value(1, "a\tb", "line1\nline2\r"), Value(2, @"c\d", "x\\ty"), End(5));
        Assert.That(Lines(state), Is.EqualTo("a\\tb\tline1\\nline2\\r\n" + @"c\\d" + "\t" + @"x\\ty" + "\n"));
    }

    [Test]
    public void BytesThatAreNotUtf8PrintAsReplacementCharactersAndSortByTheirBytes()
    {
        var state = Build(Begin(5), Value(1, [0xFF], [0x61, 0xC3]), Value(2, [0x7A], [0x62]), End(5));
        Assert.That(Lines(state), Is.EqualTo("z\tb\n\uFFFD\ta\uFFFD\n"));
    }

    [Test]
    public void AStreamEntryBeforeTheEndMarkerIsAnError()
    {
        var state = new KeyedStateBuilder();
        state.Apply(Begin(5));
        var stream = new LearnerEntry(6, 1, DateTimeOffset.UnixEpoch, Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"));
        Assert.That(() => state.Apply(stream), Throws.TypeOf<InvalidDataException>().With.Message.Contains("entry 6 of the stream"));
    }
}
