using System.Buffers.Binary;
using System.Text;
using GeoRelay.Storage;
using GeoRelay.Storage.Internal;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>Keyed compaction: the log keeps each key's latest entry in a persisted state, and retention only drops what that state holds.</summary>
public sealed class KeyedLogTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly DateTimeOffset T0 = TimeOf(0);

    /// <summary>Folds and persists inside ApplyRetention, at every pass that folded something.</summary>
    private static readonly KeyedCompactionOptions Sync = KeyedCompactionOptions.Default with
    {
        Background = false,
        PersistEvery = TimeSpan.Zero,
        Fsync = false,
    };

    private static readonly SegmentLogOptions Tiny = new()
    {
        SegmentBytes = 1024,
        RetentionMaxBytes = 4096,
        RetentionMaxAge = TimeSpan.MaxValue,
        IndexIntervalBytes = 256,
        CacheBytes = 2048,
        Fsync = false,
    };

    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    private string StatePath => Path.Combine(_directory.Path, KeyedLog.StateFileName);

    /// <summary>Segments and state in the same directory, as on a node (the segment log ignores other files).</summary>
    private KeyedLog Open(KeyedCompactionOptions? options = null, SegmentLogOptions? segments = null) =>
        KeyedLog.Open(SegmentLog.Open(_directory.Path, segments ?? Tiny), _directory.Path, options ?? Sync);

    private static LogEntry Put(ulong index, string key, string value, long? micros = null) =>
        new(index, 1, micros ?? TimestampOf(index), Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value));

    private static LogEntry Delete(ulong index, string key, long? micros = null) =>
        new(index, 1, micros ?? TimestampOf(index), Encoding.UTF8.GetBytes(key), ReadOnlyMemory<byte>.Empty, EntryFlags.Tombstone);

    private static string Text(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);

    /// <summary>The snapshot as key → (index, value), in its order.</summary>
    private static List<(string Key, ulong Index, string Value)> Contents(KeyedSnapshot snapshot)
    {
        var contents = new List<(string, ulong, string)>();
        foreach (LogEntry entry in snapshot.Entries) contents.Add((Text(entry.Key), entry.Index, Text(entry.Payload)));
        return contents;
    }

    private static void AssertMatches(KeyedSnapshot snapshot, Dictionary<string, (ulong Index, string Value)> expected)
    {
        var actual = new Dictionary<string, (ulong, string)>();
        ulong previous = 0;
        foreach (LogEntry entry in snapshot.Entries)
        {
            Assert.That(entry.Index, Is.GreaterThan(previous), "entries by ascending index");
            Assert.That(entry.IsTombstone, Is.False);
            previous = entry.Index;
            actual.Add(Text(entry.Key), (entry.Index, Text(entry.Payload)));
        }
        Assert.That(actual, Is.EquivalentTo(expected.ToDictionary(p => p.Key, p => (p.Value.Index, p.Value.Value))));
    }

    private long SegmentBytesOnDisk()
    {
        long total = 0;
        foreach (string file in _directory.SegmentFiles()) total += new FileInfo(file).Length;
        return total;
    }

    [Test]
    public void Folding_keeps_each_keys_latest_committed_entry_at_its_original_index()
    {
        using KeyedLog log = Open();
        log.Append(Put(1, "a", "a1"));
        log.Append(Put(2, "b", "b1"));
        log.Append(Put(3, "", "not a key-value write"));
        log.Append(Put(4, "\0members", "internal"));
        log.Append(Put(5, "a", "a2"));
        log.Append(Delete(6, "b"));
        log.Append(Put(7, "c", "c1"));
        log.Append(Put(8, "d", "d1"));
        log.Flush();
        log.Append(Put(9, "c", "not durable yet"));

        // Only what the caller says is committed is folded.
        log.ApplyRetention(T0, keepFrom: 6);
        Assert.That(log.Through, Is.EqualTo(5UL));
        Assert.That(Contents(log.Snapshot()!), Is.EqualTo(new[] { ("b", 2UL, "b1"), ("a", 5UL, "a2") }));

        // Nor past what is durable.
        log.ApplyRetention(T0);
        Assert.That(log.Through, Is.EqualTo(8UL));
        KeyedSnapshot snapshot = log.Snapshot()!;
        Assert.That(snapshot.Through, Is.EqualTo(8UL));
        Assert.That(Contents(snapshot), Is.EqualTo(new[] { ("a", 5UL, "a2"), ("c", 7UL, "c1"), ("d", 8UL, "d1") }));
        Assert.That((log.LiveKeys, log.Tombstones), Is.EqualTo((3, 1)), "b's tombstone stays in the state, not in the snapshot");
        Assert.That(snapshot.Bytes, Is.EqualTo(snapshot.Entries.Sum(e => (long)e.EncodedSize)));
        Assert.That(snapshot.StartAfter(0), Is.EqualTo(0));
        Assert.That(snapshot.StartAfter(5), Is.EqualTo(1));
        Assert.That(snapshot.StartAfter(6), Is.EqualTo(1));
        Assert.That(snapshot.StartAfter(8), Is.EqualTo(3));
        Assert.That(log.Snapshot(), Is.SameAs(snapshot), "unchanged state, same snapshot");

        log.Flush();
        log.ApplyRetention(T0);
        Assert.That(Contents(log.Snapshot()!), Is.EqualTo(new[] { ("a", 5UL, "a2"), ("d", 8UL, "d1"), ("c", 9UL, "not durable yet") }));
        Assert.That(Contents(snapshot), Has.Count.EqualTo(3).And.Contains(("c", 7UL, "c1")), "an earlier snapshot does not change");
    }

    [Test]
    public void Retention_keeps_the_disk_bounded_while_the_snapshot_keeps_every_keys_latest_value()
    {
        using KeyedLog log = Open();
        var expected = new Dictionary<string, (ulong Index, string Value)>();
        var rng = new Random(7);
        ulong index = 0;
        long peak = 0;
        for (int round = 0; round < 40; round++)
        {
            for (int k = 0; k < 50; k++)
            {
                string key = "key-" + rng.Next(50);
                index++;
                // Keys ending in 0 or 5 are deleted now and then, and may come back later.
                if ((key.EndsWith('0') || key.EndsWith('5')) && rng.Next(3) == 0)
                {
                    log.Append(Delete(index, key));
                    expected.Remove(key);
                }
                else
                {
                    string value = $"{key}@{index}";
                    log.Append(Put(index, key, value));
                    expected[key] = (index, value);
                }
            }
            log.Flush();
            log.ApplyRetention(T0);
            peak = Math.Max(peak, SegmentBytesOnDisk());
            AssertMatches(log.Snapshot()!, expected);
        }

        Assert.That(log.FirstIndex, Is.GreaterThan(1500UL), "old segments were dropped");
        Assert.That(peak, Is.LessThanOrEqualTo(Tiny.RetentionMaxBytes + Tiny.SegmentBytes));
        Assert.That(log.PersistedThrough, Is.EqualTo(index));
        Assert.That(log.Tombstones, Is.GreaterThan(0));
    }

    [Test]
    public void The_state_survives_reopening_and_folding_continues_from_there()
    {
        var expected = new Dictionary<string, (ulong Index, string Value)>();
        // Persisted only on dispose: a clean shutdown keeps what was folded.
        var rarely = Sync with { PersistEvery = TimeSpan.FromHours(1) };
        using (KeyedLog log = Open(rarely))
        {
            for (ulong i = 1; i <= 300; i++)
            {
                log.Append(Put(i, "k" + i % 10, "v" + i));
                expected["k" + i % 10] = (i, "v" + i);
            }
            log.Flush();
            log.ApplyRetention(T0);
            Assert.That((log.Through, log.PersistedThrough, log.Persists), Is.EqualTo((300UL, 0UL, 0L)));
        }

        using (KeyedLog log = Open())
        {
            Assert.That((log.Through, log.PersistedThrough), Is.EqualTo((300UL, 300UL)));
            AssertMatches(log.Snapshot()!, expected);

            // Now retention may drop the folded segments: the state holds what they did.
            log.ApplyRetention(T0);
            Assert.That(log.FirstIndex, Is.GreaterThan(200UL));
            for (ulong i = 301; i <= 320; i++)
            {
                log.Append(Put(i, "k" + i % 20, "w" + i));
                expected["k" + i % 20] = (i, "w" + i);
            }
            log.Flush();
            log.ApplyRetention(T0);
            Assert.That(log.Through, Is.EqualTo(320UL));
            AssertMatches(log.Snapshot()!, expected);
        }

        using (KeyedLog log = Open())
        {
            Assert.That(log.Through, Is.EqualTo(320UL));
            AssertMatches(log.Snapshot()!, expected);
        }
    }

    [Test]
    public void A_tombstone_is_dropped_at_the_first_persist_after_it_is_older_than_the_retention()
    {
        var options = Sync with { TombstoneRetention = TimeSpan.FromHours(1) };
        long t0 = TimestampOf(0);
        using (KeyedLog log = Open(options))
        {
            log.Append(Put(1, "a", "a1", t0));
            log.Append(Put(2, "b", "b1", t0));
            log.Append(Delete(3, "a", t0));
            log.Flush();
            log.ApplyRetention(T0.AddMinutes(59));
            Assert.That((log.LiveKeys, log.Tombstones), Is.EqualTo((1, 1)));

            // Drops happen at a persist, and a persist needs something folded.
            log.Append(Put(4, "c", "c1", t0));
            log.Flush();
            log.ApplyRetention(T0.AddMinutes(61));
            Assert.That((log.LiveKeys, log.Tombstones), Is.EqualTo((2, 0)));
            Assert.That(Contents(log.Snapshot()!), Is.EqualTo(new[] { ("b", 2UL, "b1"), ("c", 4UL, "c1") }));
        }
        using (KeyedLog log = Open(options))
        {
            Assert.That((log.LiveKeys, log.Tombstones), Is.EqualTo((2, 0)), "the file holds no tombstone either");
        }
    }

    /// <summary>A state file of one entry, written by the log.</summary>
    private byte[] WrittenStateFile()
    {
        using (KeyedLog log = Open())
        {
            log.Append(Put(1, "key", "value"));
            log.Flush();
            log.ApplyRetention(T0);
            Assert.That(log.Persists, Is.EqualTo(1L));
        }
        return File.ReadAllBytes(StatePath);
    }

    private static void Reseal(byte[] file) =>
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(file.Length - 4), Crc32C.Compute(file.AsSpan(0, file.Length - 4)));

    private InvalidDataException OpenFails()
    {
        var log = SegmentLog.Open(_directory.Path, Tiny);
        try
        {
            return Assert.Throws<InvalidDataException>(() => KeyedLog.Open(log, _directory.Path, Sync))!;
        }
        finally
        {
            log.Dispose();
        }
    }

    [Test]
    public void A_state_file_of_a_newer_format_version_is_refused_naming_the_file_and_both_versions()
    {
        byte[] file = WrittenStateFile();
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(4)), Is.EqualTo(KeyedLog.StateFormatVersion));
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(4), 2);
        Reseal(file);
        File.WriteAllBytes(StatePath, file);
        Assert.That(OpenFails().Message, Is.EqualTo($"'{StatePath}' is keyed-state format version 2, newer than version 1 this build reads"));
    }

    [Test]
    public void A_flipped_byte_in_the_state_file_is_refused_by_its_checksum()
    {
        byte[] file = WrittenStateFile();
        file[^8] ^= 0x20; // in the payload
        File.WriteAllBytes(StatePath, file);
        Assert.That(OpenFails().Message, Does.Contain(StatePath).And.Contain("fails its checksum"));
    }

    [Test]
    public void A_truncated_state_file_is_refused()
    {
        byte[] file = WrittenStateFile();
        File.WriteAllBytes(StatePath, file[..^10]);
        Assert.That(OpenFails().Message, Does.Contain(StatePath).And.Contain("checksum"));
        File.WriteAllBytes(StatePath, file[..10]);
        Assert.That(OpenFails().Message, Does.Contain(StatePath).And.Contain("truncated"));
    }

    [Test]
    public void A_huge_count_or_length_is_refused_without_allocating_it()
    {
        byte[] file = WrittenStateFile();
        const int CountAt = 15, PayloadLengthAt = 23 + 27;

        byte[] manyEntries = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(manyEntries.AsSpan(CountAt), 1UL << 40);
        Reseal(manyEntries);
        File.WriteAllBytes(StatePath, manyEntries);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.That(OpenFails().Message, Does.Contain(StatePath).And.Contain($"declares {1UL << 40} entries at offset 15"));

        byte[] longPayload = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(longPayload.AsSpan(PayloadLengthAt), 1u << 30);
        Reseal(longPayload);
        File.WriteAllBytes(StatePath, longPayload);
        Assert.That(OpenFails().Message, Does.Contain(StatePath).And.Contain($"payload length {1u << 30} at offset 23"));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(64L * 1024 * 1024), "a 1 GiB payload was not allocated");
    }

    [Test]
    public void A_reset_that_skips_nothing_folded_keeps_the_state()
    {
        using KeyedLog log = Open();
        log.ResetTo(1); // a relay pins its empty log where its feed starts
        for (ulong i = 1; i <= 10; i++) log.Append(Put(i, "k" + i, "v"));
        log.Flush();
        log.ApplyRetention(T0);
        log.ResetTo(9); // starts again below what is folded: the same committed entries come back
        for (ulong i = 9; i <= 12; i++) log.Append(Put(i, "k" + i, "v"));
        log.Flush();
        log.ApplyRetention(T0);
        Assert.That(log.HasCompleteState, Is.True);
        Assert.That(log.Snapshot()!.Entries.Select(e => e.Index), Is.EqualTo(Enumerable.Range(1, 12).Select(i => (ulong)i)));
    }

    [Test]
    public void ResetTo_makes_the_state_incomplete_and_a_restart_knows_it()
    {
        using (KeyedLog log = Open())
        {
            for (ulong i = 1; i <= 10; i++) log.Append(Put(i, "k" + i, "v"));
            log.Flush();
            log.ApplyRetention(T0);
            Assert.That(log.Snapshot()!.Entries, Has.Count.EqualTo(10));

            log.ResetTo(500);
            Assert.That((log.HasCompleteState, log.Through, log.LiveKeys), Is.EqualTo((false, 499UL, 0)));
            Assert.That(log.Snapshot(), Is.Null);
        }
        using (KeyedLog log = Open())
        {
            Assert.That((log.HasCompleteState, log.Through), Is.EqualTo((false, 499UL)));
            log.Append(Put(500, "k", "v"));
            log.Flush();
            log.ApplyRetention(T0);
            Assert.That((log.HasCompleteState, log.Through, log.LiveKeys), Is.EqualTo((false, 500UL, 1)));
            Assert.That(log.Snapshot(), Is.Null);
        }
    }

    [Test]
    public void A_log_that_starts_past_the_state_makes_it_incomplete()
    {
        var inner = new MemoryLog(new SegmentLogOptions { Fsync = false });
        using var log = KeyedLog.Open(inner, directory: null, Sync);
        for (ulong i = 100; i <= 110; i++) log.Append(Put(i, "k" + i, "v")); // a relay that started mid-stream
        log.Flush();
        log.ApplyRetention(T0);
        Assert.That((log.HasCompleteState, log.Through, log.LiveKeys), Is.EqualTo((false, 110UL, 11)));
        Assert.That(log.Snapshot(), Is.Null);
    }

    [Test]
    public void Truncating_a_folded_entry_is_refused()
    {
        using KeyedLog log = Open();
        for (ulong i = 1; i <= 10; i++) log.Append(Put(i, "k", "v" + i));
        log.Flush();
        log.ApplyRetention(T0, keepFrom: 8);
        var refused = Assert.Throws<InvalidOperationException>(() => log.TruncateAfter(5))!;
        Assert.That(refused.Message, Does.Contain("TruncateAfter(5)").And.Contain("through 7"));
        Assert.That(log.LastIndex, Is.EqualTo(10UL), "nothing was truncated");

        log.TruncateAfter(7);
        Assert.That(log.LastIndex, Is.EqualTo(7UL));
    }

    [Test]
    public void Retention_never_drops_a_segment_whose_entries_are_not_persisted()
    {
        var hourly = Sync with { PersistEvery = TimeSpan.FromHours(1) };
        using KeyedLog log = Open(hourly);
        for (ulong i = 1; i <= 300; i++) log.Append(Put(i, "k" + i % 7, "v" + i));
        log.Flush();

        Assert.That(log.ApplyRetention(T0), Is.EqualTo(0));
        Assert.That((log.Through, log.PersistedThrough, log.FirstIndex), Is.EqualTo((300UL, 0UL, 1UL)), "folded, not persisted: nothing dropped");

        Assert.That(log.ApplyRetention(T0.AddHours(1), keepFrom: 101), Is.GreaterThan(0));
        Assert.That(log.PersistedThrough, Is.EqualTo(300UL));
        Assert.That(log.FirstIndex, Is.LessThanOrEqualTo(101UL), "the caller's keepFrom still holds");

        Assert.That(log.ApplyRetention(T0.AddHours(1)), Is.GreaterThan(0));
        Assert.That(log.FirstIndex, Is.GreaterThan(200UL));
    }

    [Test]
    public void A_persist_that_fails_keeps_the_old_file_and_retention_waits_for_the_next()
    {
        Assume.That(File.Exists("/dev/full"), "needs /dev/full (Linux)");
        using KeyedLog log = Open();
        for (ulong i = 1; i <= 100; i++) log.Append(Put(i, "k" + i % 5, "v" + i));
        log.Flush();
        log.ApplyRetention(T0);
        Assert.That(log.PersistedThrough, Is.EqualTo(100UL));
        byte[] good = File.ReadAllBytes(StatePath);

        File.CreateSymbolicLink(AtomicFile.TemporaryPath(StatePath), "/dev/full");
        for (ulong i = 101; i <= 300; i++) log.Append(Put(i, "k" + i % 5, "v" + i));
        log.Flush();
        log.ApplyRetention(T0);
        Assert.That(log.LastPersistError, Is.TypeOf<DiskFailedException>());
        Assert.That((log.Through, log.PersistedThrough), Is.EqualTo((300UL, 100UL)));
        Assert.That(log.FirstIndex, Is.LessThanOrEqualTo(101UL), "only segments the old file covers may go");
        Assert.That(File.ReadAllBytes(StatePath), Is.EqualTo(good));

        File.Delete(AtomicFile.TemporaryPath(StatePath));
        log.ApplyRetention(T0);
        Assert.That((log.PersistedThrough, log.LastPersistError), Is.EqualTo((300UL, (Exception?)null)), "the next trigger persists again");
        Assert.That(log.FirstIndex, Is.GreaterThan(200UL));
    }

    [Test]
    public void In_the_background_appends_go_on_while_folding_and_WaitForFold_sees_it_catch_up()
    {
        var background = KeyedCompactionOptions.Default with { Fsync = false, PersistEveryBytes = 64 * 1024 };
        var expected = new Dictionary<string, (ulong Index, string Value)>();
        using KeyedLog log = Open(background, Tiny with { RetentionMaxBytes = 64 * 1024, SegmentBytes = 16 * 1024 });
        const ulong Total = 20_000;
        for (ulong i = 1; i <= Total; i++)
        {
            string key = "k" + i % 97;
            log.Append(Put(i, key, "v" + i));
            expected[key] = (i, "v" + i);
            if (i % 500 != 0) continue;
            // The writer never waits for the fold thread: it flushes and hands over a new commit index.
            log.Flush();
            log.ApplyRetention(T0, keepFrom: i + 1);
        }
        log.Flush();
        log.ApplyRetention(T0);

        Assert.That(log.WaitForFold(Total, Wait), Is.True);
        AssertMatches(log.Snapshot()!, expected);
        Assert.That(log.WaitForFold(Total + 1, TimeSpan.FromMilliseconds(50)), Is.False, "nothing past the log is folded");
        Assert.That(log.LastFoldError, Is.Null);
    }

    [Test]
    public void Entries_read_for_the_fold_stay_intact_however_much_is_appended_before_they_are_copied()
    {
        // The fold reads on its own thread and copies afterwards; meanwhile the node appends. Without KeepReadMemory the
        // segment log's cache handed the read entries' chunk to newer entries, and the fold took their bytes for keys
        // (seen on real relays and members as keys made of payload bytes).
        var segments = SegmentLog.Open(_directory.Path, Tiny with { CacheBytes = 64 * 1024, RetentionMaxBytes = long.MaxValue });
        using KeyedLog log = KeyedLog.Open(segments, _directory.Path, Sync);
        for (ulong i = 1; i <= 100; i++) log.Append(Put(i, "key-" + i, "value-" + i));
        var read = new List<LogEntry>();
        log.Read(1, 100, long.MaxValue, read);
        for (ulong i = 101; i <= 5_000; i++) log.Append(Put(i, "other-" + i, new string('x', 40)));
        for (int k = 0; k < read.Count; k++)
            Assert.That((Text(read[k].Key), Text(read[k].Payload)), Is.EqualTo(("key-" + (k + 1), "value-" + (k + 1))), $"entry {k + 1} as read");
    }

    [Test]
    public void Options_out_of_range_are_refused_by_name()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => (Sync with { PersistEveryBytes = 0 }).Validate())!.ParamName,
            Is.EqualTo(nameof(KeyedCompactionOptions.PersistEveryBytes)));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => (Sync with { TombstoneRetention = TimeSpan.FromSeconds(-1) }).Validate())!.ParamName,
            Is.EqualTo(nameof(KeyedCompactionOptions.TombstoneRetention)));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => (Sync with { PersistEvery = TimeSpan.FromSeconds(-1) }).Validate())!.ParamName,
            Is.EqualTo(nameof(KeyedCompactionOptions.PersistEvery)));
    }
}
