using GeoRelay.Storage;
using NUnit.Framework;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;

namespace GeoRelay.Tests.Simulation.Sim;

/// <summary>The simulation re-checks a member's entries from the lowest index it truncated, even if the log grew back.</summary>
[TestFixture]
public sealed class WatchedLogTests
{
    private static LogEntry Entry(ulong index, ulong epoch) => new(index, epoch, 0, default, new byte[] { (byte)index, (byte)epoch });

    [Test]
    public void A_truncation_is_remembered_until_taken_even_after_the_log_grew_back()
    {
        var log = new WatchedLog(new MemoryLog());
        for (ulong i = 1; i <= 10; i++) log.Append(Entry(i, 1));
        Assert.That(log.TakeRewrittenFrom(), Is.EqualTo(ulong.MaxValue), "appending rewrites nothing");

        log.TruncateAfter(7);
        log.TruncateAfter(4);
        for (ulong i = 5; i <= 12; i++) log.Append(Entry(i, 2));
        Assert.That(log.LastIndex, Is.EqualTo(12));
        Assert.That(log.TakeRewrittenFrom(), Is.EqualTo(5), "entries from 5 on were written again");
        Assert.That(log.TakeRewrittenFrom(), Is.EqualTo(ulong.MaxValue), "taken once");

        log.TruncateAfter(12);
        Assert.That(log.TakeRewrittenFrom(), Is.EqualTo(ulong.MaxValue), "truncating after the last entry removes nothing");
    }
}
