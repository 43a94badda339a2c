using NUnit.Framework;
using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Compression;
using static GeoRelay.Tests.Unit.Compression.CompressionTestData;

namespace GeoRelay.Tests.Unit.Compression;

/// <summary>Whatever arrives, a stream decompressor answers with output or a CodecException, nothing else.</summary>
[TestFixtureSource(typeof(ZstdBackendFixture), nameof(Backends))]
public class ZstdStreamCorruptionTests(ZstdBackend backend) : ZstdBackendFixture(backend)
{
    private const int Limit = 1 << 20;

    /// <summary>A stream of three messages; corruption is applied to the last one.</summary>
    private byte[][] Conversation(int seed, out byte[][] plain)
    {
        var random = new Random(seed);
        plain = [LogMessage(random, 6), LogMessage(random, 6), LogMessage(random, 6)];
        using var compressor = NewCompressor(3);
        var messages = new byte[plain.Length][];
        for (int i = 0; i < plain.Length; i++)
        {
            var output = new ArrayBufferWriter<byte>();
            compressor.CompressMessage(plain[i], output);
            messages[i] = output.WrittenSpan.ToArray();
        }
        return messages;
    }

    /// <summary>Feeds the first <paramref name="before"/> messages intact, then <paramref name="last"/>.</summary>
    private void Replay(byte[][] messages, int before, ReadOnlySpan<byte> last)
    {
        using var decompressor = NewDecompressor();
        var output = new ArrayBufferWriter<byte>();
        for (int i = 0; i < before; i++)
        {
            decompressor.DecompressMessage(messages[i], output, Limit);
        }
        decompressor.DecompressMessage(last, output, Limit);
    }

    [TestCase(0)]
    [TestCase(2)]
    public void Every_truncation_of_a_message_is_refused(int index)
    {
        byte[][] messages = Conversation(21, out _);
        byte[] message = messages[index];
        for (int length = 1; length < message.Length; length++)
        {
            var error = Assert.Throws<CodecException>(() => Replay(messages, index, message.AsSpan(0, length)), $"length {length}");
            Assert.That(error!.Reason, Is.EqualTo(CodecError.Decompression));
        }
    }

    [TestCase(0)]
    [TestCase(2)]
    public void Bit_flips_give_a_codec_exception_or_output_never_another_exception(int index)
    {
        // zstd has no per-message checksum, so a flip in literal bytes can decode to wrong bytes;
        // what must never happen is any other exception, a crash, or output over the limit.
        byte[][] messages = Conversation(22, out _);
        byte[] message = messages[index];
        int refused = 0;
        for (int bit = 0; bit < message.Length * 8; bit++)
        {
            byte[] flipped = (byte[])message.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            try
            {
                Replay(messages, index, flipped);
            }
            catch (CodecException)
            {
                refused++;
            }
        }
        Assert.That(refused, Is.GreaterThan(0));
    }

    [FsCheck.NUnit.Property(MaxTest = 300)]
    public void Garbage_gives_a_codec_exception_or_output_never_another_exception(byte[] garbage, bool midStream)
    {
        byte[][] messages = Conversation(23, out _);
        try
        {
            Replay(messages, midStream ? 2 : 0, garbage);
        }
        catch (CodecException)
        {
        }
    }

    [Test]
    public void Random_garbage_is_refused()
    {
        var random = new Random(24);
        byte[][] messages = Conversation(24, out _);
        for (int i = 0; i < 200; i++)
        {
            byte[] garbage = RandomBytes(random, random.Next(1, 2000));
            Assert.Throws<CodecException>(() => Replay(messages, i % 3, garbage), $"garbage {i}");
        }
    }

    [Test]
    public void A_message_from_another_stream_is_refused()
    {
        byte[][] ours = Conversation(25, out _);
        byte[][] theirs = Conversation(26, out _);
        // Their first message carries a frame header, which is not a block.
        Assert.Throws<CodecException>(() => Replay(ours, 2, theirs[0]));
        // Their later message is a block, which a fresh stream does not start with.
        Assert.Throws<CodecException>(() => Replay(ours, 0, theirs[1]));
    }

    [Test]
    public void After_an_error_the_stream_refuses_everything_until_reset()
    {
        byte[][] messages = Conversation(27, out byte[][] plain);
        using var decompressor = NewDecompressor();
        var output = new ArrayBufferWriter<byte>();
        decompressor.DecompressMessage(messages[0], output, Limit);
        Assert.Throws<CodecException>(() => decompressor.DecompressMessage(messages[2], output, Limit));
        // messages[1] is what it actually expected, but its position in the stream is lost.
        var error = Assert.Throws<CodecException>(() => decompressor.DecompressMessage(messages[1], output, Limit));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.Decompression));

        decompressor.Reset();
        for (int i = 0; i < messages.Length; i++)
        {
            output.Clear();
            decompressor.DecompressMessage(messages[i], output, Limit);
            Assert.That(output.WrittenSpan.ToArray(), Is.EqualTo(plain[i]));
        }
    }
}
