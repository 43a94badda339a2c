using System.Buffers;
using GeoRelay.Codec.Compression.Internal;
using static GeoRelay.Codec.Compression.Internal.ZstdLibrary;

namespace GeoRelay.Codec.Compression;

/// <summary>
/// One-shot zstd frames, through the system's <c>libzstd.so.1</c> (Debian <c>libzstd1</c>, 1.4.0 or later)
/// where it loads, otherwise through ZstdSharp.Port (same format, slower); <see cref="Backend"/> says which.
/// For per-connection streams see <see cref="ZstdStreamCompressor"/> and <see cref="ZstdStreamDecompressor"/>.
/// </summary>
/// <remarks>
/// The environment variable <c>GEORELAY_ZSTD</c> (<see cref="BackendVariable"/>), read once per process,
/// chooses the back end: <c>managed</c> uses ZstdSharp.Port even where libzstd loads (to compare, or to
/// rule libzstd out); <c>native</c> uses libzstd only, so without it zstd is unavailable instead of
/// silently slower; unset or <c>auto</c> picks libzstd where it loads.
/// Each thread keeps one compression and one decompression context per back end for these calls, so a
/// call allocates nothing managed; the contexts are freed by their finalizers when the thread ends.
/// Frames carry their content size and a checksum, so corruption is reported instead of returned.
/// </remarks>
public static class Zstd
{
    /// <summary>The environment variable that chooses the back end: <c>auto</c> (default), <c>native</c> or <c>managed</c>.</summary>
    public const string BackendVariable = "GEORELAY_ZSTD";

    /// <summary>Windows of 2 MiB (what level 3 picks when the size is unknown) are always accepted.</summary>
    private const int OneShotMinWindowLog = 21;

    /// <summary>zstd's own default limit (128 MiB), reached only when a caller allows that much output.</summary>
    private const int OneShotMaxWindowLog = 27;

    [ThreadStatic] private static CompressionContextHandle? t_nativeCompression;
    [ThreadStatic] private static CompressionContextHandle? t_managedCompression;
    [ThreadStatic] private static DecompressionContextHandle? t_nativeDecompression;
    [ThreadStatic] private static DecompressionContextHandle? t_managedDecompression;

    static Zstd()
    {
        Backend = ChooseBackend(Environment.GetEnvironmentVariable(BackendVariable), () => ZstdNative.Instance.IsUsable, out string? reason);
        Description = Describe(Backend, reason);
    }

    /// <summary>The back end this process uses: <see cref="ZstdBackend.Native"/> where libzstd loads, unless <c>GEORELAY_ZSTD</c> says otherwise.</summary>
    public static ZstdBackend Backend { get; }

    /// <summary>True when the chosen back end works: always, unless <c>GEORELAY_ZSTD=native</c> and libzstd does not load.</summary>
    public static bool IsAvailable => Implementation(Backend).IsUsable;

    /// <summary>The zstd version of the back end in use, e.g. "1.5.4"; empty when it is not available.</summary>
    public static string Version => Implementation(Backend).Version;

    /// <summary>One line for logs: version, back end, and why that back end, e.g. "zstd 1.5.4, native (libzstd.so.1)".</summary>
    public static string Description { get; }

    /// <summary>The largest frame <see cref="Compress"/> can produce from <paramref name="size"/> bytes.</summary>
    public static int CompressBound(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        nuint bound = UsableLibrary(Backend).CompressBound((nuint)size);
        if (bound > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The compressed size could exceed 2 GiB.");
        }
        return (int)bound;
    }

