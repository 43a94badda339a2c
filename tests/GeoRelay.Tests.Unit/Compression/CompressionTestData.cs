using System.Buffers;
using NUnit.Framework;
using System.Text;
using GeoRelay.Codec.Compression;

namespace GeoRelay.Tests.Unit.Compression;

/// <summary>Log-like messages: repetitive structure, random ids and numbers, like the entries GeoRelay carries.</summary>
internal static class CompressionTestData
{
    private static readonly string[] Services = ["billing", "auth", "search", "ingest", "relay"];
    private static readonly string[] Levels = ["info", "warn", "debug", "error"];
    private static readonly string[] Words = ["request", "completed", "user", "cache", "miss", "retry", "timeout", "shard", "commit", "snapshot"];

    public static byte[] LogMessage(Random random, int entries = 8)
    {
        var text = new StringBuilder();
        for (int i = 0; i < entries; i++)
        {
            text.Append("{\"ts\":").Append(1_700_000_000_000L + random.Next(1_000_000))
                .Append(",\"level\":\"").Append(Levels[random.Next(Levels.Length)])
                .Append("\",\"svc\":\"").Append(Services[random.Next(Services.Length)])
                .Append("\",\"trace\":\"").Append(random.NextInt64().ToString("x16"))
                .Append("\",\"msg\":\"");
            for (int w = random.Next(3, 9); w > 0; w--)
            {
                text.Append(Words[random.Next(Words.Length)]).Append(' ');
            }
            text.Append("\",\"ms\":").Append(random.Next(5000)).Append("}\n");
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public static byte[] Text(Random random, int size)
    {
        var buffer = new ArrayBufferWriter<byte>(size + 4096);
        while (buffer.WrittenCount < size)
        {
            buffer.Write(LogMessage(random, 1));
        }
        return buffer.WrittenSpan[..size].ToArray();
    }

    public static byte[] RandomBytes(Random random, int size)
    {
        var bytes = new byte[size];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Byte comparison that stays fast on megabytes (NUnit's collection equality does not).</summary>
    public static void AssertSameBytes(ReadOnlySpan<byte> actual, ReadOnlySpan<byte> expected, string? what = null)
    {
        if (!actual.SequenceEqual(expected))
        {
            int at = actual.CommonPrefixLength(expected);
            Assert.Fail($"{what}: {actual.Length} bytes differ from the expected {expected.Length} at offset {at}");
        }
    }

    public static byte[] CompressOneShot(ZstdBackend backend, ReadOnlySpan<byte> source, int level = 1)
    {
        var output = new ArrayBufferWriter<byte>();
        Zstd.Compress(source, output, level, backend);
        return output.WrittenSpan.ToArray();
    }

    public static byte[] DecompressOneShot(ZstdBackend backend, ReadOnlySpan<byte> source, int maxOutputBytes)
    {
        var output = new ArrayBufferWriter<byte>();
        Zstd.Decompress(source, output, maxOutputBytes, backend);
        return output.WrittenSpan.ToArray();
    }
}

/// <summary>
/// Hands out exactly the size asked for (at least one byte), in fresh arrays, and records what was
/// asked: shows the codec grows its output in bounded steps and copes with tight spans.
/// </summary>
internal sealed class RecordingBufferWriter : IBufferWriter<byte>
{
    private byte[] _current = [];
    private readonly ArrayBufferWriter<byte> _written = new();

    public int LargestRequest { get; private set; }
    public long TotalRequested { get; private set; }
    public ReadOnlySpan<byte> WrittenSpan => _written.WrittenSpan;

    public void Advance(int count)
    {
        if (count > _current.Length)
        {
            throw new InvalidOperationException("advanced past the span");
        }
        _written.Write(_current.AsSpan(0, count));
        _current = [];
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        int size = Math.Max(sizeHint, 1);
        LargestRequest = Math.Max(LargestRequest, size);
        TotalRequested += size;
        _current = new byte[size];
        return _current;
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
}
