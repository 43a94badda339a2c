using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>
/// Fail-stop on the disk: the first write that fails turns the log into one that refuses every write and never
/// makes anything more durable (a failed fsync is never retried). The segment log meets a real ENOSPC through
/// /dev/full; the in-memory log's simulated faults follow the same rules.
/// </summary>
public sealed class DiskFailureTests
{
    private const string DevFull = "/dev/full";

    private static readonly SegmentLogOptions Options = SegmentLogOptions.Default with
    {
        RetentionMaxBytes = long.MaxValue,
        RetentionMaxAge = TimeSpan.MaxValue,
        Fsync = true,
    };

    private TempDirectory _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = new TempDirectory();

    [TearDown]
    public void DeleteDirectory() => _directory.Dispose();

    /// <summary>A log whose (empty) active segment is /dev/full: every write to it fails with ENOSPC.</summary>
    private SegmentLog OpenOnFullDevice(out string segment)
    {
        Assume.That(File.Exists(DevFull), "needs /dev/full (Linux)");
        segment = Path.Combine(_directory.Path, "00000000000000000001.log");
        File.CreateSymbolicLink(segment, DevFull);
        return SegmentLog.Open(_directory.Path, Options);
    }

    [Test]
    public void A_write_that_fails_stops_the_log_for_good_and_names_the_file_and_the_error()
    {
        using var log = OpenOnFullDevice(out string segment);
        Assert.That(log.Append(Entry(1)), Is.True, "an append only fills the log's own buffer");
        Assert.That(log.Append(Entry(2)), Is.True);

        var failure = Assert.Throws<DiskFailedException>(log.Flush)!;
        Assert.That(failure.Operation, Is.EqualTo("write"));
        Assert.That(failure.Path, Is.EqualTo(segment));
        Assert.That(failure.Error, Does.Contain("No space left on device"));
        Assert.That(log.Failure, Is.SameAs(failure));
        Assert.That(log.DurableIndex, Is.EqualTo(0UL), "nothing became durable");

        // Every later write is refused without touching the disk again: the message says it failed earlier.
        var refusals = new TestDelegate[]
        {
            () => log.Append(Entry(3)),
            log.Flush,
            () => log.TruncateAfter(1),
            () => log.ResetTo(10),
            () => log.ApplyRetention(DateTimeOffset.UtcNow),
        };
        foreach (var refused in refusals)
        {
            var again = Assert.Throws<DiskFailedException>(refused)!;
            Assert.That(again.Message, Does.StartWith("the log failed earlier"));
            Assert.That((again.Operation, again.Path), Is.EqualTo(("write", segment)));
        }
        Assert.That(log.DurableIndex, Is.EqualTo(0UL));
        Assert.That(log.LastIndex, Is.EqualTo(2UL), "reads still see what was appended");
        Assert.DoesNotThrow(log.Dispose, "a failed log closes without writing or syncing again");
    }

    [Test]
    public void An_entry_larger_than_the_write_buffer_fails_the_same_way()
    {
        using var log = OpenOnFullDevice(out _);
        var large = Entry(1, payloadLength: 2 << 20);
        var failure = Assert.Throws<DiskFailedException>(() => log.Append(large))!;
        Assert.That(failure.Operation, Is.EqualTo("write"));
        Assert.That(log.LastIndex, Is.EqualTo(0UL), "the entry that failed is not in the log");
        Assert.Throws<DiskFailedException>(() => log.Append(Entry(1)));
    }

    [Test]
    public void A_memory_log_whose_fsync_fails_keeps_appending_until_the_flush_then_refuses_everything()
    {
        var log = new MemoryLog(Options);
        for (ulong i = 1; i <= 3; i++) log.Append(Entry(i));
        log.Flush();
        log.BreakDisk(DiskFault.SyncFails);
        Assert.That(log.Append(Entry(4)), Is.True, "the page cache takes it");
        Assert.That(log.DiskFailed, Is.False, "not noticed yet");
        Assert.That(Assert.Throws<DiskFailedException>(log.Flush)!.Operation, Is.EqualTo("fsync"));
        Assert.That(log.DiskFailed, Is.True);
        Assert.That(log.DurableIndex, Is.EqualTo(3UL));
        Assert.Throws<DiskFailedException>(() => log.Append(Entry(5)));
        Assert.Throws<DiskFailedException>(log.Flush);
        Assert.Throws<DiskFailedException>(() => log.TruncateAfter(2));

        // Restarted on a repaired disk: what was durable is there, the entry whose fsync failed is not.
        log.Crash(tornTail: false, new Random(1));
        Assert.That((log.LastIndex, log.DurableIndex, log.DiskFailed), Is.EqualTo((3UL, 3UL, false)));
        Assert.That(log.Append(Entry(4)), Is.True);
    }

    [Test]
    public void A_segment_that_cannot_be_read_back_at_open_is_a_disk_failure_naming_it()
    {
        var segment = Path.Combine(_directory.Path, "00000000000000000001.log");
        UnreadableFile.Create(segment);

        var failure = Assert.Throws<DiskFailedException>(() => SegmentLog.Open(_directory.Path, Options))!;

        Assert.That((failure.Operation, failure.Path), Is.EqualTo(("read", segment)));
        Assert.That(failure.Message, Is.EqualTo($"read of '{segment}' failed: {failure.Error}"));
        Assert.That(failure.InnerException, Is.InstanceOf<IOException>());
    }

    [Test]
    public void A_memory_log_whose_writes_fail_refuses_the_next_append()
    {
        var log = new MemoryLog(Options);
        log.Append(Entry(1));
        log.BreakDisk(DiskFault.WriteFails);
        Assert.That(Assert.Throws<DiskFailedException>(() => log.Append(Entry(2)))!.Operation, Is.EqualTo("write"));
        Assert.That(log.LastIndex, Is.EqualTo(1UL));
        Assert.Throws<DiskFailedException>(log.Flush);
        Assert.That(log.DurableIndex, Is.EqualTo(0UL), "the flush that would have covered entry 1 failed");
    }

    [Test]
    public void A_broken_memory_disk_repaired_before_any_write_never_fails()
    {
        var log = new MemoryLog(Options);
        log.BreakDisk(DiskFault.WriteFails);
        log.BreakDisk(DiskFault.None);
        Assert.That(log.Append(Entry(1)), Is.True);
        log.Flush();
        Assert.That((log.DurableIndex, log.DiskFailed), Is.EqualTo((1UL, false)));
    }
}
