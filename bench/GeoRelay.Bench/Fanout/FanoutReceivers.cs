using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using GeoRelay.Bench.Harness;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using HdrHistogram;

namespace GeoRelay.Bench.Fanout;

/// <summary>
/// Reads GeoRelay frames from a plain socket and counts the entries of Deliver frames without
/// decoding them: per frame it looks at the 6-byte header and the Deliver header only, and skips the rest.
/// With a latency histogram it decodes every entry instead (one receiver per run does) and records, µs, the time
/// since the publisher's <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/> in the payload's first 8 bytes.
/// </summary>
internal sealed class DeliverCounter(Socket socket, HistogramBase? latency = null)
{
    private readonly byte[] _buffer = new byte[256 << 10];
    private readonly byte[] _head = new byte[FrameHeader.Size + 30];
    private int _headLength;
    private int _skip;
    private byte[] _frame = new byte[64 << 10];
    private int _frameLength, _frameWanted;
    private long _messages;

    public Socket Socket => socket;
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>Reads until <paramref name="expected"/> entries have arrived or the connection ends.</summary>
    public async Task RunAsync(long expected, CancellationToken ct)
    {
        while (Messages < expected)
        {
            int n = await socket.ReceiveAsync(_buffer, SocketFlags.None, ct);
            if (n == 0) return;
            Feed(_buffer.AsSpan(0, n));
        }
    }

    private void Feed(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_frameWanted > 0)
            {
                int k = Math.Min(_frameWanted - _frameLength, data.Length);
                data[..k].CopyTo(_frame.AsSpan(_frameLength));
                _frameLength += k;
                data = data[k..];
                if (_frameLength == _frameWanted) DecodeWholeFrame();
                continue;
            }
            if (_skip > 0)
            {
                int k = Math.Min(_skip, data.Length);
                _skip -= k;
                data = data[k..];
                continue;
            }
            if (_headLength < FrameHeader.Size)
            {
                int k = Math.Min(FrameHeader.Size - _headLength, data.Length);
                data[..k].CopyTo(_head.AsSpan(_headLength));
                _headLength += k;
                data = data[k..];
                if (_headLength < FrameHeader.Size) continue;
            }
            int payloadLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(_head);
            var type = (FrameType)_head[4];
            if (type != FrameType.Deliver)
            {
                _skip = payloadLength;
                _headLength = 0;
                continue;
            }
            if (latency is not null)
            {
                if (_frame.Length < payloadLength) _frame = new byte[Math.Max(payloadLength, _frame.Length * 2)];
                _frameWanted = payloadLength;
                _frameLength = 0;
                _headLength = 0;
                if (payloadLength == 0) DecodeWholeFrame();
                continue;
            }
            // The Deliver header (first, count, through) is three varints at most 30 bytes long.
            int need = FrameHeader.Size + Math.Min(payloadLength, 30);
            int take = Math.Min(need - _headLength, data.Length);
            data[..take].CopyTo(_head.AsSpan(_headLength));
            _headLength += take;
            data = data[take..];
            if (_headLength < need) continue;
            var header = _head.AsSpan(FrameHeader.Size, need - FrameHeader.Size);
            Varint.TryRead(header, out _, out int used);
            Varint.TryRead(header[used..], out ulong count, out _);
            Volatile.Write(ref _messages, _messages + (long)count);
            _skip = payloadLength - (need - FrameHeader.Size);
            _headLength = 0;
        }
    }

    private void DecodeWholeFrame()
    {
        var reader = DeliverFrame.Read(new ReadOnlySequence<byte>(_frame, 0, _frameLength), out _, out ulong count, out _);
        Span<byte> stamp = stackalloc byte[8];
        while (reader.TryNext(out var e))
        {
            if (e.Payload.Length >= 8)
            {
                e.Payload.Slice(0, 8).CopyTo(stamp);
                latency!.RecordSince(BinaryPrimitives.ReadInt64LittleEndian(stamp));
            }
        }
        Volatile.Write(ref _messages, _messages + (long)count);
        _frameWanted = 0;
        _frameLength = 0;
    }
}
