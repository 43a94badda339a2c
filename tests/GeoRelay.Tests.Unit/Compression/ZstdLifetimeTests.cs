using NUnit.Framework;
using System.Buffers;
using System.Diagnostics;
using GeoRelay.Codec.Compression;
using static GeoRelay.Tests.Unit.Compression.CompressionTestData;

namespace GeoRelay.Tests.Unit.Compression;

[TestFixtureSource(typeof(ZstdBackendFixture), nameof(Backends))]
public class ZstdLifetimeTests(ZstdBackend backend) : ZstdBackendFixture(backend)
{
    // Each used pair holds about 2 MB of native memory (windows, tables, block buffers): leaking
    // every pair passes this bound within one check interval, leaking one in ten within the run.
    private const long AllowedGrowth = 192L << 20;

    private static readonly byte[] Message = LogMessage(new Random(31), 4);

    private static void UseOnce(ZstdStreamCompressor compressor, ZstdStreamDecompressor decompressor, ArrayBufferWriter<byte> compressed, ArrayBufferWriter<byte> decompressed)
    {
        compressed.Clear();
        decompressed.Clear();
        compressor.CompressMessage(Message, compressed);
        decompressor.DecompressMessage(compressed.WrittenSpan, decompressed, 1 << 20);
    }

    private static long PrivateMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.PrivateMemorySize64;
    }

    [Test]
    public void Disposed_streams_release_their_native_memory()
    {
        var compressed = new ArrayBufferWriter<byte>();
        var decompressed = new ArrayBufferWriter<byte>();
        for (int i = 0; i < 200; i++) // let the allocator reach its steady state
        {
            using var compressor = NewCompressor(1);
            using var decompressor = NewDecompressor();
            UseOnce(compressor, decompressor, compressed, decompressed);
        }
        long baseline = PrivateMemory();

        for (int i = 1; i <= 10_000; i++)
        {
            using var compressor = NewCompressor(1);
            using var decompressor = NewDecompressor();
            UseOnce(compressor, decompressor, compressed, decompressed);
            if (i % 250 == 0)
            {
                long growth = PrivateMemory() - baseline;
                Assert.That(growth, Is.LessThan(AllowedGrowth), $"private memory grew by {growth >> 20} MiB after {i} pairs");
            }
        }
        Assert.That(decompressed.WrittenSpan.SequenceEqual(Message), Is.True);
    }

    [Test]
    public void Forgotten_streams_are_released_by_their_finalizers()
    {
        var compressed = new ArrayBufferWriter<byte>();
        var decompressed = new ArrayBufferWriter<byte>();
        CreateAndForget(100, compressed, decompressed);
        long baseline = PrivateMemory();

        for (int round = 0; round < 15; round++)
        {
            CreateAndForget(100, compressed, decompressed);
            long growth = PrivateMemory() - baseline;
            Assert.That(growth, Is.LessThan(AllowedGrowth), $"private memory grew by {growth >> 20} MiB after round {round}");
        }
    }

    private void CreateAndForget(int pairs, ArrayBufferWriter<byte> compressed, ArrayBufferWriter<byte> decompressed)
    {
        for (int i = 0; i < pairs; i++)
        {
            UseOnce(NewCompressor(1), NewDecompressor(), compressed, decompressed);
        }
    }

    [Test]
    public void Use_after_dispose_throws_ObjectDisposedException()
    {
        var output = new ArrayBufferWriter<byte>();
        var compressor = NewCompressor(1);
        var decompressor = NewDecompressor();
        compressor.CompressMessage(Message, output);
        compressor.Dispose();
        decompressor.Dispose();
        compressor.Dispose(); // twice is fine
        decompressor.Dispose();

        Assert.Throws<ObjectDisposedException>(() => compressor.CompressMessage(Message, output));
        Assert.Throws<ObjectDisposedException>(() => compressor.Reset());
        Assert.Throws<ObjectDisposedException>(() => decompressor.DecompressMessage(output.WrittenSpan, new ArrayBufferWriter<byte>(), 1 << 20));
        Assert.Throws<ObjectDisposedException>(() => decompressor.Reset());
    }

    [Test]
    public void Hot_path_allocates_nothing_managed()
    {
        using var compressor = NewCompressor(1);
        using var decompressor = NewDecompressor();
        var compressed = new ArrayBufferWriter<byte>(64 * 1024);
        var decompressed = new ArrayBufferWriter<byte>(64 * 1024);
        var oneShot = new ArrayBufferWriter<byte>(64 * 1024);
        // First use creates this thread's one-shot contexts and sizes every native buffer.
        UseOnce(compressor, decompressor, compressed, decompressed);
        Zstd.Compress(Message, oneShot, 1, Backend);
        Zstd.Decompress(oneShot.WrittenSpan, decompressed, 1 << 20, Backend);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            UseOnce(compressor, decompressor, compressed, decompressed);
            oneShot.Clear();
            Zstd.Compress(Message, oneShot, 1, Backend);
            decompressed.Clear();
            Zstd.Decompress(oneShot.WrittenSpan, decompressed, 1 << 20, Backend);
        }
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
