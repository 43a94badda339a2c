using ZstdSharp.Unsafe;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>
/// zstd through ZstdSharp.Port's <see cref="Methods"/>, a C# translation of zstd's C sources: the same
/// functions, parameters, error codes and format as libzstd, on every platform, at a lower speed.
/// </summary>
/// <remarks>
/// Its contexts live in native memory (<c>NativeMemory.Alloc</c>), like libzstd's, and are freed the
/// same way. Its ZSTD_inBuffer_s and ZSTD_outBuffer_s have the C layout, as <see cref="ZstdLibrary.InBuffer"/>
/// and <see cref="ZstdLibrary.OutBuffer"/> do, so pointers to ours are passed as pointers to its. Where allocation fails it throws <see cref="OutOfMemoryException"/> instead of returning
/// zstd's memory_allocation error.
/// </remarks>
internal sealed unsafe class ZstdManaged : ZstdLibrary
{
    public static readonly ZstdManaged Instance = new();

    private ZstdManaged()
    {
    }

    /// <summary>The ZstdSharp.Port assembly version, e.g. "0.8.8".</summary>
    public static string PortVersion { get; } = typeof(Methods).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    public override ZstdBackend Backend => ZstdBackend.Managed;

    public override bool IsUsable => true;

    public override string Version { get; } = Methods.ZSTD_versionString();

    public override nuint CompressBound(nuint sourceSize) => Methods.ZSTD_compressBound(sourceSize);

    public override int MinCompressionLevel() => Methods.ZSTD_minCLevel();

    public override int MaxCompressionLevel() => Methods.ZSTD_maxCLevel();

    public override bool IsError(nuint code) => Methods.ZSTD_isError(code);

    public override int GetErrorCode(nuint code) => (int)Methods.ZSTD_getErrorCode(code);

    public override string GetErrorName(nuint code) => Methods.ZSTD_getErrorName(code);

    public override ulong GetFrameContentSize(byte* source, nuint sourceSize) => Methods.ZSTD_getFrameContentSize(source, sourceSize);

    public override CompressionContext* CreateCompressionContext() => (CompressionContext*)Methods.ZSTD_createCCtx();

    public override void Free(CompressionContext* context) => Methods.ZSTD_freeCCtx(Cctx(context));

    public override nuint SetParameter(CompressionContext* context, CompressionParameter parameter, int value) =>
        Methods.ZSTD_CCtx_setParameter(Cctx(context), (ZSTD_cParameter)parameter, value);

    public override nuint LoadDictionary(CompressionContext* context, byte* dictionary, nuint dictionarySize) =>
        Methods.ZSTD_CCtx_loadDictionary(Cctx(context), dictionary, dictionarySize);

    public override nuint Reset(CompressionContext* context, ResetDirective reset) =>
        Methods.ZSTD_CCtx_reset(Cctx(context), (ZSTD_ResetDirective)reset);

    public override nuint CompressStream2(CompressionContext* context, OutBuffer* output, InBuffer* input, EndDirective endOp) =>
        Methods.ZSTD_compressStream2(Cctx(context), (ZSTD_outBuffer_s*)output, (ZSTD_inBuffer_s*)input, (ZSTD_EndDirective)endOp);

    public override DecompressionContext* CreateDecompressionContext() => (DecompressionContext*)Methods.ZSTD_createDCtx();

    public override void Free(DecompressionContext* context) => Methods.ZSTD_freeDCtx(Dctx(context));

    public override nuint SetParameter(DecompressionContext* context, DecompressionParameter parameter, int value) =>
        Methods.ZSTD_DCtx_setParameter(Dctx(context), (ZSTD_dParameter)parameter, value);

    public override nuint LoadDictionary(DecompressionContext* context, byte* dictionary, nuint dictionarySize) =>
        Methods.ZSTD_DCtx_loadDictionary(Dctx(context), dictionary, dictionarySize);

    public override nuint Reset(DecompressionContext* context, ResetDirective reset) =>
        Methods.ZSTD_DCtx_reset(Dctx(context), (ZSTD_ResetDirective)reset);

    public override nuint DecompressStream(DecompressionContext* context, OutBuffer* output, InBuffer* input) =>
        Methods.ZSTD_decompressStream(Dctx(context), (ZSTD_outBuffer_s*)output, (ZSTD_inBuffer_s*)input);

    private static ZSTD_CCtx_s* Cctx(CompressionContext* context) => (ZSTD_CCtx_s*)context;

    private static ZSTD_DCtx_s* Dctx(DecompressionContext* context) => (ZSTD_DCtx_s*)context;
}
