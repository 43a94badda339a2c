using System.Buffers.Binary;
using System.Text;
using GeoRelay.Storage;
using GeoRelay.Storage.Internal;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>What only the on-disk log does: survive reopening, crashes, torn tails and corruption.</summary>
public sealed class SegmentLogTests
{
    private const int EntrySize = 78;
    /// <summary>Records of a segment this build writes start after its header.</summary>
    private const int HeaderSize = 16;

    private static readonly SegmentLogOptions Small = new()
    {
        SegmentBytes = 1000,
        IndexIntervalBytes = 200,
        CacheBytes = 1000,
        RetentionMaxBytes = long.MaxValue,
        RetentionMaxAge = TimeSpan.MaxValue,
        Fsync = false,
    };

    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    private SegmentLog Open(SegmentLogOptions? options = null, Action<string>? progress = null) =>
        SegmentLog.Open(_directory.Path, options ?? Small, progress);

    private static void AppendRange(IEntryLog log, ulong from, ulong to, ulong epoch = 1)
    {
        for (ulong i = from; i <= to; i++) Assert.That(log.Append(Entry(i, epoch)), Is.True, $"append {i}");
    }

    private static void AssertHolds(IEntryLog log, ulong from, ulong to, ulong epoch = 1)
    {
        Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((from, to)));
        var all = new List<LogEntry>();
        Assert.That(log.Read(from, int.MaxValue, long.MaxValue, all), Is.EqualTo((int)(to - from + 1)));
        for (int i = 0; i < all.Count; i++) AssertSame(Entry(from + (ulong)i, epoch), all[i]);
        for (ulong i = from; i <= to; i += 5)
        {
            Assert.That(log.TryGet(i, out LogEntry entry), Is.True);
            AssertSame(Entry(i, epoch), entry);
        }
    }

    [Test]
    public void Only_a_log_that_fsyncs_says_its_flush_waits_for_the_disk()
    {
        // Engines run a waiting flush on the host's sync thread and any other in place: the hop costs more than a write.
        using (SegmentLog log = Open(Small with { Fsync = true })) Assert.That(log.FlushWaitsForDisk, Is.True);
        using (SegmentLog log = Open(Small with { Fsync = false })) Assert.That(log.FlushWaitsForDisk, Is.False);
        Assert.That(new MemoryLog(Small with { Fsync = true }).FlushWaitsForDisk, Is.True);
        Assert.That(new MemoryLog(Small with { Fsync = false }).FlushWaitsForDisk, Is.False);
    }

    [Test]
    public void Reopening_recovers_everything_and_appends_continue()
    {
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            AppendRange(log, 1, 100, epoch: 3);
            log.Flush();
            Assert.That(log.DurableIndex, Is.EqualTo(100UL));
        }
        Assert.That(_directory.SegmentFiles(), Has.Length.EqualTo(9));
        Assert.That(Path.GetFileName(_directory.SegmentFiles()[1]), Is.EqualTo("00000000000000000013.log"));

        using (SegmentLog log = Open())
        {
            Assert.That((log.DurableIndex, log.LastEpoch), Is.EqualTo((100UL, 3UL)));
            AssertHolds(log, 1, 100, epoch: 3);
            Assert.That(log.LastRecovery, Is.EqualTo(log.LastRecovery with
            {
                Segments = 9, Entries = 100, BytesScanned = 100 * EntrySize, FirstIndex = 1, LastIndex = 100, TruncatedFile = null,
            }));
            AppendRange(log, 101, 120, epoch: 3);
        }
        using (SegmentLog log = Open())
        {
            AssertHolds(log, 1, 120, epoch: 3);
        }
    }

    [Test]
    public void A_killed_process_keeps_at_least_what_was_flushed()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 30);
            log.Flush();
            AppendRange(log, 31, 35);
            log.SimulateCrash();
        }
        using SegmentLog reopened = Open();
        // 25-35 sat in the write buffer; the roll-overs at 13 and 25 had handed everything before them to the OS.
        AssertHolds(reopened, 1, 30);
        Assert.That(reopened.Append(Entry(31, epoch: 2)), Is.True);
    }

    [Test]
    public void Reads_of_evicted_entries_come_from_disk_through_the_sparse_index()
    {
        using SegmentLog log = Open(Small with { SegmentBytes = 1 << 20, CacheBytes = 10 * EntrySize, IndexIntervalBytes = 1000 });
        AppendRange(log, 1, 500);
        Assert.That(log.SegmentCount, Is.EqualTo(1));
        for (ulong i = 1; i <= 500; i += 37)
        {
            Assert.That(log.TryGet(i, out LogEntry entry), Is.True);
            AssertSame(Entry(i), entry);
        }
        var read = new List<LogEntry>();
        Assert.That(log.Read(480, 100, long.MaxValue, read), Is.EqualTo(21), "crosses from disk into the cache");
        for (int i = 0; i < read.Count; i++) AssertSame(Entry(480 + (ulong)i), read[i]);
    }

    [Test]
    public void Entries_read_stay_intact_after_the_cache_moves_on_or_the_log_is_truncated()
    {
        using SegmentLog log = Open(Small with { CacheBytes = 5 * EntrySize });
        AppendRange(log, 1, 20);
        var held = new List<LogEntry>();
        log.Read(1, 100, long.MaxValue, held);
        log.TruncateAfter(10);
        AppendRange(log, 11, 60, epoch: 2);
        for (int i = 0; i < held.Count; i++) AssertSame(Entry(1 + (ulong)i), held[i]);
    }

    /// <summary>Every offset inside the last few records, as a crash during their write could leave the file.</summary>
    [Test]
    public void A_torn_tail_is_cut_at_every_offset_and_appends_continue()
    {
        SegmentLogOptions oneSegment = Small with { SegmentBytes = 1 << 20 };
        using (SegmentLog log = Open(oneSegment))
        {
            AppendRange(log, 1, 20);
        }
        string file = _directory.SegmentFiles().Single();
        byte[] original = File.ReadAllBytes(file);
        Assert.That(original, Has.Length.EqualTo(HeaderSize + 20 * EntrySize));

        var messages = new List<string>();
        for (int length = HeaderSize + 16 * EntrySize; length < original.Length; length++)
        {
            File.WriteAllBytes(file, original.AsSpan(0, length).ToArray());
            ulong complete = (ulong)((length - HeaderSize) / EntrySize);
            messages.Clear();
            using (SegmentLog log = Open(oneSegment, messages.Add))
            {
                Assert.That(log.LastIndex, Is.EqualTo(complete), $"file cut to {length} bytes");
                bool torn = (length - HeaderSize) % EntrySize != 0;
                Assert.That(log.LastRecovery.TruncatedFile, torn ? Is.EqualTo(file) : Is.Null);
                if (torn)
                {
                    Assert.That(log.LastRecovery.TruncatedAtOffset, Is.EqualTo(HeaderSize + (long)complete * EntrySize));
                    Assert.That(messages, Has.Count.EqualTo(1).And.Some.Contains(file));
                }
                Assert.That(log.Append(Entry(complete + 1, epoch: 2)), Is.True);
            }
            using (SegmentLog log = Open(oneSegment))
            {
                Assert.That(log.LastIndex, Is.EqualTo(complete + 1));
                Assert.That(log.LastRecovery.TruncatedFile, Is.Null);
                Assert.That(log.TryGet(complete + 1, out LogEntry last), Is.True);
                AssertSame(Entry(complete + 1, epoch: 2), last);
            }
        }
    }

    [Test]
    public void A_damaged_last_record_is_dropped_whichever_byte_is_hit()
    {
        using (SegmentLog log = Open(Small with { SegmentBytes = 1 << 20 }))
        {
            AppendRange(log, 1, 10);
        }
        string file = _directory.SegmentFiles().Single();
        byte[] original = File.ReadAllBytes(file);
        int lastRecord = HeaderSize + 9 * EntrySize;
        for (int at = lastRecord; at < original.Length; at++)
        {
            foreach (byte flip in new byte[] { 0x01, 0x80, 0xFF })
            {
                byte[] damaged = original.ToArray();
                damaged[at] ^= flip;
                File.WriteAllBytes(file, damaged);
                using SegmentLog log = Open();
                Assert.That(log.LastIndex, Is.EqualTo(9UL), $"byte {at - lastRecord} of the last record ^ 0x{flip:X2}");
                Assert.That(log.LastRecovery.TruncatedAtOffset, Is.EqualTo((long)lastRecord));
                Assert.That(new FileInfo(file).Length, Is.EqualTo((long)lastRecord));
                Assert.That(log.Append(Entry(10, epoch: 2)), Is.True);
            }
        }
    }

    [Test]
    public void A_huge_length_in_the_tail_is_not_believed()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 3);
        }
        string file = _directory.SegmentFiles().Single();
        byte[] bytes = File.ReadAllBytes(file);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(HeaderSize + 2 * EntrySize), uint.MaxValue);
        File.WriteAllBytes(file, bytes);
        using SegmentLog reopened = Open();
        Assert.That(reopened.LastIndex, Is.EqualTo(2UL));
        Assert.That(reopened.LastRecovery.TruncationReason, Does.Contain("exceeds the maximum"));
    }

    [Test]
    public void Corruption_in_an_older_segment_names_the_file_and_offset()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 40);
        }
        string second = _directory.SegmentFiles()[1];
        byte[] bytes = File.ReadAllBytes(second);
        int damagedAt = HeaderSize + 4 * EntrySize + 50;
        bytes[damagedAt] ^= 0x10;
        File.WriteAllBytes(second, bytes);

        var error = Assert.Throws<InvalidDataException>(() => Open());
        Assert.That(error!.Message, Does.Contain(second).And.Contain($"offset {HeaderSize + 4 * EntrySize}").And.Contain("CRC"));
        Assert.That(File.ReadAllBytes(second), Is.EqualTo(bytes), "nothing was repaired behind the operator's back");
    }

    [Test]
    public void A_missing_segment_in_the_middle_is_an_error()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 40);
        }
        File.Delete(_directory.SegmentFiles()[1]);
        var error = Assert.Throws<InvalidDataException>(() => Open());
        Assert.That(error!.Message, Does.Contain(_directory.SegmentFiles()[1]).And.Contain("starts at index 25"));
    }

    [Test]
    public void Files_that_are_not_segments_are_left_alone()
    {
        File.WriteAllText(Path.Combine(_directory.Path, "notes.log"), "not a segment");
        File.WriteAllText(Path.Combine(_directory.Path, "00000000000000000001.tmp"), "nor this");
        using SegmentLog log = Open();
        Assert.That(log.LastIndex, Is.Zero);
        AppendRange(log, 1, 3);
        Assert.That(File.Exists(Path.Combine(_directory.Path, "notes.log")), Is.True);
    }

    [Test]
    public void A_roll_over_that_crashed_before_its_first_record_is_undone()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 12);
        }
        File.WriteAllBytes(Path.Combine(_directory.Path, "00000000000000000013.log"), Array.Empty<byte>());
        using (SegmentLog log = Open())
        {
            Assert.That(log.SegmentCount, Is.EqualTo(1));
            AppendRange(log, 13, 30);
        }
        using SegmentLog reopened = Open();
        AssertHolds(reopened, 1, 30);
    }

    [Test]
    public void Every_segment_starts_with_the_magic_format_version_and_its_base_index()
    {
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            AppendRange(log, 1, 30);
        }
        foreach (string file in _directory.SegmentFiles())
        {
            ulong named = ulong.Parse(Path.GetFileNameWithoutExtension(file));
            Assert.That(HeaderOf(file), Is.EqualTo(("GRSG", (ushort)2, (ushort)0, named)), file);
        }
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            log.ResetTo(7000);
        }
        string pin = _directory.SegmentFiles().Single();
        Assert.That(File.ReadAllBytes(pin), Has.Length.EqualTo(HeaderSize), "a pin is a header and no record");
        Assert.That(HeaderOf(pin), Is.EqualTo(("GRSG", (ushort)2, (ushort)0, 7000UL)));
    }

    [Test]
    public void Write_format_1_creates_headerless_segments_an_older_build_can_read_and_either_format_reopens()
    {
        using (SegmentLog log = Open(Small with { WriteFormat = 1 }))
        {
            AppendRange(log, 1, 30);
        }
        foreach (string file in _directory.SegmentFiles())
            Assert.That(HeaderOf(file).Item1, Is.Not.EqualTo("GRSG"), file + " starts with its first record");
        using (SegmentLog log = Open(Small))
        {
            AssertHolds(log, 1, 30);
            AppendRange(log, 31, 60);
        }
        using (SegmentLog log = Open(Small with { WriteFormat = 1 }))
        {
            AssertHolds(log, 1, 60);
        }
    }

    [Test]
    public void A_directory_in_the_headerless_format_is_read_and_grows_headered_segments()
    {
        string first = WriteHeaderlessSegment(1, 12);
        string second = WriteHeaderlessSegment(13, 20);
        using (SegmentLog log = Open())
        {
            Assert.That(log.LastRecovery.TruncatedFile, Is.Null);
            AssertHolds(log, 1, 20);
            AppendRange(log, 21, 30); // 21-24 fill the headerless segment, 25 rolls over
        }
        Assert.That(_directory.SegmentFiles(), Is.EqualTo(new[] { first, second, Path.Combine(_directory.Path, "00000000000000000025.log") }));
        Assert.That(File.ReadAllBytes(second), Has.Length.EqualTo(12 * EntrySize), "appends to a headerless segment stay headerless");
        Assert.That(HeaderOf(_directory.SegmentFiles()[2]), Is.EqualTo(("GRSG", (ushort)2, (ushort)0, 25UL)));
        using (SegmentLog log = Open())
        {
            AssertHolds(log, 1, 30);
            log.TruncateAfter(17); // inside the headerless segment: its offsets start at 0
            AppendRange(log, 18, 19, epoch: 2);
        }
        using (SegmentLog log = Open())
        {
            var all = new List<LogEntry>();
            Assert.That(log.Read(1, int.MaxValue, long.MaxValue, all), Is.EqualTo(19));
            for (int i = 0; i < all.Count; i++) AssertSame(Entry((ulong)i + 1, epoch: i < 17 ? 1UL : 2UL), all[i]);
            Assert.That(File.ReadAllBytes(second), Has.Length.EqualTo(7 * EntrySize));
        }
    }

    [Test]
    public void A_segment_from_a_newer_format_is_refused_naming_the_file_and_both_versions()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 20);
        }
        // The newest segment too: a newer format is never taken for a torn tail and cut.
        foreach (string file in _directory.SegmentFiles())
        {
            byte[] original = File.ReadAllBytes(file);
            byte[] newer = original.ToArray();
            BinaryPrimitives.WriteUInt16LittleEndian(newer.AsSpan(4), 3);
            File.WriteAllBytes(file, newer);
            var error = Assert.Throws<InvalidDataException>(() => Open())!;
            Assert.That(error.Message, Is.EqualTo($"Segment '{file}' has format version 3; this build reads versions 1 to 2: upgrade GeoRelay to open it."));
            Assert.That(File.ReadAllBytes(file), Is.EqualTo(newer), "left as found");
            File.WriteAllBytes(file, original);
        }
        using SegmentLog reopened = Open();
        AssertHolds(reopened, 1, 20);
    }

    [Test]
    public void A_header_whose_base_index_does_not_match_the_file_name_is_refused()
    {
        using (SegmentLog log = Open())
        {
            AppendRange(log, 1, 20);
        }
        string second = _directory.SegmentFiles()[1];
        byte[] bytes = File.ReadAllBytes(second);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), 14);
        File.WriteAllBytes(second, bytes);
        var error = Assert.Throws<InvalidDataException>(() => Open())!;
        Assert.That(error.Message, Does.Contain(second).And.Contain("base index 14").And.Contain("13 in its name"));
    }

    /// <summary>Every prefix of a header, as a crash during a roll-over could leave the new segment.</summary>
    [Test]
    public void A_roll_over_segment_with_a_torn_header_is_undone()
    {
        byte[] header = new byte[HeaderSize];
        SegmentHeader.Write(header, 13);
        for (int length = 1; length < HeaderSize; length++)
        {
            foreach (string file in _directory.SegmentFiles()) File.Delete(file);
            using (SegmentLog log = Open())
            {
                AppendRange(log, 1, 12);
            }
            string torn = Path.Combine(_directory.Path, "00000000000000000013.log");
            File.WriteAllBytes(torn, header.AsSpan(0, length).ToArray());
            using (SegmentLog log = Open())
            {
                Assert.That(log.SegmentCount, Is.EqualTo(1), $"header torn at {length}");
                Assert.That(File.Exists(torn), Is.False);
                Assert.That((log.LastRecovery.TruncatedFile, log.LastRecovery.TruncatedAtOffset, log.LastRecovery.TruncatedBytes), Is.EqualTo((torn, 0L, (long)length)));
                AppendRange(log, 13, 30);
            }
            using SegmentLog reopened = Open();
            AssertHolds(reopened, 1, 30);
            Assert.That(HeaderOf(torn), Is.EqualTo(("GRSG", (ushort)2, (ushort)0, 13UL)));
        }
    }

    /// <summary>Every prefix of a pin's header, empty included (as an older build left its pins): the name still pins.</summary>
    [Test]
    public void A_torn_header_keeps_the_index_ResetTo_pinned()
    {
        for (int length = 0; length < HeaderSize; length++)
        {
            foreach (string file in _directory.SegmentFiles()) File.Delete(file);
            using (SegmentLog log = Open(Small with { Fsync = true }))
            {
                AppendRange(log, 1, 50);
                log.ResetTo(7000);
            }
            string pin = _directory.SegmentFiles().Single();
            File.WriteAllBytes(pin, File.ReadAllBytes(pin).AsSpan(0, length).ToArray());
            using (SegmentLog log = Open())
            {
                Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((0UL, 0UL)), $"header torn at {length}");
                Assert.Throws<ArgumentException>(() => log.Append(Entry(51)));
            }
            using (SegmentLog log = Open())
            {
                Assert.Throws<ArgumentException>(() => log.Append(Entry(51)), "still pinned after a second restart");
                AppendRange(log, 7000, 7010);
            }
            Assert.That(HeaderOf(pin), Is.EqualTo(("GRSG", (ushort)2, (ushort)0, 7000UL)), "the first record brings the header");
            using SegmentLog reopened = Open();
            AssertHolds(reopened, 7000, 7010);
        }
    }

    [Test]
    public void Truncating_to_before_the_first_record_of_a_headered_segment_survives_reopening()
    {
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            AppendRange(log, 1, 30);
            log.TruncateAfter(24); // the segment starting at 25 goes whole
            log.Flush();
        }
        using (SegmentLog log = Open())
        {
            AssertHolds(log, 1, 24);
            Assert.That(File.ReadAllBytes(_directory.SegmentFiles()[^1]), Has.Length.EqualTo(HeaderSize + 12 * EntrySize));
            log.ResetTo(100);
            AppendRange(log, 100, 110);
            log.TruncateAfter(99); // before the only segment's first record: an empty headered segment pins 100
        }
        Assert.That(File.ReadAllBytes(_directory.SegmentFiles().Single()), Has.Length.EqualTo(HeaderSize));
        using (SegmentLog log = Open())
        {
            Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((0UL, 0UL)));
            Assert.Throws<ArgumentException>(() => log.Append(Entry(101)));
            AppendRange(log, 100, 105, epoch: 2);
        }
        using SegmentLog reopened = Open();
        AssertHolds(reopened, 100, 105, epoch: 2);
    }

    private string WriteHeaderlessSegment(ulong from, ulong to)
    {
        using var bytes = new MemoryStream();
        for (ulong i = from; i <= to; i++)
        {
            LogEntry entry = Entry(i);
            var record = new byte[entry.EncodedSize];
            RecordHeader.Write(record, entry);
            bytes.Write(record);
        }
        string path = Path.Combine(_directory.Path, $"{from:D20}.log");
        File.WriteAllBytes(path, bytes.ToArray());
        return path;
    }

    private static (string Magic, ushort Version, ushort Reserved, ulong BaseIndex) HeaderOf(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        return (Encoding.ASCII.GetString(bytes, 0, 4), BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(4)),
            BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(6)), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));
    }

    [Test]
    public void TruncateAfter_survives_reopening()
    {
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            AppendRange(log, 1, 100);
            log.Flush();
            log.TruncateAfter(30);
            Assert.That(log.LastIndex, Is.EqualTo(30UL));
            AppendRange(log, 31, 33, epoch: 2);
            log.Flush();
        }
        Assert.That(_directory.SegmentFiles(), Has.Length.EqualTo(3), "segments above index 30 were deleted");
        using (SegmentLog log = Open())
        {
            Assert.That((log.LastIndex, log.LastEpoch), Is.EqualTo((33UL, 2UL)));
            for (ulong i = 1; i <= 30; i++)
            {
                Assert.That(log.TryGet(i, out LogEntry kept), Is.True);
                AssertSame(Entry(i), kept);
            }
            Assert.That(log.TryGet(31, out LogEntry entry), Is.True);
            AssertSame(Entry(31, epoch: 2), entry);

            log.TruncateAfter(12); // exactly the end of the first segment
        }
        using (SegmentLog log = Open())
        {
            AssertHolds(log, 1, 12);
            Assert.That(_directory.SegmentFiles(), Has.Length.EqualTo(1));
        }
    }

    [Test]
    public void ResetTo_survives_reopening()
    {
        using (SegmentLog log = Open(Small with { Fsync = true }))
        {
            AppendRange(log, 1, 50);
            log.ResetTo(7000);
        }
        using (SegmentLog log = Open())
        {
            Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((0UL, 0UL)));
            Assert.Throws<ArgumentException>(() => log.Append(Entry(51)));
            AppendRange(log, 7000, 7010);
        }
        using (SegmentLog log = Open())
        {
            AssertHolds(log, 7000, 7010);
        }
    }

    [Test]
    public void Retention_deletes_the_files_of_dropped_segments()
    {
        using (SegmentLog log = Open(Small with { RetentionMaxBytes = 3000, Fsync = true }))
        {
            AppendRange(log, 1, 100);
            Assert.That(log.ApplyRetention(TimeOf(100)), Is.EqualTo(6));
            Assert.That(log.Read(1, 10, long.MaxValue, new List<LogEntry>()), Is.Zero);
        }
        Assert.That(_directory.SegmentFiles(), Has.Length.EqualTo(3));
        using SegmentLog reopened = Open();
        AssertHolds(reopened, 73, 100);
    }

    [Test]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Open(Small with { SegmentBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Open(Small with { IndexIntervalBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Open(Small with { CacheBytes = -1 }));
    }

    [Test]
    public void Default_options_are_as_documented()
    {
        SegmentLogOptions options = SegmentLogOptions.Default;
        Assert.That(options.SegmentBytes, Is.EqualTo(64L << 20));
        Assert.That(options.RetentionMaxBytes, Is.EqualTo(256L << 20));
        Assert.That(options.RetentionMaxAge, Is.EqualTo(TimeSpan.FromHours(1)));
        Assert.That(options.IndexIntervalBytes, Is.EqualTo(4096));
        Assert.That(options.CacheBytes, Is.EqualTo(64L << 20));
        Assert.That(options.Fsync, Is.True);
    }

    [Test]
    public void Concurrent_appends_flushes_and_reads_stay_consistent()
    {
        using SegmentLog log = Open(Small with { SegmentBytes = 4000, CacheBytes = 2000 });
        const ulong Count = 3000;
        var writer = Task.Run(() =>
        {
            for (ulong i = 1; i <= Count; i++)
            {
                log.Append(Entry(i));
                if (i % 50 == 0) log.Flush();
            }
            log.Flush();
        });
        var reader = Task.Run(() =>
        {
            var batch = new List<LogEntry>();
            ulong next = 1;
            while (next <= Count)
            {
                batch.Clear();
                int n = log.Read(next, 64, long.MaxValue, batch);
                for (int i = 0; i < n; i++)
                {
                    if (batch[i].Index != next || !batch[i].Payload.Span.SequenceEqual(Entry(next).Payload.Span))
                        throw new AssertionException($"entry {next} read wrong");
                    next++;
                }
                if (n == 0) Thread.Yield();
            }
        });
        Assert.That(Task.WaitAll(new[] { writer, reader }, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(log.DurableIndex, Is.EqualTo(Count));
    }
}
