using GeoRelay.Storage;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Storage.StorageTestData;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>Behaviour every <see cref="IEntryLog"/> shares; run against <see cref="SegmentLog"/> and <see cref="MemoryLog"/>.</summary>
public abstract class LogContractTests
{
    /// <summary>Entry(i) takes 78 bytes, so a 1000-byte segment holds 12 of them.</summary>
    protected const int EntrySize = 78;

    protected static readonly SegmentLogOptions Small = new()
    {
        SegmentBytes = 1000,
        IndexIntervalBytes = 200,
        RetentionMaxBytes = long.MaxValue,
        RetentionMaxAge = TimeSpan.MaxValue,
        Fsync = false,
    };

    private readonly List<IEntryLog> _logs = new();

    protected abstract IEntryLog CreateLog(SegmentLogOptions options);

    protected IEntryLog Create(SegmentLogOptions? options = null)
    {
        IEntryLog log = CreateLog(options ?? Small);
        _logs.Add(log);
        return log;
    }

    [TearDown]
    public void DisposeLogs()
    {
        foreach (IEntryLog log in _logs) log.Dispose();
        _logs.Clear();
    }

    protected static void AppendRange(IEntryLog log, ulong from, ulong to, ulong epoch = 1)
    {
        for (ulong i = from; i <= to; i++) Assert.That(log.Append(Entry(i, epoch)), Is.True, $"append {i}");
    }

