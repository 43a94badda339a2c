using System.Runtime.InteropServices;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>The part of libzstd's stable API (zstd.h, zstd_errors.h; present since 1.4.0) that GeoRelay uses.</summary>
/// <remarks>
/// Strings returned by libzstd point into static storage, so they come back as <c>byte*</c> and are
/// read without freeing; a <c>string</c> return type would make the marshaller free them.
/// </remarks>
internal static unsafe partial class ZstdNative
{
    private const string Library = "libzstd.so.1";

    /// <summary>ZSTD_inBuffer: <c>{ const void* src; size_t size; size_t pos; }</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InBuffer
    {
        public byte* Source;
        public nuint Size;
        public nuint Position;
    }

    /// <summary>ZSTD_outBuffer: <c>{ void* dst; size_t size; size_t pos; }</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct OutBuffer
    {
        public byte* Destination;
        public nuint Size;
        public nuint Position;
    }

    internal enum EndDirective
    {
        Continue = 0,
        Flush = 1,
        End = 2,
    }

    internal enum ResetDirective
    {
        SessionOnly = 1,
        Parameters = 2,
        SessionAndParameters = 3,
    }

    internal enum CompressionParameter
    {
        CompressionLevel = 100,
        WindowLog = 101,
        ContentSizeFlag = 200,
        ChecksumFlag = 201,
    }

    internal enum DecompressionParameter
    {
        WindowLogMax = 100,
    }

    /// <summary>ZSTD_ErrorCode values this code reacts to (zstd_errors.h).</summary>
    internal enum ErrorCode
    {
        FrameParameterWindowTooLarge = 16,
        MemoryAllocation = 64,
    }

    /// <summary>ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR.</summary>
    internal const ulong ContentSizeUnknown = unchecked((ulong)-1);
    internal const ulong ContentSizeError = unchecked((ulong)-2);

    /// <summary>ZSTD_blockHeaderSize: what the decoder asks for next when it stands between two blocks.</summary>
    internal const nuint BlockHeaderSize = 3;

    [LibraryImport(Library, EntryPoint = "ZSTD_versionNumber")]
    internal static partial uint VersionNumber();

    [LibraryImport(Library, EntryPoint = "ZSTD_versionString")]
    internal static partial byte* VersionString();

    [LibraryImport(Library, EntryPoint = "ZSTD_compressBound")]
    internal static partial nuint CompressBound(nuint sourceSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_minCLevel")]
    internal static partial int MinCompressionLevel();

    [LibraryImport(Library, EntryPoint = "ZSTD_maxCLevel")]
    internal static partial int MaxCompressionLevel();

    [LibraryImport(Library, EntryPoint = "ZSTD_isError")]
    internal static partial uint IsError(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getErrorCode")]
    internal static partial int GetErrorCode(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getErrorName")]
    internal static partial byte* GetErrorName(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getFrameContentSize")]
    internal static partial ulong GetFrameContentSize(byte* source, nuint sourceSize);

    // Compression context.

    [LibraryImport(Library, EntryPoint = "ZSTD_createCCtx")]
    internal static partial CompressionContextHandle CreateCompressionContext();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeCCtx")]
    internal static partial nuint FreeCompressionContext(nint context);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_setParameter")]
    internal static partial nuint SetParameter(CompressionContextHandle context, CompressionParameter parameter, int value);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_loadDictionary")]
    internal static partial nuint LoadDictionary(CompressionContextHandle context, byte* dictionary, nuint dictionarySize);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_reset")]
    internal static partial nuint Reset(CompressionContextHandle context, ResetDirective reset);

    [LibraryImport(Library, EntryPoint = "ZSTD_compressStream2")]
    internal static partial nuint CompressStream2(CompressionContextHandle context, OutBuffer* output, InBuffer* input, EndDirective endOp);

    // Decompression context.

    [LibraryImport(Library, EntryPoint = "ZSTD_createDCtx")]
    internal static partial DecompressionContextHandle CreateDecompressionContext();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeDCtx")]
    internal static partial nuint FreeDecompressionContext(nint context);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_setParameter")]
    internal static partial nuint SetParameter(DecompressionContextHandle context, DecompressionParameter parameter, int value);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_loadDictionary")]
    internal static partial nuint LoadDictionary(DecompressionContextHandle context, byte* dictionary, nuint dictionarySize);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_reset")]
    internal static partial nuint Reset(DecompressionContextHandle context, ResetDirective reset);

    [LibraryImport(Library, EntryPoint = "ZSTD_decompressStream")]
    internal static partial nuint DecompressStream(DecompressionContextHandle context, OutBuffer* output, InBuffer* input);

    internal static bool Failed(nuint code) => IsError(code) != 0;

    internal static string ErrorName(nuint code) => Marshal.PtrToStringUTF8((nint)GetErrorName(code)) ?? "unknown error";
}
