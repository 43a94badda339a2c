using NUnit.Framework;
using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Compression;
using static GeoRelay.Tests.Unit.Compression.CompressionTestData;

namespace GeoRelay.Tests.Unit.Compression;

[TestFixtureSource(typeof(ZstdBackendFixture), nameof(Backends))]
public class ZstdStreamTests(ZstdBackend backend) : ZstdBackendFixture(backend)
{
    private const int Limit = 4 << 20;

    private static byte[] Send(ZstdStreamCompressor compressor, ReadOnlySpan<byte> message)
    {
        var output = new ArrayBufferWriter<byte>();
        compressor.CompressMessage(message, output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Receive(ZstdStreamDecompressor decompressor, ReadOnlySpan<byte> message, int maxOutputBytes = Limit)
    {
        var output = new ArrayBufferWriter<byte>();
        decompressor.DecompressMessage(message, output, maxOutputBytes);
        return output.WrittenSpan.ToArray();
    }

    [TestCase(1)]
    [TestCase(3)]
    public void Many_consecutive_messages_each_decode_on_arrival(int level)
    {
        var random = new Random(level);
        using var compressor = NewCompressor(level);
        using var decompressor = NewDecompressor();
        for (int i = 0; i < 300; i++)
        {
            // Mostly small batches, sometimes an empty one or one larger than a zstd block.
            byte[] message = (i % 50) switch
            {
                7 => [],
                13 => Text(random, 300_000),
                _ => LogMessage(random, random.Next(1, 20)),
            };
            AssertSameBytes(Receive(decompressor, Send(compressor, message)), message, $"message {i}");
        }
    }

    [Test]
    public void Ultra_levels_stay_within_the_window_the_decompressor_accepts()
    {
        // Level 22 would pick a 128 MiB window by default; the stream decoder accepts 8 MiB.
        var random = new Random(10);
        using var compressor = NewCompressor(22);
        using var decompressor = NewDecompressor();
        for (int i = 0; i < 5; i++)
        {
            byte[] message = LogMessage(random, 10);
            Assert.That(Receive(decompressor, Send(compressor, message)), Is.EqualTo(message));
        }
    }

    [Test]
    public void Messages_decode_through_tight_output_spans()
    {
        var random = new Random(11);
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        for (int i = 0; i < 20; i++)
        {
            byte[] message = Text(random, random.Next(1, 400_000));
            var compressed = new RecordingBufferWriter();
            compressor.CompressMessage(message, compressed);
            var decompressed = new RecordingBufferWriter();
            decompressor.DecompressMessage(compressed.WrittenSpan, decompressed, message.Length);
            AssertSameBytes(decompressed.WrittenSpan, message, $"message {i}");
            Assert.That(compressed.LargestRequest, Is.LessThanOrEqualTo(132 * 1024));
            Assert.That(decompressed.LargestRequest, Is.LessThanOrEqualTo(128 * 1024));
        }
    }

    [Test]
    public void History_carries_across_messages()
    {
        var random = new Random(12);
        byte[] repeated = LogMessage(random, 20);
        int oneShotSize = CompressOneShot(Backend, repeated, 1).Length;

        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        Receive(decompressor, Send(compressor, repeated));
        for (int i = 0; i < 5; i++)
        {
            Receive(decompressor, Send(compressor, LogMessage(random, 5)));
        }
        byte[] again = Send(compressor, repeated);

        Assert.That(again.Length, Is.LessThan(oneShotSize / 4), $"streamed {again.Length} bytes, one-shot {oneShotSize}");
        Assert.That(Receive(decompressor, again), Is.EqualTo(repeated));
    }

    [Test]
    public void A_dictionary_makes_small_messages_smaller()
    {
        var random = new Random(13);
        byte[] dictionary = Text(random, 16 * 1024);
        byte[] message = LogMessage(random, 2);

        using var plain = NewCompressor(3);
        using var withDictionary = NewCompressor(3, dictionary);
        int plainSize = Send(plain, message).Length;
        byte[] compressed = Send(withDictionary, message);

        Assert.That(compressed.Length, Is.LessThan(plainSize * 3 / 4), $"with dictionary {compressed.Length}, without {plainSize}");
        using var decompressor = NewDecompressor(dictionary);
        Assert.That(Receive(decompressor, compressed), Is.EqualTo(message));
    }

    [Test]
    public void Reset_on_both_sides_starts_a_fresh_stream_and_keeps_the_dictionary()
    {
        var random = new Random(14);
        byte[] dictionary = Text(random, 8 * 1024);
        byte[][] firstConnection = [.. Enumerable.Range(0, 10).Select(_ => LogMessage(random, 4))];
        byte[][] secondConnection = [.. Enumerable.Range(0, 10).Select(_ => LogMessage(random, 4))];

        using var compressor = NewCompressor(3, dictionary);
        using var decompressor = NewDecompressor(dictionary);
        foreach (byte[] message in firstConnection)
        {
            Assert.That(Receive(decompressor, Send(compressor, message)), Is.EqualTo(message));
        }

        compressor.Reset();
        decompressor.Reset();

        // After Reset the compressor emits exactly what a brand-new one (same level and dictionary) would.
        using var fresh = NewCompressor(3, dictionary);
        foreach (byte[] message in secondConnection)
        {
            byte[] compressed = Send(compressor, message);
            Assert.That(compressed, Is.EqualTo(Send(fresh, message)));
            Assert.That(Receive(decompressor, compressed), Is.EqualTo(message));
        }
    }

    [Test]
    public void Compressor_reset_without_the_peer_is_detected()
    {
        var random = new Random(15);
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        Receive(decompressor, Send(compressor, LogMessage(random)));

        compressor.Reset(); // the decoder now meets a frame header where it expects a block
        Assert.Throws<CodecException>(() => Receive(decompressor, Send(compressor, LogMessage(random))));
    }

    [Test]
    public void Decompressor_reset_without_the_peer_is_detected()
    {
        var random = new Random(15);
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        Receive(decompressor, Send(compressor, LogMessage(random)));

        decompressor.Reset(); // the next message is a block in the middle of a frame, with no frame header
        Assert.Throws<CodecException>(() => Receive(decompressor, Send(compressor, LogMessage(random))));
    }

    [Test]
    public void Output_over_the_limit_is_refused_and_leaves_the_stream_unusable_until_reset()
    {
        var random = new Random(16);
        byte[] message = Text(random, 200_000);
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        byte[] compressed = Send(compressor, message);

        var error = Assert.Throws<CodecException>(() => Receive(decompressor, compressed, message.Length - 1));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
        error = Assert.Throws<CodecException>(() => Receive(decompressor, compressed, message.Length));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.Decompression));

        decompressor.Reset();
        AssertSameBytes(Receive(decompressor, compressed, message.Length), message);
    }

