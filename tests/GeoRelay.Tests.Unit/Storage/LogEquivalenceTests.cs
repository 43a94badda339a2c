using GeoRelay.Storage;
using NUnit.Framework;
using FsPropertyAttribute = FsCheck.NUnit.PropertyAttribute;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>Random operation sequences give the same observable results on <see cref="SegmentLog"/> and <see cref="MemoryLog"/>.</summary>
public sealed class LogEquivalenceTests
{
    private static readonly SegmentLogOptions Options = new()
    {
        SegmentBytes = 700,
        IndexIntervalBytes = 150,
        CacheBytes = 400,
        RetentionMaxBytes = 2500,
        RetentionMaxAge = TimeSpan.FromSeconds(25),
        Fsync = false,
    };

    private static LogEntry EntryFor(ulong index, ulong epoch) =>
        new(index, epoch, StorageTestData.TimestampOf(index),
            StorageTestData.Bytes(index, (int)(index % 5), 3),
            StorageTestData.Bytes(index ^ epoch, (int)(index * 37 % 150), 11));

    [FsProperty(MaxTest = 60, EndSize = 150)]
    public void SegmentLog_and_MemoryLog_agree(int[] operations)
    {
        using var directory = new TempDirectory();
        SegmentLog disk = SegmentLog.Open(directory.Path, Options);
        using var memory = new MemoryLog(Options);
        ulong epoch = 1;
        try
        {
            foreach (int operation in operations ?? Array.Empty<int>())
            {
                uint op = (uint)operation % 10;
                ulong arg = (uint)operation / 10;
                ulong last = memory.LastIndex;
                string step = $"op {op} arg {arg} at last {last}";
                switch (op)
                {
                    case <= 2:
                        Same(step, disk, memory, log => log.Append(EntryFor(last == 0 ? 1 + arg % 3 : last + 1, epoch)));
                        break;
                    case 3:
                        Same(step, disk, memory, log => log.Append(EntryFor(last - Math.Min(last, arg % 5), epoch)));
                        break;
                    case 4:
                        Same(step, disk, memory, log => log.Append(EntryFor(last + 2 + arg % 3, epoch)));
                        break;
                    case 5:
                        Same(step, disk, memory, log => { log.Flush(); return 0; });
                        break;
                    case 6:
                        epoch++;
                        Same(step, disk, memory, log => { log.TruncateAfter(last - Math.Min(last, arg % 20)); return 0; });
                        break;
                    case 7:
                        Same(step, disk, memory, log => { log.ResetTo(last + 1 + arg % 40); return 0; });
                        break;
                    case 8:
                        Same(step, disk, memory, log => log.ApplyRetention(StorageTestData.TimeOf(last + arg % 40)));
                        break;
                    default:
                        disk.Dispose();
                        disk = SegmentLog.Open(directory.Path, Options);
                        memory.Flush(); // a clean shutdown flushes
                        break;
                }
                AssertSameState(step, disk, memory, arg);
            }
        }
        finally
        {
            disk.Dispose();
        }
    }

    private static void Same<T>(string step, IEntryLog disk, IEntryLog memory, Func<IEntryLog, T> action)
    {
        (T? value, Type? error) Run(IEntryLog log)
        {
            try
            {
                return (action(log), null);
            }
            catch (Exception e) when (e is ArgumentException)
            {
                return (default, e.GetType());
            }
        }
        Assert.That(Run(disk), Is.EqualTo(Run(memory)), step);
    }

    private static void AssertSameState(string step, IEntryLog disk, IEntryLog memory, ulong arg)
    {
        Assert.That((disk.FirstIndex, disk.LastIndex, disk.DurableIndex, disk.LastEpoch),
            Is.EqualTo((memory.FirstIndex, memory.LastIndex, memory.DurableIndex, memory.LastEpoch)), step);
        ulong from = memory.FirstIndex + arg % 7;
        int maxEntries = 1 + (int)(arg % 30);
        long maxBytes = (long)(arg % 2000);
        var fromDisk = new List<LogEntry>();
        var fromMemory = new List<LogEntry>();
        Assert.That(disk.Read(from, maxEntries, maxBytes, fromDisk), Is.EqualTo(memory.Read(from, maxEntries, maxBytes, fromMemory)), step);
        for (int i = 0; i < fromDisk.Count; i++)
        {
            StorageTestData.AssertSame(fromMemory[i], fromDisk[i]);
        }
    }
}
