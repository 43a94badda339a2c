using NUnit.Framework;
using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Compression;
using static GeoRelay.Tests.Unit.Compression.CompressionTestData;

namespace GeoRelay.Tests.Unit.Compression;

[TestFixtureSource(typeof(ZstdBackendFixture), nameof(Backends))]
public class ZstdOneShotTests(ZstdBackend backend) : ZstdBackendFixture(backend)
{
    [Test]
    public void Streams_run_on_the_back_end_they_were_built_for()
    {
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        Assert.That(compressor.Backend, Is.EqualTo(Backend));
        Assert.That(decompressor.Backend, Is.EqualTo(Backend));
        Assert.That(Zstd.UsableLibrary(Backend).Version, Does.Match(@"^1\.\d+\.\d+$"));
    }

    [FsCheck.NUnit.Property(MaxTest = 200)]
    public void Any_bytes_round_trip(byte[] data, bool textLike)
    {
        // Alternate between the generator's bytes and log-like text of the same length, so both
        // incompressible and compressible inputs are covered.
        byte[] input = textLike ? Text(new Random(data.Length), data.Length) : data;
        byte[] frame = CompressOneShot(Backend, input, level: 3);
        Assert.That(frame.Length, Is.LessThanOrEqualTo(Zstd.CompressBound(input.Length)));
        AssertSameBytes(DecompressOneShot(Backend, frame, input.Length), input);
    }

    [Test]
    public void Empty_input_round_trips_through_a_non_empty_frame()
    {
        byte[] frame = CompressOneShot(Backend, []);
        Assert.That(frame, Is.Not.Empty);
        Assert.That(DecompressOneShot(Backend, frame, 0), Is.Empty);
    }

    [TestCase(-5)]
    [TestCase(1)]
    [TestCase(3)]
    [TestCase(9)]
    public void One_MiB_round_trips(int level)
    {
        var random = new Random(level + 100);
        foreach (byte[] input in new[] { Text(random, 1 << 20), RandomBytes(random, 1 << 20) })
        {
            byte[] frame = CompressOneShot(Backend, input, level);
            Assert.That(frame.Length, Is.LessThanOrEqualTo(Zstd.CompressBound(input.Length)));
            AssertSameBytes(DecompressOneShot(Backend, frame, input.Length), input);
        }
    }

    [Test]
    public void Log_text_compresses_well()
    {
        byte[] input = Text(new Random(1), 1 << 20);
        Assert.That(CompressOneShot(Backend, input, 1).Length, Is.LessThan(input.Length / 3));
    }

    [Test]
    public void Output_grows_in_bounded_steps()
    {
        byte[] input = Text(new Random(2), 1 << 20);
        var compressed = new RecordingBufferWriter();
        Zstd.Compress(input, compressed, 1, Backend);
        var decompressed = new RecordingBufferWriter();
        Zstd.Decompress(compressed.WrittenSpan, decompressed, input.Length, Backend);

        AssertSameBytes(decompressed.WrittenSpan, input);
        Assert.That(compressed.LargestRequest, Is.LessThanOrEqualTo(132 * 1024));
        Assert.That(decompressed.LargestRequest, Is.LessThanOrEqualTo(128 * 1024));
    }

    [Test]
    public void Output_exactly_at_the_limit_is_accepted_and_one_byte_over_is_not()
    {
        byte[] input = Text(new Random(3), 300_000);
        byte[] frame = CompressOneShot(Backend, input);
        AssertSameBytes(DecompressOneShot(Backend, frame, input.Length), input);
        var error = Assert.Throws<CodecException>(() => DecompressOneShot(Backend, frame, input.Length - 1));
        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
    }

    [Test]
    public void Concatenated_frames_decode_to_the_concatenated_input()
    {
        byte[] first = Text(new Random(4), 5000), second = Text(new Random(5), 7000);
        byte[] frames = [.. CompressOneShot(Backend, first), .. CompressOneShot(Backend, second)];
        Assert.That(DecompressOneShot(Backend, frames, 12_000), Is.EqualTo((byte[])[.. first, .. second]));
    }

