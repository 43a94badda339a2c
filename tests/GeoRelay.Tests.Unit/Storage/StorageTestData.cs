using GeoRelay.Storage;

namespace GeoRelay.Tests.Unit.Storage;

/// <summary>Deterministic entries whose bytes can be checked from their index alone.</summary>
internal static class StorageTestData
{
    /// <summary>2026-01-01T00:00:00Z in Unix microseconds; entry i is stamped i seconds later.</summary>
    public const long BaseMicros = 1_767_225_600_000_000;

    public static LogEntry Entry(ulong index, ulong epoch = 1, int payloadLength = 40, int keyLength = 4) =>
        new(index, epoch, TimestampOf(index), Bytes(index, keyLength, 7), Bytes(index, payloadLength, 13));

    public static long TimestampOf(ulong index) => BaseMicros + (long)index * 1_000_000;

    public static DateTimeOffset TimeOf(ulong index) => DateTimeOffset.FromUnixTimeMilliseconds(TimestampOf(index) / 1000);

    public static byte[] Bytes(ulong index, int length, int salt)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++) bytes[i] = (byte)(index * 31 + (ulong)(i * salt) + (ulong)salt);
        return bytes;
    }

    public static void AssertSame(LogEntry expected, LogEntry actual)
    {
        NUnit.Framework.Assert.That(actual.Index, NUnit.Framework.Is.EqualTo(expected.Index), "index");
        NUnit.Framework.Assert.That(actual.Epoch, NUnit.Framework.Is.EqualTo(expected.Epoch), $"epoch of {expected.Index}");
        NUnit.Framework.Assert.That(actual.TimestampMicros, NUnit.Framework.Is.EqualTo(expected.TimestampMicros), $"timestamp of {expected.Index}");
        NUnit.Framework.Assert.That(actual.Key.ToArray(), NUnit.Framework.Is.EqualTo(expected.Key.ToArray()), $"key of {expected.Index}");
        NUnit.Framework.Assert.That(actual.Payload.ToArray(), NUnit.Framework.Is.EqualTo(expected.Payload.ToArray()), $"payload of {expected.Index}");
    }
}

/// <summary>A directory under the system temp path, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "georelay-storage-" + Guid.NewGuid().ToString("N"));

    public string[] SegmentFiles()
    {
        string[] files = Directory.GetFiles(Path, "*.log");
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
