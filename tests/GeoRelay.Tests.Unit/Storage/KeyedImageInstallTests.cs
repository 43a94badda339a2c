using System.Text;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>A keyed log installed past its state takes another node's state image and ends with the state it would have folded itself.</summary>
public sealed class KeyedImageInstallTests
{
    private static readonly DateTimeOffset T0 = TimeOf(0);

    private static readonly KeyedCompactionOptions Sync = KeyedCompactionOptions.Default with
    {
        Background = false,
        PersistEvery = TimeSpan.Zero,
        Fsync = false,
    };

    private static LogEntry Put(ulong index, string key, string value, long? micros = null) =>
        new(index, 1, micros ?? TimestampOf(index), Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    private static LogEntry Delete(ulong index, string key, long? micros = null) =>
        new(index, 1, micros ?? TimestampOf(index), Encoding.UTF8.GetBytes(key), ReadOnlyMemory<byte>.Empty, EntryFlags.Tombstone);

    /// <summary>A deterministic keyed write stream over a few keys, with deletes.</summary>
    private static LogEntry Write(ulong index) =>
        index % 5 == 3 ? Delete(index, "k" + index % 6) : Put(index, "k" + index % 6, "v" + index);

    private static KeyedLog InMemory(KeyedCompactionOptions? options = null) =>
        KeyedLog.Open(new MemoryLog(new SegmentLogOptions { Fsync = false }), directory: null, options ?? Sync);

    /// <summary>A log that wrote 1..<paramref name="through"/> itself and folded them all: the reference state.</summary>
    private static KeyedLog Folded(ulong through, Func<ulong, LogEntry>? write = null)
    {
        var log = InMemory();
        for (ulong i = 1; i <= through; i++) log.Append((write ?? Write)(i));
        log.Flush();
        log.ApplyRetention(T0);
        return log;
    }

    /// <summary>The whole state (tombstones too) as text, by index.</summary>
    private static List<string> StateOf(KeyedLog log) =>
        log.StateImage()!.Entries.Select(e => $"{e.Index}:{Encoding.UTF8.GetString(e.Key.Span)}={(e.IsTombstone ? "<deleted>" : Encoding.UTF8.GetString(e.Payload.Span))}").ToList();

    /// <summary>A log installed at <paramref name="start"/> that then took and folded <paramref name="start"/>..<paramref name="last"/>.</summary>
    private static KeyedLog InstalledAt(ulong start, ulong last, Func<ulong, LogEntry>? write = null, KeyedCompactionOptions? options = null)
    {
        var log = InMemory(options);
        log.ResetTo(start);
        for (ulong i = start; i <= last; i++) log.Append((write ?? Write)(i));
        log.Flush();
        log.ApplyRetention(T0);
        return log;
    }

    [Test]
    public void An_image_below_what_the_log_folded_merges_into_the_state_the_log_would_have_folded_itself()
    {
        using KeyedLog source = Folded(100);
        using KeyedLog reference = Folded(140);
        using KeyedLog installed = InstalledAt(61, 140);
        Assert.That((installed.HasCompleteState, installed.MissingThrough, installed.NeedsImage), Is.EqualTo((false, 60UL, true)));
        Assert.That(installed.StateImage(), Is.Null, "an incomplete state is no image to give");

        var image = source.StateImage()!;
        Assert.That(image.Entries.Any(e => e.IsTombstone), "the image carries tombstones");
        Assert.That(installed.OfferImage(image.Through, image.Entries), Is.True);

        Assert.That((installed.HasCompleteState, installed.MissingThrough, installed.ImagesInstalled), Is.EqualTo((true, 0UL, 1L)));
        Assert.That(StateOf(installed), Is.EqualTo(StateOf(reference)));
        Assert.That(installed.Snapshot()!.Entries.Select(e => e.Index), Is.EqualTo(reference.Snapshot()!.Entries.Select(e => e.Index)));
    }

    [Test]
    public void An_image_past_what_the_log_folded_waits_until_the_fold_reaches_it()
    {
        using KeyedLog source = Folded(100);
        using KeyedLog reference = Folded(130);
        using KeyedLog installed = InstalledAt(61, 80);
        var image = source.StateImage()!;
        Assert.That(installed.OfferImage(image.Through, image.Entries), Is.True);
        // Indexes 81..100 may still hold an old leader's entries here: the merge waits for them to be folded (committed).
        Assert.That((installed.HasCompleteState, installed.NeedsImage, installed.Through), Is.EqualTo((false, false, 80UL)));

        for (ulong i = 81; i <= 130; i++) installed.Append(Write(i));
        installed.Flush();
        installed.ApplyRetention(T0, keepFrom: 96);
        Assert.That(installed.HasCompleteState, Is.False, "folded through 95, short of the image's 100");
        installed.ApplyRetention(T0);
        Assert.That(installed.HasCompleteState, Is.True);
        Assert.That(StateOf(installed), Is.EqualTo(StateOf(reference)));
    }

    [Test]
    public void An_image_that_stops_before_the_gap_ends_is_refused_and_the_log_still_needs_one()
    {
        using KeyedLog source = Folded(50);
        using KeyedLog installed = InstalledAt(61, 80);
        var image = source.StateImage()!;
        Assert.That(installed.OfferImage(image.Through, image.Entries), Is.False);
        Assert.That((installed.HasCompleteState, installed.NeedsImage), Is.EqualTo((false, true)));
    }

    [Test]
    public void A_complete_state_takes_no_image()
    {
        using KeyedLog source = Folded(50);
        using KeyedLog complete = Folded(80);
        var image = source.StateImage()!;
        Assert.That(complete.OfferImage(image.Through, image.Entries), Is.False);
        Assert.That(complete.ImagesInstalled, Is.EqualTo(0L));
    }

    [Test]
    public void A_key_deleted_after_the_gap_stays_deleted_however_old_its_tombstone_when_the_image_arrives()
    {
        // k0 is written at 10 (in the image), deleted at 70 (here, long ago), and nothing else touches it.
        LogEntry Writes(ulong i) => i switch
        {
            10 => Put(10, "k0", "old"),
            70 => Delete(70, "k0", TimestampOf(0)),
            _ => Put(i, "other" + i % 3, "v" + i),
        };
        var options = Sync with { TombstoneRetention = TimeSpan.FromHours(1) };
        using KeyedLog source = Folded(100, Writes);
        using KeyedLog installed = InstalledAt(61, 120, Writes, options);
        // Days later, with persists in between: an incomplete state keeps the tombstone, or the image would bring k0 back.
        installed.Append(Put(121, "other0", "late"));
        installed.Flush();
        installed.ApplyRetention(T0.AddDays(3));
        Assert.That(installed.Tombstones, Is.EqualTo(1));

        var image = source.StateImage()!;
        Assert.That(installed.OfferImage(image.Through, image.Entries), Is.True);
        Assert.That(installed.Snapshot()!.Entries.Select(e => Encoding.UTF8.GetString(e.Key.Span)), Does.Not.Contain("k0"));
    }

    [Test]
    public void The_merged_state_is_persisted_and_a_restart_keeps_it_whole()
    {
        using var directory = new TempDirectory();
        using KeyedLog source = Folded(100);
        using KeyedLog reference = Folded(140);
        List<string> merged;
        using (var installed = KeyedLog.Open(new MemoryLog(new SegmentLogOptions { Fsync = false }), directory.Path, Sync))
        {
            installed.ResetTo(61);
            for (ulong i = 61; i <= 140; i++) installed.Append(Write(i));
            installed.Flush();
            installed.ApplyRetention(T0);
            var image = source.StateImage()!;
            Assert.That(installed.OfferImage(image.Through, image.Entries), Is.True);
            merged = StateOf(installed);
        }
        using var reopened = KeyedLog.Open(new MemoryLog(new SegmentLogOptions { Fsync = false }), directory.Path, Sync);
        Assert.That((reopened.HasCompleteState, reopened.Through), Is.EqualTo((true, 140UL)));
        Assert.That(StateOf(reopened), Is.EqualTo(merged).And.EqualTo(StateOf(reference)));
    }

    [Test]
    public void Entries_the_state_never_folded_may_all_be_truncated_but_not_folded_ones()
    {
        // A relay reset to 132 that holds 132..140 and knows none of it final: its feed parent may take all of it back.
        using KeyedLog unfolded = InMemory();
        unfolded.ResetTo(132);
        for (ulong i = 132; i <= 140; i++) unfolded.Append(Write(i));
        unfolded.Flush();
        unfolded.ApplyRetention(T0, keepFrom: 132);
        Assert.That((unfolded.Through, unfolded.MissingThrough), Is.EqualTo((131UL, 131UL)));
        unfolded.TruncateAfter(0);
        Assert.That(unfolded.LastIndex, Is.EqualTo(0UL));

        using KeyedLog folded = InstalledAt(132, 140);
        Assert.That(() => folded.TruncateAfter(135), Throws.InvalidOperationException.With.Message.Contains("already folded"));
    }

    [Test]
    public void A_reset_past_an_offered_image_drops_it_and_the_log_asks_again()
    {
        using KeyedLog source = Folded(100);
        using KeyedLog installed = InstalledAt(61, 80);
        var image = source.StateImage()!;
        Assert.That(installed.OfferImage(image.Through, image.Entries), Is.True);
        installed.ResetTo(500);
        Assert.That((installed.HasCompleteState, installed.NeedsImage, installed.MissingThrough), Is.EqualTo((false, true, 499UL)));
    }
}
