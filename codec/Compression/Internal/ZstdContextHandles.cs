using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>Owns a <c>ZSTD_CCtx*</c> of one back end: freed on Dispose, or by the finalizer if the owner forgot.</summary>
internal sealed unsafe class CompressionContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public CompressionContextHandle(ZstdLibrary library) : base(ownsHandle: true)
    {
        Library = library;
        SetHandle((nint)library.CreateCompressionContext());
        if (IsInvalid)
        {
            throw new OutOfMemoryException("ZSTD_createCCtx failed.");
        }
    }

    public ZstdLibrary Library { get; }

    protected override bool ReleaseHandle()
    {
        Library.Free((CompressionContext*)handle);
        return true;
    }
}

/// <summary>Owns a <c>ZSTD_DCtx*</c> of one back end: freed on Dispose, or by the finalizer if the owner forgot.</summary>
internal sealed unsafe class DecompressionContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public DecompressionContextHandle(ZstdLibrary library) : base(ownsHandle: true)
    {
        Library = library;
        SetHandle((nint)library.CreateDecompressionContext());
        if (IsInvalid)
        {
            throw new OutOfMemoryException("ZSTD_createDCtx failed.");
        }
    }

    public ZstdLibrary Library { get; }

    protected override bool ReleaseHandle()
    {
        Library.Free((DecompressionContext*)handle);
        return true;
    }
}

/// <summary>
/// Holds a reference on a context handle for the length of a call, as the marshaller does for a
/// SafeHandle argument: a Dispose racing with the call then frees the context after it, not under it.
/// Throws <see cref="ObjectDisposedException"/> if the handle is already closed.
/// </summary>
internal readonly ref struct ContextLease
{
    private readonly SafeHandle _handle;

    public ContextLease(SafeHandle handle)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        _handle = handle;
    }

    public nint Pointer => _handle.DangerousGetHandle();

    public void Dispose() => _handle.DangerousRelease();
}
