using System.Runtime.InteropServices;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>An opaque <c>ZSTD_CCtx</c>, only ever handled by pointer.</summary>
internal struct CompressionContext
{
}

/// <summary>An opaque <c>ZSTD_DCtx</c>, only ever handled by pointer.</summary>
internal struct DecompressionContext
{
}

/// <summary>
/// The part of zstd's stable API (zstd.h, zstd_errors.h; present since 1.4.0) that GeoRelay uses, with two
/// implementations: <see cref="ZstdNative"/> (the system's libzstd) and <see cref="ZstdManaged"/>
/// (ZstdSharp.Port, a C# translation of the same C sources). Both keep zstd's calling convention, error
/// codes in <c>size_t</c> results included, so <see cref="ZstdStreaming"/> drives either with the same loops.
/// </summary>
internal abstract unsafe class ZstdLibrary
{
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

    /// <summary>ZSTD_ErrorCode values this code reacts to (zstd_errors.h; values fixed since 1.3.1).</summary>
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

    public abstract ZstdBackend Backend { get; }

    /// <summary>False when this back end cannot run in this process (libzstd missing or older than 1.4.0).</summary>
    public abstract bool IsUsable { get; }

    /// <summary>zstd's version, e.g. "1.5.4"; empty when not usable.</summary>
    public abstract string Version { get; }

    public abstract nuint CompressBound(nuint sourceSize);

    public abstract int MinCompressionLevel();

    public abstract int MaxCompressionLevel();

    public abstract bool IsError(nuint code);

    public abstract int GetErrorCode(nuint code);

    public abstract string GetErrorName(nuint code);

    public abstract ulong GetFrameContentSize(byte* source, nuint sourceSize);

    /// <summary>Null when out of memory.</summary>
    public abstract CompressionContext* CreateCompressionContext();

    public abstract void Free(CompressionContext* context);

    public abstract nuint SetParameter(CompressionContext* context, CompressionParameter parameter, int value);

    public abstract nuint LoadDictionary(CompressionContext* context, byte* dictionary, nuint dictionarySize);

    public abstract nuint Reset(CompressionContext* context, ResetDirective reset);

    public abstract nuint CompressStream2(CompressionContext* context, OutBuffer* output, InBuffer* input, EndDirective endOp);

    /// <summary>Null when out of memory.</summary>
    public abstract DecompressionContext* CreateDecompressionContext();

    public abstract void Free(DecompressionContext* context);

    public abstract nuint SetParameter(DecompressionContext* context, DecompressionParameter parameter, int value);

    public abstract nuint LoadDictionary(DecompressionContext* context, byte* dictionary, nuint dictionarySize);

    public abstract nuint Reset(DecompressionContext* context, ResetDirective reset);

    public abstract nuint DecompressStream(DecompressionContext* context, OutBuffer* output, InBuffer* input);
}
