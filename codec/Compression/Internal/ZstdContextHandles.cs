using Microsoft.Win32.SafeHandles;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>Owns a <c>ZSTD_CCtx*</c>: freed on Dispose, or by the finalizer if the owner forgot.</summary>
internal sealed class CompressionContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    // The P/Invoke marshaller creates the instance before it stores the returned pointer in it.
    public CompressionContextHandle() : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        ZstdNative.FreeCompressionContext(handle);
        return true;
    }
}

/// <summary>Owns a <c>ZSTD_DCtx*</c>: freed on Dispose, or by the finalizer if the owner forgot.</summary>
internal sealed class DecompressionContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public DecompressionContextHandle() : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        ZstdNative.FreeDecompressionContext(handle);
        return true;
    }
}
