using System.Buffers;
using static GeoRelay.Codec.Compression.Internal.ZstdNative;

namespace GeoRelay.Codec.Compression.Internal;

/// <summary>
/// The compress and decompress loops shared by the one-shot and the per-connection APIs: they move
/// bytes between a span and an <see cref="IBufferWriter{T}"/> in bounded steps and map libzstd
/// errors. No managed allocation except on error paths.
/// </summary>
internal static unsafe class ZstdStreaming
{
    /// <summary>ZSTD_BLOCKSIZE_MAX: the decoder never produces more than one block per step.</summary>
    internal const int DecompressStep = 128 * 1024;

    /// <summary>
    /// Enough for one full block's worst case plus block and frame headers (about ZSTD_CStreamOutSize),
    /// so libzstd can compress straight into the writer's memory instead of its own buffer.
    /// </summary>
    internal const int CompressStep = 128 * 1024 + 1024;

    /// <summary>
    /// Window limit for per-connection streams (8 MiB): the most a peer can make the decoder allocate.
    /// Levels up to 19 use at most this window by default; the compressor clamps higher levels to it.
    /// </summary>
    internal const int StreamWindowLog = 23;

    internal const int HighestLevelWithinStreamWindow = 19;

    internal static CompressionContextHandle CreateCompressionContext()
    {
        CompressionContextHandle context = ZstdNative.CreateCompressionContext();
        if (context.IsInvalid)
        {
            context.Dispose();
            throw new OutOfMemoryException("ZSTD_createCCtx failed.");
        }
        return context;
    }

    internal static DecompressionContextHandle CreateDecompressionContext()
    {
        DecompressionContextHandle context = ZstdNative.CreateDecompressionContext();
        if (context.IsInvalid)
        {
            context.Dispose();
            throw new OutOfMemoryException("ZSTD_createDCtx failed.");
        }
        return context;
    }

    /// <summary>Throws for a failed libzstd call on our own state (not on peer input): a bug or out of memory.</summary>
    internal static void ThrowIfFailed(nuint code, string what)
    {
        if (Failed(code))
        {
            throw new InvalidOperationException($"{what} failed: {ErrorName(code)}");
        }
    }

    internal static void LoadDictionary(CompressionContextHandle context, ReadOnlySpan<byte> dictionary)
    {
        fixed (byte* dict = dictionary)
        {
            nuint result = ZstdNative.LoadDictionary(context, dict, (nuint)dictionary.Length);
            if (Failed(result))
            {
                throw new ArgumentException($"zstd rejected the dictionary: {ErrorName(result)}", nameof(dictionary));
            }
        }
    }

    internal static void LoadDictionary(DecompressionContextHandle context, ReadOnlySpan<byte> dictionary)
    {
        fixed (byte* dict = dictionary)
        {
            nuint result = ZstdNative.LoadDictionary(context, dict, (nuint)dictionary.Length);
            if (Failed(result))
            {
                throw new ArgumentException($"zstd rejected the dictionary: {ErrorName(result)}", nameof(dictionary));
            }
        }
    }

    /// <summary>
    /// Feeds all of <paramref name="source"/> and finishes with <paramref name="directive"/>
    /// (Flush: end of a message inside the stream; End: end of the frame).
    /// </summary>
    internal static void Compress(CompressionContextHandle context, ReadOnlySpan<byte> source, IBufferWriter<byte> destination, EndDirective directive)
    {
        fixed (byte* src = source)
        {
            var input = new InBuffer { Source = src, Size = (nuint)source.Length };
            while (true)
            {
                nuint pending = (nuint)source.Length - input.Position;
                nuint bound = ZstdNative.CompressBound(pending) + 32; // + frame and block headers
                Span<byte> span = destination.GetSpan((int)Math.Min(bound, (nuint)CompressStep));
                nuint remaining;
                fixed (byte* dst = span)
                {
                    var output = new OutBuffer { Destination = dst, Size = (nuint)span.Length };
                    remaining = CompressStream2(context, &output, &input, directive);
                    ThrowIfFailed(remaining, "ZSTD_compressStream2");
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
    /// <param name="hint">libzstd's last hint: 0 at the end of a frame, <see cref="BlockHeaderSize"/> between two blocks.</param>
    /// <returns>The number of bytes written to <paramref name="destination"/>.</returns>
    /// <exception cref="CodecException">Corrupt input (Decompression) or too much output (TooLarge).
    /// Bytes already written to <paramref name="destination"/> stay there; the caller discards them.</exception>
    internal static long Decompress(DecompressionContextHandle context, ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes, out nuint hint)
    {
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
                    hint = DecompressStream(context, &output, &input);
                    if (Failed(hint))
                    {
                        throw DecodeError(hint);
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

    private static CodecException DecodeError(nuint code)
    {
        string name = ErrorName(code);
        return GetErrorCode(code) == (int)ErrorCode.FrameParameterWindowTooLarge
            ? new CodecException(CodecError.TooLarge, $"zstd frame needs a larger window than allowed ({name})")
            : new CodecException(CodecError.Decompression, $"zstd: {name}");
    }
}
