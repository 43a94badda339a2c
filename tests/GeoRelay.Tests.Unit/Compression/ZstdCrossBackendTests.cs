using NUnit.Framework;
using System.Buffers;
using GeoRelay.Codec.Compression;
using static GeoRelay.Tests.Unit.Compression.CompressionTestData;

namespace GeoRelay.Tests.Unit.Compression;

/// <summary>Both back ends speak one format: what either writes, the other reads, one-shot and streamed.</summary>
public class ZstdCrossBackendTests
{
    [OneTimeSetUp]
    public void RequireBothBackEnds()
    {
        ZstdBackendFixture.RequireUsable(ZstdBackend.Native);
        ZstdBackendFixture.RequireUsable(ZstdBackend.Managed);
    }

    [TestCase(ZstdBackend.Native, ZstdBackend.Managed)]
    [TestCase(ZstdBackend.Managed, ZstdBackend.Native)]
    public void One_shot_frames_decode_on_the_other_back_end(ZstdBackend writer, ZstdBackend reader)
    {
        var random = new Random(40);
        byte[][] inputs = [[], LogMessage(random), Text(random, 1 << 20), RandomBytes(random, 300_000)];
        foreach (int level in new[] { -5, 1, 3, 9 })
        {
            foreach (byte[] input in inputs)
            {
                byte[] frame = CompressOneShot(writer, input, level);
                AssertSameBytes(DecompressOneShot(reader, frame, input.Length), input, $"level {level}, {input.Length} bytes");
            }
        }
    }

    [TestCase(ZstdBackend.Native, ZstdBackend.Managed, false)]
    [TestCase(ZstdBackend.Managed, ZstdBackend.Native, false)]
    [TestCase(ZstdBackend.Native, ZstdBackend.Managed, true)]
    [TestCase(ZstdBackend.Managed, ZstdBackend.Native, true)]
    public void A_stream_of_many_messages_decodes_on_the_other_back_end(ZstdBackend writer, ZstdBackend reader, bool withDictionary)
    {
        var random = new Random(41);
        byte[]? dictionary = withDictionary ? Text(random, 8 * 1024) : null;
        using var compressor = new ZstdStreamCompressor(3, dictionary, writer);
        using var decompressor = new ZstdStreamDecompressor(dictionary, reader);
        var compressed = new ArrayBufferWriter<byte>();
        var decompressed = new ArrayBufferWriter<byte>();
        byte[] repeated = LogMessage(random, 20);
        for (int connection = 0; connection < 2; connection++)
        {
            for (int i = 0; i < 200; i++)
            {
                // Mostly small batches, sometimes an empty one, one over a zstd block, or one seen before.
                byte[] message = (i % 50) switch
                {
                    7 => [],
                    13 => Text(random, 300_000),
                    0 or 30 => repeated,
                    _ => LogMessage(random, random.Next(1, 20)),
                };
                compressed.Clear();
                decompressed.Clear();
                compressor.CompressMessage(message, compressed);
                decompressor.DecompressMessage(compressed.WrittenSpan, decompressed, 1 << 20);
                AssertSameBytes(decompressed.WrittenSpan, message, $"connection {connection}, message {i}");
                if (i == 30)
                {
                    // Sent again within the window: the reader must follow the writer's history.
                    Assert.That(compressed.WrittenCount, Is.LessThan(message.Length / 10), "a repeated message should be a back-reference");
                }
            }
            compressor.Reset();
            decompressor.Reset();
        }
    }
}
