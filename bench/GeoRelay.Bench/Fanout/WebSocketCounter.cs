using System.Buffers.Text;
using System.Net.WebSockets;
using GeoRelay.Bench.Harness;
using HdrHistogram;

namespace GeoRelay.Bench.Fanout;

/// <summary>
/// A web learner as a plain <see cref="ClientWebSocket"/> on a GeoRelay node's <c>/stream</c>: counts the entries of
/// each whole message without decoding it (one per message, or with <c>batch=1</c> the <c>{"index":</c> openings of
/// its array, which cannot occur inside a JSON string). With a latency histogram it also reads each entry's payload,
/// whose first <see cref="FanoutBenchmark.StampDigits"/> characters are the publisher's
/// <see cref="System.Diagnostics.Stopwatch"/> timestamp in decimal.
/// </summary>
internal sealed class WebSocketCounter(ClientWebSocket socket, bool batch, HistogramBase? latency = null)
{
    private static readonly byte[] PayloadField = "\"payload\":\""u8.ToArray();
    private static readonly byte[] EntryOpening = "{\"index\":"u8.ToArray();
    private readonly byte[] _buffer = new byte[(batch ? 512 : 64) << 10];
    private int _partial;
    private long _messages;
    private long _frames;

    public ClientWebSocket Socket => socket;
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>WebSocket messages received (with batching, fewer than entries).</summary>
    public long Frames => Volatile.Read(ref _frames);

    /// <summary>Opens <c>ws://endpoint/stream?from=N</c> without compression (the NATS side is uncompressed too).</summary>
    public static async Task<WebSocketCounter> ConnectAsync(System.Net.EndPoint endpoint, ulong from, bool batch, HistogramBase? latency = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await socket.ConnectAsync(new Uri($"ws://{endpoint}/stream?from={from}{(batch ? "&batch=1" : "")}"), CancellationToken.None);
        return new WebSocketCounter(socket, batch, latency);
    }

    /// <summary>Reads until <paramref name="expected"/> messages have arrived or the stream ends.</summary>
    public async Task RunAsync(long expected, CancellationToken ct)
    {
        while (Messages < expected)
        {
            // A message split across reads is gathered only when its content is wanted; counting one needs just its end.
            bool gather = batch || latency is not null;
            var memory = gather ? _buffer.AsMemory(_partial) : _buffer.AsMemory();
            var received = await socket.ReceiveAsync(memory, ct);
            if (received.MessageType == WebSocketMessageType.Close) return;
            if (gather) _partial += received.Count;
            if (!received.EndOfMessage) continue;
            var message = _buffer.AsSpan(0, _partial);
            _partial = 0;
            if (latency is not null) RecordLatency(message);
            Volatile.Write(ref _messages, _messages + (batch ? Entries(message) : 1));
            _frames++;
        }
    }

    private static int Entries(ReadOnlySpan<byte> json)
    {
        int count = 0;
        for (int at; (at = json.IndexOf(EntryOpening)) >= 0; json = json[(at + EntryOpening.Length)..]) count++;
        return count;
    }

    private void RecordLatency(ReadOnlySpan<byte> json)
    {
        for (int at; (at = json.IndexOf(PayloadField)) >= 0;)
        {
            json = json[(at + PayloadField.Length)..];
            FanoutBenchmark.RecordStamp(latency!, json);
        }
    }
}
