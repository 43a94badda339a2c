using GeoRelay.Storage;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Unit.Storage;

public sealed class MemoryLogTests
{
    private static readonly SegmentLogOptions Small = new() { SegmentBytes = 1000, Fsync = false };

    private static MemoryLog Filled(ulong from, ulong to, ulong flushedThrough)
    {
        var log = new MemoryLog(new SegmentLogOptions { Fsync = false });
        for (ulong i = from; i <= to; i++)
        {
            log.Append(Entry(i));
            if (i == flushedThrough) log.Flush();
        }
        return log;
    }

    [Test]
    public void Crash_drops_entries_that_were_not_flushed()
    {
        using MemoryLog log = Filled(1, 15, flushedThrough: 10);
        log.Crash(tornTail: false, new Random(1));
        Assert.That((log.FirstIndex, log.LastIndex, log.DurableIndex), Is.EqualTo((1UL, 10UL, 10UL)));
        Assert.That(log.TryGet(11, out _), Is.False);
        Assert.That(log.Append(Entry(11, epoch: 2)), Is.True);
        Assert.That(log.TryGet(11, out LogEntry entry), Is.True);
        AssertSame(Entry(11, epoch: 2), entry);
    }

    [Test]
    public void A_torn_crash_keeps_some_prefix_of_the_unflushed_entries()
    {
        var survivors = new HashSet<ulong>();
        for (int seed = 0; seed < 200; seed++)
        {
            using MemoryLog log = Filled(1, 15, flushedThrough: 10);
            log.Crash(tornTail: true, new Random(seed));
            ulong last = log.LastIndex;
            Assert.That(last, Is.InRange(10UL, 15UL));
            Assert.That(log.DurableIndex, Is.EqualTo(last));
            for (ulong i = 1; i <= last; i++)
            {
                Assert.That(log.TryGet(i, out LogEntry entry), Is.True);
                AssertSame(Entry(i), entry);
            }
            Assert.That(log.Append(Entry(last + 1, epoch: 2)), Is.True);
            survivors.Add(last);
        }
        Assert.That(survivors, Is.EquivalentTo(new ulong[] { 10, 11, 12, 13, 14, 15 }), "every prefix length happens");
    }

    [Test]
    public void Crash_is_reproducible_from_the_seed()
    {
        using MemoryLog a = Filled(1, 100, flushedThrough: 3);
        using MemoryLog b = Filled(1, 100, flushedThrough: 3);
        a.Crash(tornTail: true, new Random(42));
        b.Crash(tornTail: true, new Random(42));
        Assert.That(a.LastIndex, Is.EqualTo(b.LastIndex));
    }

    [Test]
    public void A_segment_roll_over_makes_the_older_segments_durable_as_on_disk()
    {
        using var log = new MemoryLog(Small);
        for (ulong i = 1; i <= 30; i++) log.Append(Entry(i)); // 12 entries per segment: rolls at 13 and 25
        Assert.That(log.DurableIndex, Is.EqualTo(24UL));
        log.Crash(tornTail: false, new Random(0));
        Assert.That(log.LastIndex, Is.EqualTo(24UL));
        Assert.That(log.SegmentCount, Is.EqualTo(2), "the emptied newest segment is gone, as recovery deletes it");
    }

    [Test]
    public void Crash_keeps_the_next_index_a_log_was_pinned_to()
    {
        using var log = new MemoryLog(Small);
        log.Append(Entry(500));
        log.Crash(tornTail: false, new Random(0));
        Assert.That(log.LastIndex, Is.Zero);
        Assert.Throws<ArgumentException>(() => log.Append(Entry(7)), "the segment file named 500 survives the crash");
        Assert.That(log.Append(Entry(500)), Is.True);

        log.ResetTo(900);
        log.Crash(tornTail: true, new Random(0));
        Assert.Throws<ArgumentException>(() => log.Append(Entry(501)));
        Assert.That(log.Append(Entry(900)), Is.True);
    }
}
