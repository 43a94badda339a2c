using System.Buffers;
using System.Runtime.InteropServices;
using GeoRelay.Codec.Compression.Internal;
using static GeoRelay.Codec.Compression.Internal.ZstdNative;

namespace GeoRelay.Codec.Compression;

/// <summary>
/// One-shot zstd frames through the system's <c>libzstd.so.1</c> (Debian <c>libzstd1</c>, 1.4.0 or later).
/// For per-connection streams see <see cref="ZstdStreamCompressor"/> and <see cref="ZstdStreamDecompressor"/>.
/// </summary>
/// <remarks>
/// Each thread keeps one compression and one decompression context for these calls, so a call
/// allocates nothing managed; the contexts are freed by their finalizers when the thread ends.
/// Frames carry their content size and a checksum, so corruption is reported instead of returned.
/// </remarks>
public static class Zstd
{
    private const uint MinimumVersionNumber = 10400; // ZSTD_compressStream2 and the parameter API

    /// <summary>Windows of 2 MiB (what level 3 picks when the size is unknown) are always accepted.</summary>
    private const int OneShotMinWindowLog = 21;

    /// <summary>zstd's own default limit (128 MiB), reached only when a caller allows that much output.</summary>
    private const int OneShotMaxWindowLog = 27;

    private static readonly uint s_versionNumber = ProbeVersionNumber();

    [ThreadStatic] private static CompressionContextHandle? t_compressionContext;
    [ThreadStatic] private static DecompressionContextHandle? t_decompressionContext;

    /// <summary>True when <c>libzstd.so.1</c> (1.4.0 or later) can be loaded.</summary>
    public static bool IsAvailable => s_versionNumber >= MinimumVersionNumber;

    /// <summary>The loaded library's version, e.g. "1.5.4"; empty when it is not available.</summary>
    public static string Version { get; } = ProbeVersionString();

    /// <summary>The largest frame <see cref="Compress"/> can produce from <paramref name="size"/> bytes.</summary>
    public static int CompressBound(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        EnsureAvailable();
        nuint bound = ZstdNative.CompressBound((nuint)size);
        if (bound > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The compressed size could exceed 2 GiB.");
        }
        return (int)bound;
    }

    /// <summary>Compresses <paramref name="source"/> into one zstd frame (with content size and checksum).</summary>
    /// <param name="level">zstd level: 1 fast … 19 strong (22 max), negative for faster still, 0 for zstd's default (3).</param>
    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level)
    {
        ArgumentNullException.ThrowIfNull(destination);
        EnsureAvailable();
        ValidateLevel(level);
        CompressionContextHandle context = t_compressionContext ??= CreateOneShotCompressionContext();
        // A previous call may have stopped part-way (the writer threw); start a clean frame.
        ZstdStreaming.ThrowIfFailed(Reset(context, ResetDirective.SessionOnly), "ZSTD_CCtx_reset");
        ZstdStreaming.ThrowIfFailed(SetParameter(context, CompressionParameter.CompressionLevel, level), "ZSTD_CCtx_setParameter(level)");
        ZstdStreaming.Compress(context, source, destination, EndDirective.End);
    }

    /// <summary>
    /// Decompresses one zstd frame (or several concatenated ones) from <paramref name="source"/>.
    /// Output and the decoder's window are bounded by <paramref name="maxOutputBytes"/>, whatever the frame claims.
    /// </summary>
    /// <exception cref="CodecException">Corrupt, truncated or empty input (Decompression), or more than
    /// <paramref name="maxOutputBytes"/> of output (TooLarge). Part of the output may already be in
    /// <paramref name="destination"/>.</exception>
    public static unsafe void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(maxOutputBytes);
        EnsureAvailable();
        if (source.IsEmpty)
        {
            throw new CodecException(CodecError.Decompression, "empty input is not a zstd frame");
        }
        fixed (byte* src = source)
        {
            // A declared size is only a claim, but one over the limit fails early and cheaply.
            ulong declared = GetFrameContentSize(src, (nuint)source.Length);
            if (declared != ContentSizeUnknown && declared != ContentSizeError && declared > (ulong)maxOutputBytes)
            {
                throw new CodecException(CodecError.TooLarge, $"zstd frame declares {declared} bytes, over the limit of {maxOutputBytes}");
            }
        }
        DecompressionContextHandle context = t_decompressionContext ??= ZstdStreaming.CreateDecompressionContext();
        ZstdStreaming.ThrowIfFailed(Reset(context, ResetDirective.SessionOnly), "ZSTD_DCtx_reset");
        // No valid frame of at most maxOutputBytes needs a window larger than that (rounded up to a
        // power of two), so a bigger window claim is refused before libzstd allocates it.
        int windowLog = Math.Clamp(CeilingLog2(maxOutputBytes), OneShotMinWindowLog, OneShotMaxWindowLog);
        ZstdStreaming.ThrowIfFailed(SetParameter(context, DecompressionParameter.WindowLogMax, windowLog), "ZSTD_DCtx_setParameter(windowLogMax)");
        ZstdStreaming.Decompress(context, source, destination, maxOutputBytes, out nuint hint);
        if (hint != 0)
        {
            throw new CodecException(CodecError.Decompression, "zstd frame is truncated");
        }
    }

    internal static void EnsureAvailable()
    {
        if (!IsAvailable)
        {
            throw new PlatformNotSupportedException("zstd needs libzstd.so.1, version 1.4.0 or later (Debian package libzstd1).");
        }
    }

    internal static void ValidateLevel(int level)
    {
        int min = MinCompressionLevel();
        int max = MaxCompressionLevel();
        if (level < min || level > max)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, $"zstd levels run from {min} to {max}.");
        }
    }

    private static CompressionContextHandle CreateOneShotCompressionContext()
    {
        CompressionContextHandle context = ZstdStreaming.CreateCompressionContext();
        ZstdStreaming.ThrowIfFailed(SetParameter(context, CompressionParameter.ChecksumFlag, 1), "ZSTD_CCtx_setParameter(checksum)");
        return context;
    }

    private static int CeilingLog2(int value) => value <= 1 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(value - 1));

    private static uint ProbeVersionNumber()
    {
        try
        {
            return VersionNumber();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return 0;
        }
    }

    private static unsafe string ProbeVersionString() =>
        IsAvailable ? Marshal.PtrToStringUTF8((nint)VersionString()) ?? string.Empty : string.Empty;
}
