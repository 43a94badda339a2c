using System.Buffers;
using GeoRelay.Codec.Compression.Internal;
using static GeoRelay.Codec.Compression.Internal.ZstdLibrary;

namespace GeoRelay.Codec.Compression;

/// <summary>
/// The receiving half of a <see cref="ZstdStreamCompressor"/> stream: decodes one flushed message
/// at a time, keeping the history that later messages refer to. Not thread-safe; one read loop owns it.
/// </summary>
/// <remarks>
/// The decoder's window is limited to 8 MiB, so a peer cannot make it allocate more than that
/// (plus zstd's block buffers) whatever it claims. zstd has no per-message checksum: a mangled
/// message is usually, not always, reported; the frame layer's integrity checks cover the rest.
/// A message cut exactly between two of its 128 KiB blocks looks complete; the frame length
/// prefix is what catches that. An empty message is empty on the wire too; every other message
/// decodes to at least one byte.
/// </remarks>
public sealed class ZstdStreamDecompressor : IDisposable
{
    private readonly DecompressionContextHandle _context;

    // Set while a call is under way; still set afterwards if it failed, because the decoder's
    // position in the stream is then unknown.
    private bool _broken;

    /// <param name="dictionary">Optional dictionary; must be the bytes the compressor used. Copied.</param>
    public ZstdStreamDecompressor(ReadOnlyMemory<byte> dictionary = default)
        : this(dictionary, Zstd.Backend)
    {
    }

    /// <param name="backend">The back end to use instead of <see cref="Zstd.Backend"/> (tests, benchmarks).</param>
    internal ZstdStreamDecompressor(ReadOnlyMemory<byte> dictionary, ZstdBackend backend)
    {
        _context = new DecompressionContextHandle(Zstd.UsableLibrary(backend));
        try
        {
            ZstdStreaming.SetParameter(_context, DecompressionParameter.WindowLogMax, ZstdStreaming.StreamWindowLog);
            if (!dictionary.IsEmpty)
            {
                ZstdStreaming.LoadDictionary(_context, dictionary.Span);
            }
        }
        catch
        {
            _context.Dispose();
            throw;
        }
    }

    /// <summary>The zstd implementation this stream runs on.</summary>
    public ZstdBackend Backend => _context.Library.Backend;

    /// <summary>Decodes exactly one message that the peer's compressor flushed.</summary>
    /// <exception cref="CodecException">Corrupt, truncated or foreign input, or a stream broken by an
    /// earlier error (Decompression); more than <paramref name="maxOutputBytes"/> of output or a
    /// window over the limit (TooLarge). After any of these the stream stays unusable until
    /// <see cref="Reset"/>; part of the output may already be in <paramref name="destination"/>.</exception>
    public void DecompressMessage(ReadOnlySpan<byte> source, IBufferWriter<byte> destination, int maxOutputBytes)
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(maxOutputBytes);
        if (_broken)
        {
            throw new CodecException(CodecError.Decompression, "zstd stream is unusable after an earlier error; reset it");
        }
        if (source.IsEmpty)
        {
            return;
        }
        _broken = true;
        long written = ZstdStreaming.Decompress(_context, source, destination, maxOutputBytes, out nuint hint);
        // A flushed message leaves the decoder waiting for the next block header (or, if the peer
        // ended the frame, for nothing); anything else means the message stopped inside a block.
        // The compressor sends nothing for an empty message, so bytes that decode to nothing are
        // a message cut right after its frame header.
        if ((hint != 0 && hint != BlockHeaderSize) || written == 0)
        {
            throw new CodecException(CodecError.Decompression, "zstd message is truncated");
        }
        _broken = false;
    }

    /// <summary>Starts a new stream for a new connection: history is forgotten, the dictionary kept.</summary>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        ZstdStreaming.ResetSession(_context);
        _broken = false;
    }

    public void Dispose() => _context.Dispose();
}
