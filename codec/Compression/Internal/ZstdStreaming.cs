using System.Buffers;
using static GeoRelay.Codec.Compression.Internal.ZstdLibrary;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>
/// The calls shared by the one-shot and the per-connection APIs, for either back end: the compress and
/// decompress loops move bytes between a span and an <see cref="IBufferWriter{T}"/> in bounded steps and
/// map zstd's errors. No managed allocation except on error paths.
/// </summary>
internal static unsafe class ZstdStreaming
{
    /// <summary>ZSTD_BLOCKSIZE_MAX: the decoder never produces more than one block per step.</summary>
    internal const int DecompressStep = 128 * 1024;

    /// <summary>
    /// Enough for one full block's worst case plus block and frame headers (about ZSTD_CStreamOutSize),
    /// so zstd can compress straight into the writer's memory instead of its own buffer.
    /// </summary>
    internal const int CompressStep = 128 * 1024 + 1024;

    /// <summary>
    /// Window limit for per-connection streams (8 MiB): the most a peer can make the decoder allocate.
    /// Levels up to 19 use at most this window by default; the compressor clamps higher levels to it.
    /// </summary>
    internal const int StreamWindowLog = 23;

    internal const int HighestLevelWithinStreamWindow = 19;

    /// <summary>Throws for a failed zstd call on our own state (not on peer input): a bug or out of memory.</summary>
    internal static void ThrowIfFailed(ZstdLibrary library, nuint code, string what)
    {
        if (library.IsError(code))
        {
            throw new InvalidOperationException($"{what} failed: {library.GetErrorName(code)}");
        }
    }

    internal static void SetParameter(CompressionContextHandle context, CompressionParameter parameter, int value)
    {
        using var lease = new ContextLease(context);
        nuint result = context.Library.SetParameter((CompressionContext*)lease.Pointer, parameter, value);
        if (context.Library.IsError(result))
        {
            throw new InvalidOperationException($"ZSTD_CCtx_setParameter({parameter}, {value}) failed: {context.Library.GetErrorName(result)}");
        }
    }

    internal static void SetParameter(DecompressionContextHandle context, DecompressionParameter parameter, int value)
    {
        using var lease = new ContextLease(context);
        nuint result = context.Library.SetParameter((DecompressionContext*)lease.Pointer, parameter, value);
        if (context.Library.IsError(result))
        {
            throw new InvalidOperationException($"ZSTD_DCtx_setParameter({parameter}, {value}) failed: {context.Library.GetErrorName(result)}");
        }
    }

    /// <summary>Forgets the stream's history (and any frame in progress); parameters and dictionary stay.</summary>
    internal static void ResetSession(CompressionContextHandle context)
    {
        using var lease = new ContextLease(context);
        ThrowIfFailed(context.Library, context.Library.Reset((CompressionContext*)lease.Pointer, ResetDirective.SessionOnly), "ZSTD_CCtx_reset");
    }

    /// <inheritdoc cref="ResetSession(CompressionContextHandle)"/>
    internal static void ResetSession(DecompressionContextHandle context)
    {
        using var lease = new ContextLease(context);
        ThrowIfFailed(context.Library, context.Library.Reset((DecompressionContext*)lease.Pointer, ResetDirective.SessionOnly), "ZSTD_DCtx_reset");
    }

    internal static void LoadDictionary(CompressionContextHandle context, ReadOnlySpan<byte> dictionary)
    {
        using var lease = new ContextLease(context);
        fixed (byte* dict = dictionary)
        {
            ThrowIfDictionaryRejected(context.Library, context.Library.LoadDictionary((CompressionContext*)lease.Pointer, dict, (nuint)dictionary.Length));
        }
    }

    internal static void LoadDictionary(DecompressionContextHandle context, ReadOnlySpan<byte> dictionary)
    {
        using var lease = new ContextLease(context);
        fixed (byte* dict = dictionary)
        {
            ThrowIfDictionaryRejected(context.Library, context.Library.LoadDictionary((DecompressionContext*)lease.Pointer, dict, (nuint)dictionary.Length));
        }
    }