    protected static void AssertHolds(IEntryLog log, ulong from, ulong to, ulong epoch = 1)
    {
        Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((from, to)));
        for (ulong i = from; i <= to; i++)
        {
            Assert.That(log.TryGet(i, out LogEntry entry), Is.True, $"TryGet {i}");
            AssertSame(Entry(i, epoch), entry);
        }
        var all = new List<LogEntry>();
        Assert.That(log.Read(from, int.MaxValue, long.MaxValue, all), Is.EqualTo((int)(to - from + 1)));
        for (int i = 0; i < all.Count; i++) AssertSame(Entry(from + (ulong)i, epoch), all[i]);
    }

    [Test]
    public void Empty_log_holds_nothing()
    {
        IEntryLog log = Create();
        Assert.That((log.FirstIndex, log.LastIndex, log.DurableIndex, log.LastEpoch), Is.EqualTo((0UL, 0UL, 0UL, 0UL)));
        Assert.That(log.TryGet(1, out _), Is.False);
        Assert.That(log.Read(1, 10, 1000, new List<LogEntry>()), Is.Zero);
        log.Flush();
        Assert.That(log.DurableIndex, Is.Zero);
    }

    [Test]
    public void Appends_read_back_across_segment_rolls()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 100);
        Assert.That(log.LastEpoch, Is.EqualTo(1UL));
        AssertHolds(log, 1, 100);
        Assert.That(log.TryGet(0, out _), Is.False);
        Assert.That(log.TryGet(101, out _), Is.False);
        if (log is SegmentLog segmentLog) Assert.That(segmentLog.SegmentCount, Is.GreaterThan(5));
        if (log is MemoryLog memoryLog) Assert.That(memoryLog.SegmentCount, Is.GreaterThan(5));
    }

    [Test]
    public void Read_honours_entry_and_byte_limits_and_returns_at_least_one()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 60);
        var into = new List<LogEntry> { Entry(999) };

        Assert.That(log.Read(5, 7, long.MaxValue, into), Is.EqualTo(7));
        Assert.That(into.Count, Is.EqualTo(8), "appends to what the list held");
        Assert.That(into[1].Index, Is.EqualTo(5UL));
        Assert.That(into[^1].Index, Is.EqualTo(11UL));

        into.Clear();
        Assert.That(log.Read(10, 100, 3 * EntrySize, into), Is.EqualTo(3));
        Assert.That(log.Read(10, 100, 3 * EntrySize - 1, into.Also(l => l.Clear())), Is.EqualTo(2));
        Assert.That(log.Read(10, 100, 0, into.Also(l => l.Clear())), Is.EqualTo(1), "always at least one");
        Assert.That(into[0].Index, Is.EqualTo(10UL));

        into.Clear();
        Assert.That(log.Read(58, 100, long.MaxValue, into), Is.EqualTo(3), "stops at the last entry");
        Assert.That(log.Read(61, 100, long.MaxValue, into), Is.Zero);
        Assert.That(log.Read(1, 0, long.MaxValue, into), Is.Zero);

        // Every split point across segments and the cache boundary.
        for (ulong from = 1; from <= 60; from += 7)
        {
            into.Clear();
            int n = log.Read(from, 13, long.MaxValue, into);
            Assert.That(n, Is.EqualTo((int)Math.Min(13, 61 - from)));
            for (int i = 0; i < n; i++) AssertSame(Entry(from + (ulong)i), into[i]);
        }
    }

    [Test]
    public void A_log_may_start_mid_stream_but_never_skips_an_index()
    {
        IEntryLog log = Create();
        Assert.Throws<ArgumentException>(() => log.Append(Entry(0)));
        Assert.That(log.Append(Entry(1000)), Is.True);
        Assert.That((log.FirstIndex, log.LastIndex), Is.EqualTo((1000UL, 1000UL)));
        Assert.Throws<ArgumentException>(() => log.Append(Entry(1002)));
        Assert.That(log.Append(Entry(1001)), Is.True);
        AssertHolds(log, 1000, 1001);
    }

    [Test]
    public void Duplicate_appends_are_ignored()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 30);
        Assert.That(log.Append(Entry(30, epoch: 9, payloadLength: 3)), Is.False);
        Assert.That(log.Append(Entry(1, epoch: 9)), Is.False);
        Assert.That(log.LastEpoch, Is.EqualTo(1UL));
        AssertHolds(log, 1, 30);
    }

    [Test]
    public void Entries_too_large_are_rejected()
    {
        IEntryLog log = Create();
        var hugeKey = new LogEntry(1, 1, 0, new byte[LogEntry.MaxKeyLength + 1], ReadOnlyMemory<byte>.Empty);
        Assert.Throws<ArgumentException>(() => log.Append(hugeKey));
        Assert.That(log.LastIndex, Is.Zero);
    }

    [Test]
    public void Large_entries_get_a_segment_of_their_own()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 3);
        var big = new LogEntry(4, 1, TimestampOf(4), Bytes(4, 10, 1), Bytes(4, 1_500_000, 3));
        Assert.That(log.Append(big), Is.True);
        AppendRange(log, 5, 6);
        Assert.That(log.TryGet(4, out LogEntry read), Is.True);
        AssertSame(big, read);
        var all = new List<LogEntry>();
        Assert.That(log.Read(1, 10, long.MaxValue, all), Is.EqualTo(6));
        AssertSame(big, all[3]);
        AssertSame(Entry(6), all[5]);
    }

    [Test]
    public void Flush_makes_everything_appended_durable()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 5);
        log.Flush();
        Assert.That(log.DurableIndex, Is.EqualTo(5UL));
        AppendRange(log, 6, 8);
        Assert.That(log.DurableIndex, Is.EqualTo(5UL));
        log.Flush();
        Assert.That(log.DurableIndex, Is.EqualTo(8UL));
    }

    [Test]
    public void TruncateAfter_drops_later_entries_and_takes_a_new_epoch()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 50);
        log.Flush();
        log.TruncateAfter(17);
        Assert.That((log.LastIndex, log.DurableIndex, log.LastEpoch), Is.EqualTo((17UL, 17UL, 1UL)));
        Assert.That(log.TryGet(18, out _), Is.False);
        Assert.That(log.Read(18, 10, long.MaxValue, new List<LogEntry>()), Is.Zero);
        Assert.Throws<ArgumentException>(() => log.Append(Entry(19, epoch: 2)));
        AppendRange(log, 18, 40, epoch: 2);
        Assert.That(log.LastEpoch, Is.EqualTo(2UL));
        for (ulong i = 1; i <= 17; i++)
        {
            Assert.That(log.TryGet(i, out LogEntry kept), Is.True);
            AssertSame(Entry(i), kept);
        }
        var tail = new List<LogEntry>();
        log.Read(18, 100, long.MaxValue, tail);
        Assert.That(tail.Count, Is.EqualTo(23));
        for (int i = 0; i < tail.Count; i++) AssertSame(Entry(18 + (ulong)i, epoch: 2), tail[i]);

        log.TruncateAfter(40);
        log.TruncateAfter(1000);
        Assert.That(log.LastIndex, Is.EqualTo(40UL), "truncating at or past the end changes nothing");
    }

    [Test]
    public void TruncateAfter_below_the_first_entry_empties_the_log_and_pins_the_next_index()
    {
        IEntryLog log = Create();
        AppendRange(log, 100, 130);
        log.TruncateAfter(60);
        Assert.That((log.FirstIndex, log.LastIndex, log.DurableIndex, log.LastEpoch), Is.EqualTo((0UL, 0UL, 0UL, 0UL)));
        Assert.Throws<ArgumentException>(() => log.Append(Entry(100)));
        Assert.That(log.Append(Entry(61)), Is.True);

        log.TruncateAfter(0);
        Assert.That(log.LastIndex, Is.Zero);
        Assert.That(log.Append(Entry(500)), Is.True, "after TruncateAfter(0) any index may start the log");
        AssertHolds(log, 500, 500);
    }

    [Test]
    public void ResetTo_drops_everything_and_fixes_the_next_index()
    {
        IEntryLog log = Create();
        AppendRange(log, 1, 40);
        log.Flush();
        log.ResetTo(5000);
        Assert.That((log.FirstIndex, log.LastIndex, log.DurableIndex, log.LastEpoch), Is.EqualTo((0UL, 0UL, 0UL, 0UL)));
        Assert.That(log.TryGet(40, out _), Is.False);
        Assert.Throws<ArgumentException>(() => log.Append(Entry(41)));
        Assert.Throws<ArgumentException>(() => log.Append(Entry(5001)));
        AppendRange(log, 5000, 5020);
        AssertHolds(log, 5000, 5020);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.ResetTo(0));
    }

    [Test]
    public void Retention_by_size_drops_whole_oldest_segments_but_never_the_active_one()
    {
        IEntryLog log = Create(Small with { RetentionMaxBytes = 2500 });
        AppendRange(log, 1, 100);
        int dropped = log.ApplyRetention(TimeOf(100));
        Assert.That(dropped, Is.GreaterThan(0));
        ulong first = log.FirstIndex;
        Assert.That(first, Is.GreaterThan(1UL));
        Assert.That((first - 1) % 12, Is.Zero, "only whole 12-entry segments are dropped");
        Assert.That((100 - first + 1) * EntrySize, Is.LessThanOrEqualTo(2500UL));
        Assert.That((100 - first + 1 + 12) * EntrySize, Is.GreaterThan(2500UL), "no more than needed");
        Assert.That(log.TryGet(first - 1, out _), Is.False);
        Assert.That(log.Read(1, 10, long.MaxValue, new List<LogEntry>()), Is.Zero, "reading below FirstIndex returns nothing");
        AssertHolds(log, first, 100);
        Assert.That(log.ApplyRetention(TimeOf(100)), Is.Zero);

        IEntryLog single = Create(Small with { RetentionMaxBytes = 1 });
        AppendRange(single, 1, 5);
        Assert.That(single.ApplyRetention(TimeOf(5)), Is.Zero, "the active segment stays");
        AssertHolds(single, 1, 5);
    }

    [Test]
    public void Retention_keeps_every_segment_holding_keepFrom_or_later_so_a_leaders_oldest_entry_stays_committed()
    {
        IEntryLog log = Create(Small with { RetentionMaxBytes = 1 });
        AppendRange(log, 1, 60); // five segments: 1-12, 13-24, 25-36, 37-48, 49-60
        Assert.That(log.ApplyRetention(TimeOf(60), keepFrom: 30), Is.EqualTo(2), "1-12 and 13-24 end below 30");
        Assert.That(log.FirstIndex, Is.EqualTo(25UL), "the segment holding 30 stays, so the oldest entry is at most 30");
        Assert.That(log.ApplyRetention(TimeOf(60), keepFrom: 30), Is.Zero);
        Assert.That(log.ApplyRetention(TimeOf(60), keepFrom: 48), Is.EqualTo(1), "25-36 ends below 48; 37-48 holds it");
        Assert.That(log.ApplyRetention(TimeOf(60)), Is.EqualTo(1), "without a bound only the active segment stays");
        AssertHolds(log, 49, 60);
    }

    [Test]
    public void NextIndex_is_the_index_the_next_append_must_have()
    {
        IEntryLog log = Create(Small);
        Assert.That(log.NextIndex, Is.Zero, "an empty log takes any first index");
        AppendRange(log, 7, 9);
        Assert.That(log.NextIndex, Is.EqualTo(10UL));
        log.ResetTo(500);
        Assert.That((log.LastIndex, log.NextIndex), Is.EqualTo((0UL, 500UL)), "an empty log pins where a reset put it");
        log.TruncateAfter(0);
        Assert.That(log.NextIndex, Is.Zero);
    }

    [Test]
    public void Retention_by_age_drops_segments_whose_newest_entry_is_too_old()
    {
        IEntryLog log = Create(Small with { RetentionMaxAge = TimeSpan.FromSeconds(30) });
        AppendRange(log, 1, 60); // five segments: 1-12, 13-24, 25-36, 37-48, 49-60
        Assert.That(log.ApplyRetention(TimeOf(42)), Is.Zero, "the newest entry of 1-12 is exactly 30 s old");
        Assert.That(log.ApplyRetention(TimeOf(43)), Is.EqualTo(1));
        Assert.That(log.FirstIndex, Is.EqualTo(13UL));
        Assert.That(log.ApplyRetention(TimeOf(1_000_000)), Is.EqualTo(3));
        AssertHolds(log, 49, 60);
        Assert.That(log.Read(13, 10, long.MaxValue, new List<LogEntry>()), Is.Zero);
    }
}

internal static class ListExtensions
{
    public static List<T> Also<T>(this List<T> list, Action<List<T>> action)
    {
        action(list);
        return list;
    }
}

public sealed class MemoryLogContractTests : LogContractTests
{
    protected override IEntryLog CreateLog(SegmentLogOptions options) => new MemoryLog(options);
}

[TestFixture(0L)]
[TestFixture(1000L)]
[TestFixture(64L << 20)]
public sealed class SegmentLogContractTests(long cacheBytes) : LogContractTests
{
    private readonly List<TempDirectory> _directories = new();

    protected override IEntryLog CreateLog(SegmentLogOptions options)
    {
        var directory = new TempDirectory();
        _directories.Add(directory);
        return SegmentLog.Open(directory.Path, options with { CacheBytes = cacheBytes });
    }

    [TearDown]
    public void DeleteDirectories()
    {
        DisposeLogs();
        foreach (TempDirectory directory in _directories) directory.Dispose();
        _directories.Clear();
    }
}
