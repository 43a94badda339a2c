using System.Runtime.InteropServices;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>zstd through the system's <c>libzstd.so.1</c> (Debian <c>libzstd1</c>), 1.4.0 or later.</summary>
/// <remarks>
/// Strings returned by libzstd point into static storage, so they come back as <c>byte*</c> and are
/// read without freeing; a <c>string</c> return type would make the marshaller free them.
/// </remarks>
internal sealed unsafe partial class ZstdNative : ZstdLibrary
{
    internal const string LibraryName = "libzstd.so.1";

    private const uint MinimumVersionNumber = 10400; // ZSTD_compressStream2 and the parameter API

    public static readonly ZstdNative Instance = new();

    private ZstdNative()
    {
        IsUsable = ProbeVersionNumber() >= MinimumVersionNumber;
        Version = IsUsable ? Marshal.PtrToStringUTF8((nint)ZSTD_versionString()) ?? string.Empty : string.Empty;
    }

    public override ZstdBackend Backend => ZstdBackend.Native;

    public override bool IsUsable { get; }

    public override string Version { get; }

    public override nuint CompressBound(nuint sourceSize) => ZSTD_compressBound(sourceSize);

    public override int MinCompressionLevel() => ZSTD_minCLevel();

    public override int MaxCompressionLevel() => ZSTD_maxCLevel();

    public override bool IsError(nuint code) => ZSTD_isError(code) != 0;

    public override int GetErrorCode(nuint code) => ZSTD_getErrorCode(code);

    public override string GetErrorName(nuint code) => Marshal.PtrToStringUTF8((nint)ZSTD_getErrorName(code)) ?? "unknown error";

    public override ulong GetFrameContentSize(byte* source, nuint sourceSize) => ZSTD_getFrameContentSize(source, sourceSize);

    public override CompressionContext* CreateCompressionContext() => ZSTD_createCCtx();

    public override void Free(CompressionContext* context) => ZSTD_freeCCtx(context);

    public override nuint SetParameter(CompressionContext* context, CompressionParameter parameter, int value) => ZSTD_CCtx_setParameter(context, parameter, value);

    public override nuint LoadDictionary(CompressionContext* context, byte* dictionary, nuint dictionarySize) => ZSTD_CCtx_loadDictionary(context, dictionary, dictionarySize);

    public override nuint Reset(CompressionContext* context, ResetDirective reset) => ZSTD_CCtx_reset(context, reset);

    public override nuint CompressStream2(CompressionContext* context, OutBuffer* output, InBuffer* input, EndDirective endOp) => ZSTD_compressStream2(context, output, input, endOp);

    public override DecompressionContext* CreateDecompressionContext() => ZSTD_createDCtx();

    public override void Free(DecompressionContext* context) => ZSTD_freeDCtx(context);

    public override nuint SetParameter(DecompressionContext* context, DecompressionParameter parameter, int value) => ZSTD_DCtx_setParameter(context, parameter, value);

    public override nuint LoadDictionary(DecompressionContext* context, byte* dictionary, nuint dictionarySize) => ZSTD_DCtx_loadDictionary(context, dictionary, dictionarySize);

    public override nuint Reset(DecompressionContext* context, ResetDirective reset) => ZSTD_DCtx_reset(context, reset);

    public override nuint DecompressStream(DecompressionContext* context, OutBuffer* output, InBuffer* input) => ZSTD_decompressStream(context, output, input);

    private static uint ProbeVersionNumber()
    {
        try
        {
            return ZSTD_versionNumber();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return 0;
        }
    }

    [LibraryImport(LibraryName)]
    private static partial uint ZSTD_versionNumber();

    [LibraryImport(LibraryName)]
    private static partial byte* ZSTD_versionString();

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_compressBound(nuint sourceSize);

    [LibraryImport(LibraryName)]
    private static partial int ZSTD_minCLevel();

    [LibraryImport(LibraryName)]
    private static partial int ZSTD_maxCLevel();

    [LibraryImport(LibraryName)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(LibraryName)]
    private static partial int ZSTD_getErrorCode(nuint code);

    [LibraryImport(LibraryName)]
    private static partial byte* ZSTD_getErrorName(nuint code);

    [LibraryImport(LibraryName)]
    private static partial ulong ZSTD_getFrameContentSize(byte* source, nuint sourceSize);

    [LibraryImport(LibraryName)]
    private static partial CompressionContext* ZSTD_createCCtx();

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_freeCCtx(CompressionContext* context);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_CCtx_setParameter(CompressionContext* context, CompressionParameter parameter, int value);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_CCtx_loadDictionary(CompressionContext* context, byte* dictionary, nuint dictionarySize);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_CCtx_reset(CompressionContext* context, ResetDirective reset);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_compressStream2(CompressionContext* context, OutBuffer* output, InBuffer* input, EndDirective endOp);

    [LibraryImport(LibraryName)]
    private static partial DecompressionContext* ZSTD_createDCtx();

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_freeDCtx(DecompressionContext* context);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_DCtx_setParameter(DecompressionContext* context, DecompressionParameter parameter, int value);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_DCtx_loadDictionary(DecompressionContext* context, byte* dictionary, nuint dictionarySize);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_DCtx_reset(DecompressionContext* context, ResetDirective reset);

    [LibraryImport(LibraryName)]
    private static partial nuint ZSTD_decompressStream(DecompressionContext* context, OutBuffer* output, InBuffer* input);
}