    /// <summary>
    /// Feeds all of <paramref name="source"/> and finishes with <paramref name="directive"/>
    /// (Flush: end of a message inside the stream; End: end of the frame).
    /// </summary>
    internal static void Compress(CompressionContextHandle context, ReadOnlySpan<byte> source, IBufferWriter<byte> destination, EndDirective directive)
    {
        ZstdLibrary library = context.Library;
        using var lease = new ContextLease(context);
        var cctx = (CompressionContext*)lease.Pointer;
        fixed (byte* src = source)
        {
            var input = new InBuffer { Source = src, Size = (nuint)source.Length };
            while (true)
            {
                nuint pending = (nuint)source.Length - input.Position;
                nuint bound = library.CompressBound(pending) + 32; // + frame and block headers
                Span<byte> span = destination.GetSpan((int)Math.Min(bound, (nuint)CompressStep));
                nuint remaining;
                fixed (byte* dst = span)
                {
                    var output = new OutBuffer { Destination = dst, Size = (nuint)span.Length };
                    remaining = library.CompressStream2(cctx, &output, &input, directive);
                    ThrowIfFailed(library, remaining, "ZSTD_compressStream2");
                    destination.Advance((int)output.Position);
                }
                // With Flush or End, 0 means every input byte is consumed and everything is written out.
                if (remaining == 0 && input.Position == input.Size)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Decodes all of <paramref name="source"/> into <paramref name="destination"/>, never writing
    /// more than <paramref name="maxOutputBytes"/> whatever the input claims.
    /// </summary>
    /// <param name="hint">zstd's last hint: 0 at the end of a frame, <see cref="BlockHeaderSize"/> between two blocks.</param>
    /// <returns>The number of bytes written to <paramref name="destination"/>.</returns>
    /// <exception cref="CodecException">Corrupt input (Decompression) or too much output (TooLarge).
    /// Bytes already written to <paramref name="destination"/> stay there; the caller discards them.</exception>
    internal static long Decompress(DecompressionContextHandle context, ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes, out nuint hint)
    {
        ZstdLibrary library = context.Library;
        using var lease = new ContextLease(context);
        var dctx = (DecompressionContext*)lease.Pointer;
        long produced = 0;
        fixed (byte* src = source)
        {
            var input = new InBuffer { Source = src, Size = (nuint)source.Length };
            while (true)
            {
                // Offering one byte past the limit tells "exactly at the limit" from "over it";
                // that byte is never advanced, so the caller never sees it.
                long allowance = maxOutputBytes - produced + 1;
                Span<byte> span = destination.GetSpan((int)Math.Min(allowance, DecompressStep));
                if (span.Length > allowance)
                {
                    span = span[..(int)allowance];
                }
                int written;
                fixed (byte* dst = span)
                {
                    var output = new OutBuffer { Destination = dst, Size = (nuint)span.Length };
                    hint = library.DecompressStream(dctx, &output, &input);
                    if (library.IsError(hint))
                    {
                        throw DecodeError(library, hint);
                    }
                    written = (int)output.Position;
                }
                if (produced + written > maxOutputBytes)
                {
                    throw new CodecException(CodecError.TooLarge, $"decompressed data exceeds the limit of {maxOutputBytes} bytes");
                }
                destination.Advance(written);
                produced += written;
                // Done once all input is consumed and the decoder, given room, had nothing more to write.
                if (input.Position == input.Size && (hint == 0 || written < span.Length))
                {
                    return produced;
                }
            }
        }
    }

    private static void ThrowIfDictionaryRejected(ZstdLibrary library, nuint result)
    {
        if (library.IsError(result))
        {
            throw new ArgumentException($"zstd rejected the dictionary: {library.GetErrorName(result)}", "dictionary");
        }
    }

    private static CodecException DecodeError(ZstdLibrary library, nuint code)
    {
        string name = library.GetErrorName(code);
        return library.GetErrorCode(code) == (int)ErrorCode.FrameParameterWindowTooLarge
            ? new CodecException(CodecError.TooLarge, $"zstd frame needs a larger window than allowed ({name})")
            : new CodecException(CodecError.Decompression, $"zstd: {name}");
    }
}