    [Test]
    public void Zip_bomb_message_is_cut_off_at_the_limit()
    {
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        Receive(decompressor, Send(compressor, LogMessage(new Random(17))));
        byte[] bomb = Send(compressor, ZipBomb.Zeros);

        var output = new RecordingBufferWriter();
        var error = Assert.Throws<CodecException>(() => decompressor.DecompressMessage(bomb, output, 1 << 20));

        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(output.TotalRequested, Is.LessThanOrEqualTo((1 << 20) + (128 << 10) + 1));
    }

    [Test]
    public void A_window_larger_than_the_stream_limit_is_refused_as_too_large()
    {
        // Hand-made frame header: magic, descriptor 0 (no size, no checksum), window descriptor
        // 0x88 = 2^(10+17) = 128 MiB, over the 8 MiB a stream accepts.
        byte[] header = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x88, 0x01, 0x00, 0x00];
        using var decompressor = NewDecompressor();
        var error = Assert.Throws<CodecException>(() => Receive(decompressor, header));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
    }

    [Test]
    public void Level_and_dictionary_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NewCompressor(99));
        // Starts with the dictionary magic but is not a valid trained dictionary.
        byte[] badDictionary = [0x37, 0xA4, 0x30, 0xEC, .. new byte[100]];
        Assert.Throws<ArgumentException>(() => NewDecompressor(badDictionary));
    }
}
