using System.Net;
using System.Threading.Channels;
using NATS.Client.Core;

namespace GeoRelay.Bench.Nats;

/// <summary>Called for every message of a subscription, in order; the payload is valid only during the call.</summary>
public delegate void NatsPayloadHandler(ReadOnlySpan<byte> payload);

/// <summary>
/// A benchmark subscriber through NATS.Net: its own connection (as each GeoRelay learner has its own socket),
/// one core subscription with pooled raw payloads (<see cref="NatsMemoryOwner{T}"/>, no allocation per
/// message), and a loop that drains its bounded channel, hands each payload to the handler and counts it.
/// <code>
/// await using var s = await NatsSubscriber.StartAsync(server.ClientEndPoint, "bench.entries", "sub-1", p => ...);
/// await s.PingAsync();    // the server has the SUB once PONG is back
/// </code>
/// </summary>
public sealed class NatsSubscriber : IAsyncDisposable
{
    private readonly NatsConnection _connection;
    private readonly INatsSub<NatsMemoryOwner<byte>> _subscription;
    private readonly Task _consuming;
    private readonly NatsPayloadHandler? _handler;
    private long _received;
    private volatile bool _disconnected;

    private NatsSubscriber(NatsConnection connection, INatsSub<NatsMemoryOwner<byte>> subscription, NatsPayloadHandler? handler)
    {
        _connection = connection;
        _subscription = subscription;
        _handler = handler;
        // The client reconnects and resubscribes on its own; what the server sent in between is gone, so a
        // benchmark counts the subscriber as cut from the first disconnect.
        connection.ConnectionDisconnected += (_, _) =>
        {
            _disconnected = true;
            return ValueTask.CompletedTask;
        };
        _consuming = Task.Run(() => ConsumeAsync(subscription.Msgs));
    }

    /// <summary>Messages handed to the handler so far.</summary>
    public long Received => Volatile.Read(ref _received);

    /// <summary>Whether the connection dropped (e.g. the server cut it as a slow consumer).</summary>
    public bool Disconnected => _disconnected;

    public static Task<NatsSubscriber> StartAsync(IPEndPoint server, string subject, string name, NatsPayloadHandler? handler = null) =>
        StartAsync($"nats://{server}", subject, name, handler);

    /// <summary>As above at any URL the client takes (<c>ws://</c> for nats-server's WebSocket listener).</summary>
    public static async Task<NatsSubscriber> StartAsync(string url, string subject, string name, NatsPayloadHandler? handler = null)
    {
        var connection = await BenchNats.ConnectAsync(url, name);
        try
        {
            var subscription = await connection.SubscribeCoreAsync(subject, serializer: NatsRawSerializer<NatsMemoryOwner<byte>>.Default);
            return new NatsSubscriber(connection, subscription, handler);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>PING and wait for PONG: once it returns, the server has processed the SUB.</summary>
    public async Task PingAsync() => await _connection.PingAsync();

    private async Task ConsumeAsync(ChannelReader<NatsMsg<NatsMemoryOwner<byte>>> messages)
    {
        while (await messages.WaitToReadAsync().ConfigureAwait(false))
        {
            while (messages.TryRead(out var message))
            {
                using var payload = message.Data;
                _handler?.Invoke(payload.Span);
                Volatile.Write(ref _received, _received + 1);
            }
        }
    }

    /// <summary>Unsubscribes, waits for the loop to finish the messages already queued, and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _subscription.DisposeAsync();
        await _consuming;
        await _connection.DisposeAsync();
    }
}
