using System.Buffers.Text;
using System.Net.WebSockets;
using GeoRelay.Bench.Harness;
using HdrHistogram;

namespace GeoRelay.Bench.Fanout;

/// <summary>
/// A web learner as a plain <see cref="ClientWebSocket"/> on a GeoRelay node's <c>/stream</c>: counts whole messages
/// (one per entry) without decoding them. With a latency histogram it also reads each message's payload, whose first
/// <see cref="FanoutBenchmark.StampDigits"/> characters are the publisher's <see cref="System.Diagnostics.Stopwatch"/>
/// timestamp in decimal.
/// </summary>
internal sealed class WebSocketCounter(ClientWebSocket socket, HistogramBase? latency = null)
{
    private static readonly byte[] PayloadField = "\"payload\":\""u8.ToArray();
    private readonly byte[] _buffer = new byte[64 << 10];
    private int _partial;
    private long _messages;

    public ClientWebSocket Socket => socket;
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>Opens <c>ws://endpoint/stream?from=N</c> without compression (the NATS side is uncompressed too).</summary>
    public static async Task<WebSocketCounter> ConnectAsync(System.Net.EndPoint endpoint, ulong from, HistogramBase? latency = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await socket.ConnectAsync(new Uri($"ws://{endpoint}/stream?from={from}"), CancellationToken.None);
        return new WebSocketCounter(socket, latency);
    }

    /// <summary>Reads until <paramref name="expected"/> messages have arrived or the stream ends.</summary>
    public async Task RunAsync(long expected, CancellationToken ct)
    {
        while (Messages < expected)
        {
            // A message split across reads is gathered only when its payload is wanted; counting needs just its end.
            var memory = latency is null ? _buffer.AsMemory() : _buffer.AsMemory(_partial);
            var received = await socket.ReceiveAsync(memory, ct);
            if (received.MessageType == WebSocketMessageType.Close) return;
            if (latency is not null) _partial += received.Count;
            if (!received.EndOfMessage) continue;
            if (latency is not null)
            {
                RecordLatency(_buffer.AsSpan(0, _partial));
                _partial = 0;
            }
            Volatile.Write(ref _messages, _messages + 1);
        }
    }

    private void RecordLatency(ReadOnlySpan<byte> json)
    {
        int at = json.IndexOf(PayloadField);
        if (at < 0) return;
        var digits = json[(at + PayloadField.Length)..];
        if (digits.Length >= FanoutBenchmark.StampDigits && Utf8Parser.TryParse(digits[..FanoutBenchmark.StampDigits], out long stamp, out _))
            latency!.RecordSince(stamp);
    }
}
