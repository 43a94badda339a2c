using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>
/// Entry payloads: a 16-byte probe header (sequence number, Stopwatch timestamp of the publish, both
/// little-endian) followed by a corpus record: synthetic key-value JSON, a stanza of /var/lib/dpkg/status, or
/// both alternating. Every system gets the same bytes.
/// </summary>
public sealed class Corpus
{
    public const int HeaderBytes = 16;
    private readonly List<byte[]> _records = new();

    public double MeanRecordBytes => _records.Average(r => r.Length);
    public int Count => _records.Count;
    public string Description { get; }

    public Corpus(string kind, int maxBytes, string dpkgStatus = "/var/lib/dpkg/status")
    {
        var kv = new List<byte[]>();
        var dpkg = new List<byte[]>();
        if (kind is "kv" or "mixed")
        {
            var random = new Random(42);
            for (int i = 0; i < 4096; i++)
                kv.Add(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"key\":\"user/{random.Next(100_000):D6}/profile\",\"op\":\"put\",\"version\":{i},\"region\":\"{(i % 3 == 0 ? "us" : i % 3 == 1 ? "eu" : "ap")}\",\"value\":{{\"name\":\"user-{random.Next(1_000_000)}\",\"score\":{random.Next(10_000)},\"tags\":[\"t{random.Next(50)}\",\"t{random.Next(50)}\"],\"active\":{(random.Next(2) == 0 ? "true" : "false")}}}}}")));
        }
        if (kind is "dpkg" or "mixed")
        {
            if (!File.Exists(dpkgStatus)) throw new FileNotFoundException($"corpus '{kind}' needs {dpkgStatus}", dpkgStatus);
            foreach (var stanza in File.ReadAllText(dpkgStatus).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            {
                var bytes = Encoding.UTF8.GetBytes(stanza);
                dpkg.Add(bytes.Length <= maxBytes - HeaderBytes ? bytes : bytes[..(maxBytes - HeaderBytes)]);
            }
        }
        for (int i = 0; i < Math.Max(kv.Count, dpkg.Count); i++)
        {
            if (i < kv.Count) _records.Add(kv[i]);
            if (i < dpkg.Count) _records.Add(dpkg[i]);
        }
        Description = $"{kind}: {kv.Count} key-value JSON records, {dpkg.Count} dpkg stanzas (cut at {maxBytes - HeaderBytes} B), mean {MeanRecordBytes:F0} B + {HeaderBytes} B probe header";
    }

    /// <summary>The payload of entry <paramref name="seq"/> (1-based), stamped now.</summary>
    public byte[] Payload(long seq)
    {
        var record = _records[(int)((seq - 1) % _records.Count)];
        var payload = new byte[HeaderBytes + record.Length];
        BinaryPrimitives.WriteInt64LittleEndian(payload, seq);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), Stopwatch.GetTimestamp());
        record.CopyTo(payload, HeaderBytes);
        return payload;
    }

    public static (long Seq, long PublishedTicks) ReadHeader(ReadOnlySpan<byte> payload) =>
        (BinaryPrimitives.ReadInt64LittleEndian(payload), BinaryPrimitives.ReadInt64LittleEndian(payload[8..]));
}
