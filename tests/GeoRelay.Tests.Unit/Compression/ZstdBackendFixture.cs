using NUnit.Framework;
using GeoRelay.Codec.Compression;

namespace GeoRelay.Tests.Unit.Compression;

/// <summary>
/// Base of the fixtures that run once per back end, both in one process
/// (<c>[TestFixtureSource(typeof(ZstdBackendFixture), nameof(Backends))]</c>): every stream and one-shot
/// call in them goes to <see cref="Backend"/>, whatever <see cref="Zstd.Backend"/> is.
/// </summary>
public abstract class ZstdBackendFixture(ZstdBackend backend)
{
    public static readonly ZstdBackend[] Backends = [ZstdBackend.Native, ZstdBackend.Managed];

    protected ZstdBackend Backend { get; } = backend;

    /// <summary>Where libzstd does not load, the native runs show up as ignored, not as passed.</summary>
    public static void RequireUsable(ZstdBackend backend)
    {
        if (!Zstd.IsUsable(backend))
        {
            Assert.Ignore($"the {backend} zstd back end does not run here ({Zstd.Description})");
        }
    }

    [OneTimeSetUp]
    public void RequireBackend() => RequireUsable(Backend);

    protected ZstdStreamCompressor NewCompressor(int level, byte[]? dictionary = null) => new(level, dictionary, Backend);

    protected ZstdStreamDecompressor NewDecompressor(byte[]? dictionary = null) => new(dictionary, Backend);
}
