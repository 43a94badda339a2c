using System.Net;
using System.Threading.Channels;
using NATS.Client.Core;

namespace GeoRelay.Bench.Nats;

/// <summary>How the benchmarks connect to nats-server: the official client (NATS.Net), one connection per subscriber or publisher.</summary>
public static class BenchNats
{
    /// <summary>The client's defaults, except that a full subscription channel waits instead of dropping.</summary>
    public static NatsOpts Options(IPEndPoint server, string name) => Options($"nats://{server}", name);

    /// <summary>As above for any URL the client takes: <c>nats://</c>, or <c>ws://</c> for nats-server's WebSocket listener.</summary>
    public static NatsOpts Options(string url, string name) => NatsOpts.Default with
    {
        Url = url,
        Name = name,
        // The default (DropNewest) loses messages in the client; a benchmark counts every delivery, so a full
        // channel holds the connection's read loop instead, and through TCP the server, which may then cut it.
        SubPendingChannelFullMode = BoundedChannelFullMode.Wait,
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    public static Task<NatsConnection> ConnectAsync(IPEndPoint server, string name) => ConnectAsync($"nats://{server}", name);

    public static async Task<NatsConnection> ConnectAsync(string url, string name)
    {
        var connection = new NatsConnection(Options(url, name));
        try
        {
            await connection.ConnectAsync();
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>One PUB of raw bytes; it returns once they are in the connection's write buffer (the payload may be reused).</summary>
    public static ValueTask PublishRawAsync(this NatsConnection connection, string subject, byte[] payload) =>
        connection.PublishAsync(subject, payload, serializer: NatsRawSerializer<byte[]>.Default);
}