    [Test]
    public void Zip_bomb_stops_at_the_limit_without_allocating_its_claimed_size()
    {
        byte[] bomb = CompressOneShot(Backend, ZipBomb.Zeros, level: 1);
        Assert.That(bomb.Length, Is.LessThan(64 * 1024));

        var output = new ArrayBufferWriter<byte>(2 << 20);
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<CodecException>(() => Zstd.Decompress(bomb, output, 1 << 20, Backend));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(allocated, Is.LessThan(256 * 1024), "managed bytes allocated while refusing the bomb");
    }

    [Test]
    public void Zip_bomb_without_a_declared_size_is_cut_off_while_streaming()
    {
        // A stream message carries no content size, so only the running count can stop it.
        var bomb = new ArrayBufferWriter<byte>();
        using (var compressor = NewCompressor(1))
        {
            compressor.CompressMessage(ZipBomb.Zeros, bomb);
        }

        var output = new RecordingBufferWriter();
        var error = Assert.Throws<CodecException>(() => Zstd.Decompress(bomb.WrittenSpan, output, 1 << 20, Backend));

        Assert.That(error!.Reason, Is.EqualTo(CodecError.TooLarge));
        Assert.That(output.WrittenSpan.Length, Is.LessThanOrEqualTo(1 << 20));
        Assert.That(output.TotalRequested, Is.LessThanOrEqualTo((1 << 20) + (128 << 10) + 1));
    }

    [Test]
    public void Every_truncation_is_refused()
    {
        byte[] frame = CompressOneShot(Backend, Text(new Random(6), 20_000));
        for (int length = 0; length < frame.Length; length++)
        {
            var error = Assert.Throws<CodecException>(() => DecompressOneShot(Backend, frame.AsSpan(0, length), 1 << 20), $"length {length}");
            Assert.That(error!.Reason, Is.EqualTo(CodecError.Decompression), $"length {length}");
        }
    }

    [Test]
    public void Every_bit_flip_is_refused_or_harmless()
    {
        // The frame's checksum means a flip either fails or (where the bit is not significant)
        // still yields the original bytes; it never yields different bytes or another exception.
        byte[] input = Text(new Random(7), 3000);
        byte[] frame = CompressOneShot(Backend, input);
        int refused = 0;
        for (int bit = 0; bit < frame.Length * 8; bit++)
        {
            byte[] flipped = (byte[])frame.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            try
            {
                AssertSameBytes(DecompressOneShot(Backend, flipped, 1 << 20), input, $"bit {bit}");
            }
            catch (CodecException)
            {
                refused++;
            }
        }
        Assert.That(refused, Is.GreaterThan(frame.Length * 8 * 9 / 10));
    }

    [FsCheck.NUnit.Property(MaxTest = 300)]
    public void Garbage_is_refused_with_a_codec_exception(byte[] garbage)
    {
        // FsCheck's arrays are short and almost never start with a zstd magic number.
        Assert.Throws<CodecException>(() => DecompressOneShot(Backend, garbage, 1 << 20));
    }

    [Test]
    public void Empty_input_is_not_a_frame()
    {
        Assert.That(Assert.Throws<CodecException>(() => DecompressOneShot(Backend, [], 100))!.Reason, Is.EqualTo(CodecError.Decompression));
    }

    [Test]
    public void Out_of_range_arguments_are_programming_errors()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentOutOfRangeException>(() => Zstd.Compress([1, 2, 3], output, 23, Backend));
        Assert.Throws<ArgumentOutOfRangeException>(() => Zstd.Decompress([1, 2, 3], output, -1, Backend));
        Assert.Throws<ArgumentOutOfRangeException>(() => Zstd.CompressBound(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Zstd.CompressBound(int.MaxValue));
    }
}

internal static class ZipBomb
{
    /// <summary>100 MB of zeros; built once, on first use, for the tests that need it.</summary>
    public static byte[] Zeros => s_zeros.Value;

    private static readonly Lazy<byte[]> s_zeros = new(() => new byte[100_000_000]);
}
