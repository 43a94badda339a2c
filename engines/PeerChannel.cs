using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Compression;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.Engines;

/// <summary>
/// What an engine keeps per connection: delta state both ways, the zstd stream contexts (one per
/// direction, reset with the connection), and when it last sent and heard something.
/// </summary>
public sealed class PeerChannel : IDisposable
{
    /// <summary>Frames smaller than this go uncompressed (the flag says so).</summary>
    public const int MinCompressBytes = 64;

    private readonly int _level;
    private ZstdStreamCompressor? _compressor;
    private ZstdStreamDecompressor? _decompressor;
    private readonly PooledBufferWriter _inflated = new(64 * 1024);

    public int Connection { get; }
    public PeerInfo Peer { get; }
    public DeltaState TxDelta;
    public DeltaState RxDelta;
    public long LastSentMicros;
    public long LastHeardMicros;
    public long BytesOut;
    public long BytesIn;

    public PeerChannel(int connection, PeerInfo peer, int compressionLevel, long nowMicros)
    {
        Connection = connection;
        Peer = peer;
        _level = compressionLevel;
        LastSentMicros = LastHeardMicros = nowMicros;
    }

    /// <summary>Builds a frame from a payload, compressing it through this connection's stream when on and worth it.</summary>
    public FrameBuffer Frame(FrameType type, ReadOnlySpan<byte> payload, bool compress = true)
    {
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        if (compress && _level > 0 && payload.Length >= MinCompressBytes && Zstd.IsAvailable)
        {
            _compressor ??= new ZstdStreamCompressor(_level);
            _compressor.CompressMessage(payload, frame.Writer);
            FrameWriter.End(frame.Writer, start, type, FrameFlags.Compressed);
        }
        else
        {
            frame.Writer.Write(payload);
            FrameWriter.End(frame.Writer, start, type);
        }
        BytesOut += frame.Length;
        return frame;
    }

    /// <summary>The frame's payload, inflated when it is compressed (valid until the next call).</summary>
    public ReadOnlySequence<byte> Payload(in Frame frame, int maxBytes)
    {
        BytesIn += FrameHeader.Size + frame.Payload.Length;
        if (!frame.IsCompressed) return frame.Payload;
        _decompressor ??= new ZstdStreamDecompressor();
        _inflated.Clear();
        if (frame.Payload.IsSingleSegment)
        {
            _decompressor.DecompressMessage(frame.Payload.FirstSpan, _inflated, maxBytes);
        }
        else
        {
            var flat = ArrayPool<byte>.Shared.Rent((int)frame.Payload.Length);
            try
            {
                frame.Payload.CopyTo(flat);
                _decompressor.DecompressMessage(flat.AsSpan(0, (int)frame.Payload.Length), _inflated, maxBytes);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(flat);
            }
        }
        return new ReadOnlySequence<byte>(_inflated.WrittenMemory);
    }

    public void Dispose()
    {
        _compressor?.Dispose();
        _decompressor?.Dispose();
        _inflated.Dispose();
    }
}