    /// <summary>Compresses <paramref name="source"/> into one zstd frame (with content size and checksum).</summary>
    /// <param name="level">zstd level: 1 fast … 19 strong (22 max), negative for faster still, 0 for zstd's default (3).</param>
    public static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level) =>
        Compress(source, destination, level, Backend);

    /// <inheritdoc cref="Compress(ReadOnlySpan{byte}, IBufferWriter{byte}, int)"/>
    /// <param name="backend">The back end to use instead of <see cref="Backend"/> (tests, benchmarks).</param>
    internal static void Compress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int level, ZstdBackend backend)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ZstdLibrary library = UsableLibrary(backend);
        ValidateLevel(library, level);
        CompressionContextHandle context = backend == ZstdBackend.Native
            ? t_nativeCompression ??= CreateOneShotCompressionContext(library)
            : t_managedCompression ??= CreateOneShotCompressionContext(library);
        // A previous call may have stopped part-way (the writer threw); start a clean frame.
        ZstdStreaming.ResetSession(context);
        ZstdStreaming.SetParameter(context, CompressionParameter.CompressionLevel, level);
        ZstdStreaming.Compress(context, source, destination, EndDirective.End);
    }

    /// <summary>
    /// Decompresses one zstd frame (or several concatenated ones) from <paramref name="source"/>.
    /// Output and the decoder's window are bounded by <paramref name="maxOutputBytes"/>, whatever the frame claims.
    /// </summary>
    /// <exception cref="CodecException">Corrupt, truncated or empty input (Decompression), or more than
    /// <paramref name="maxOutputBytes"/> of output (TooLarge). Part of the output may already be in
    /// <paramref name="destination"/>.</exception>
    public static void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes) =>
        Decompress(source, destination, maxOutputBytes, Backend);

    /// <inheritdoc cref="Decompress(ReadOnlySpan{byte}, IBufferWriter{byte}, int)"/>
    /// <param name="backend">The back end to use instead of <see cref="Backend"/> (tests, benchmarks).</param>
    internal static unsafe void Decompress(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes, ZstdBackend backend)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(maxOutputBytes);
        ZstdLibrary library = UsableLibrary(backend);
        if (source.IsEmpty)
        {
            throw new CodecException(CodecError.Decompression, "empty input is not a zstd frame");
        }
        fixed (byte* src = source)
        {
            // A declared size is only a claim, but one over the limit fails early and cheaply.
            ulong declared = library.GetFrameContentSize(src, (nuint)source.Length);
            if (declared != ContentSizeUnknown && declared != ContentSizeError && declared > (ulong)maxOutputBytes)
            {
                throw new CodecException(CodecError.TooLarge, $"zstd frame declares {declared} bytes, over the limit of {maxOutputBytes}");
            }
        }
        DecompressionContextHandle context = backend == ZstdBackend.Native
            ? t_nativeDecompression ??= new DecompressionContextHandle(library)
            : t_managedDecompression ??= new DecompressionContextHandle(library);
        ZstdStreaming.ResetSession(context);
        // No valid frame of at most maxOutputBytes needs a window larger than that (rounded up to a
        // power of two), so a bigger window claim is refused before zstd allocates it.
        int windowLog = Math.Clamp(CeilingLog2(maxOutputBytes), OneShotMinWindowLog, OneShotMaxWindowLog);
        ZstdStreaming.SetParameter(context, DecompressionParameter.WindowLogMax, windowLog);
        ZstdStreaming.Decompress(context, source, destination, maxOutputBytes, out nuint hint);
        if (hint != 0)
        {
            throw new CodecException(CodecError.Decompression, "zstd frame is truncated");
        }
    }

    /// <summary>Whether <paramref name="backend"/> can run in this process, whichever one <see cref="Backend"/> is.</summary>
    internal static bool IsUsable(ZstdBackend backend) => Implementation(backend).IsUsable;

    /// <summary>The implementation of <paramref name="backend"/>; throws if it cannot run here.</summary>
    internal static ZstdLibrary UsableLibrary(ZstdBackend backend)
    {
        ZstdLibrary library = Implementation(backend);
        if (!library.IsUsable)
        {
            throw new PlatformNotSupportedException(backend == Backend
                ? $"{Description}. Install libzstd1, or unset {BackendVariable} to fall back to ZstdSharp.Port."
                : $"zstd's native back end needs {ZstdNative.LibraryName}, version 1.4.0 or later (Debian package libzstd1).");
        }
        return library;
    }

    internal static void ValidateLevel(ZstdLibrary library, int level)
    {
        int min = library.MinCompressionLevel();
        int max = library.MaxCompressionLevel();
        if (level < min || level > max)
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, $"zstd levels run from {min} to {max}.");
        }
    }

    /// <summary>
    /// Picks the back end from the <c>GEORELAY_ZSTD</c> setting and whether libzstd loads (asked only
    /// when the setting leaves it open). <paramref name="reason"/> says why, when that is not simply
    /// "libzstd loaded".
    /// </summary>
    internal static ZstdBackend ChooseBackend(string? setting, Func<bool> nativeUsable, out string? reason)
    {
        string choice = setting?.Trim().ToLowerInvariant() ?? string.Empty;
        const string notLoaded = $"{ZstdNative.LibraryName} (1.4.0 or later) did not load";
        switch (choice)
        {
            case "managed":
                reason = $"{BackendVariable}=managed";
                return ZstdBackend.Managed;
            case "native":
                reason = nativeUsable() ? $"{BackendVariable}=native" : $"{BackendVariable}=native, but {notLoaded}";
                return ZstdBackend.Native;
            case "" or "auto":
                reason = nativeUsable() ? null : notLoaded;
                return reason is null ? ZstdBackend.Native : ZstdBackend.Managed;
            default:
                // Unknown values fall back to auto rather than failing the process; the description says so.
                string ignored = $"{BackendVariable}={setting} ignored (expected auto, native or managed)";
                bool native = nativeUsable();
                reason = native ? ignored : $"{ignored}; {notLoaded}";
                return native ? ZstdBackend.Native : ZstdBackend.Managed;
        }
    }

    private static string Describe(ZstdBackend backend, string? reason)
    {
        ZstdLibrary library = Implementation(backend);
        string what = !library.IsUsable
            ? "zstd unavailable"
            : backend == ZstdBackend.Native
                ? $"zstd {library.Version}, native ({ZstdNative.LibraryName})"
                : $"zstd {library.Version}, managed (ZstdSharp.Port {ZstdManaged.PortVersion})";
        return reason is null ? what : $"{what}: {reason}";
    }

    private static ZstdLibrary Implementation(ZstdBackend backend) => backend switch
    {
        ZstdBackend.Native => ZstdNative.Instance,
        ZstdBackend.Managed => ZstdManaged.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(backend), backend, null),
    };

    private static CompressionContextHandle CreateOneShotCompressionContext(ZstdLibrary library)
    {
        var context = new CompressionContextHandle(library);
        try
        {
            ZstdStreaming.SetParameter(context, CompressionParameter.ChecksumFlag, 1);
        }
        catch
        {
            context.Dispose();
            throw;
        }
        return context;
    }

    private static int CeilingLog2(int value) => value <= 1 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(value - 1));
}
