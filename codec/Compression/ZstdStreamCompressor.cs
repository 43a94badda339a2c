using System.Buffers;
using GeoRelay.Codec.Compression.Internal;
using static GeoRelay.Codec.Compression.Internal.ZstdLibrary;

namespace GeoRelay.Codec.Compression;

/// <summary>
/// The sending half of one connection direction's zstd stream: one frame for the whole connection,
/// flushed after every message, so each message decodes on arrival while later messages reuse the
/// history of earlier ones. Not thread-safe; one writer loop owns it.
/// </summary>
/// <remarks>
/// Levels above 19 are held to an 8 MiB window, the most <see cref="ZstdStreamDecompressor"/> accepts.
/// An empty message compresses to nothing; the peer's decompressor turns nothing back into nothing.
/// </remarks>
public sealed class ZstdStreamCompressor : IDisposable
{
    private readonly CompressionContextHandle _context;

    // Set while a call is under way; still set afterwards if it failed part-way, because the peer
    // can then no longer follow the stream.
    private bool _broken;

    /// <param name="level">zstd level: 1 fast … 19 strong (22 max), negative for faster still, 0 for zstd's default (3).</param>
    /// <param name="dictionary">Optional dictionary (raw content or trained); the peer must use the same bytes. Copied.</param>
    public ZstdStreamCompressor(int level, ReadOnlyMemory<byte> dictionary = default)
        : this(level, dictionary, Zstd.Backend)
    {
    }

    /// <param name="backend">The back end to use instead of <see cref="Zstd.Backend"/> (tests, benchmarks).</param>
    internal ZstdStreamCompressor(int level, ReadOnlyMemory<byte> dictionary, ZstdBackend backend)
    {
        ZstdLibrary library = Zstd.UsableLibrary(backend);
        Zstd.ValidateLevel(library, level);
        _context = new CompressionContextHandle(library);
        try
        {
            ZstdStreaming.SetParameter(_context, CompressionParameter.CompressionLevel, level);
            if (level > ZstdStreaming.HighestLevelWithinStreamWindow)
            {
                ZstdStreaming.SetParameter(_context, CompressionParameter.WindowLog, ZstdStreaming.StreamWindowLog);
            }
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

    /// <summary>Compresses one message and flushes it, so the receiver can decode it without what follows.</summary>
    /// <exception cref="InvalidOperationException">An earlier call failed part-way; Reset (and reconnect) first.</exception>
    public void CompressMessage(ReadOnlySpan<byte> source, IBufferWriter<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        ArgumentNullException.ThrowIfNull(destination);
        if (_broken)
        {
            throw new InvalidOperationException("An earlier message failed part-way; the stream must be reset.");
        }
        _broken = true;
        ZstdStreaming.Compress(_context, source, destination, EndDirective.Flush);
        _broken = false;
    }

    /// <summary>Starts a new stream for a new connection: history is forgotten, level and dictionary kept.</summary>
    public void Reset()
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        ZstdStreaming.ResetSession(_context);
        _broken = false;
    }

    public void Dispose() => _context.Dispose();
}
