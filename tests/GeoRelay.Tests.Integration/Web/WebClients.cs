using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace GeoRelay.Tests.Integration.Web;

/// <summary>One message of the web endpoint: the entry's JSON, and the SSE event's id and name where it came over SSE.</summary>
public sealed record WebMessage(string? Event, string? Id, JsonElement Json)
{
    public ulong Index => Json.GetProperty("index").GetUInt64();
    public string? Key => Json.TryGetProperty("key", out var k) ? k.GetString() : null;
    public string? Payload => Json.TryGetProperty("payload", out var p) ? p.GetString() : null;
}

/// <summary>A Server-Sent Events stream read event by event, as `curl -N` or a browser's EventSource would.</summary>
public sealed class SseStream : IDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;

    private SseStream(HttpResponseMessage response, StreamReader reader)
    {
        _response = response;
        _reader = reader;
    }

    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, string url, string? lastEventId = null, string? bearer = null, CancellationToken ct = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    /// <summary>Opens the stream; fails the test with the body when the answer is not 200.</summary>
    public static async Task<SseStream> OpenAsync(HttpClient http, string url, string? lastEventId = null, string? bearer = null, CancellationToken ct = default)
    {
        var response = await SendAsync(http, url, lastEventId, bearer, ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{url} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            throw new InvalidOperationException($"{url} answered {response.Content.Headers.ContentType}, not text/event-stream");
        return new SseStream(response, new StreamReader(await response.Content.ReadAsStreamAsync(ct), Encoding.UTF8));
    }

    /// <summary>The next event (comments skipped); null when the stream ends.</summary>
    public async Task<WebMessage?> NextAsync(CancellationToken ct)
    {
        string? name = null, id = null;
        var data = new StringBuilder();
        while (await _reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0)
            {
                if (data.Length == 0) continue;
                return new WebMessage(name, id, JsonDocument.Parse(data.ToString()).RootElement.Clone());
            }
            if (line.StartsWith(':')) continue;
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("id: ", StringComparison.Ordinal)) id = line[4..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Append(line[6..]);
        }
        return null;
    }

    public async Task<List<WebMessage>> TakeAsync(int count, CancellationToken ct)
    {
        var taken = new List<WebMessage>(count);
        while (taken.Count < count)
        {
            var message = await NextAsync(ct) ?? throw new EndOfStreamException($"the stream ended after {taken.Count} of {count} events");
            if (message.Event is not null) throw new InvalidOperationException($"event '{message.Event}' after {taken.Count} of {count}: {message.Json}");
            taken.Add(message);
        }
        return taken;
    }

    public void Dispose()
    {
        _reader.Dispose();
        _response.Dispose();
    }
}

/// <summary>A WebSocket stream of the web endpoint.</summary>
public sealed class WebSocketStream : IDisposable
{
    public ClientWebSocket Socket { get; } = new() { Options = { CollectHttpResponseDetails = true } };

    /// <param name="deflate">Offer permessage-deflate, as browsers do.</param>
    public static async Task<WebSocketStream> OpenAsync(string url, CancellationToken ct, bool deflate = false)
    {
        var stream = new WebSocketStream();
        if (deflate) stream.Socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        await stream.Socket.ConnectAsync(new Uri(url), ct);
        return stream;
    }

    /// <summary>The next message; null when the server closed (see <see cref="ClientWebSocket.CloseStatus"/>).</summary>
    public async Task<WebMessage?> NextAsync(CancellationToken ct) =>
        await NextJsonAsync(ct) is { } json ? new WebMessage(null, null, json) : null;

    /// <summary>The next message's JSON as it came (an array with <c>batch=1</c>); null when the server closed.</summary>
    public async Task<JsonElement?> NextJsonAsync(CancellationToken ct)
    {
        var buffer = new byte[64 << 10];
        using var message = new MemoryStream();
        while (true)
        {
            var received = await Socket.ReceiveAsync(buffer, ct);
            if (received.MessageType == WebSocketMessageType.Close) return null;
            message.Write(buffer, 0, received.Count);
            if (received.EndOfMessage) return JsonDocument.Parse(message.ToArray()).RootElement.Clone();
        }
    }

    public async Task<List<WebMessage>> TakeAsync(int count, CancellationToken ct)
    {
        var taken = new List<WebMessage>(count);
        while (taken.Count < count)
            taken.Add(await NextAsync(ct) ?? throw new EndOfStreamException($"closed after {taken.Count} of {count}: {Socket.CloseStatus} {Socket.CloseStatusDescription}"));
        return taken;
    }

    /// <summary>The extensions the server agreed to in its handshake answer (empty when none).</summary>
    public string Extensions =>
        Socket.HttpResponseHeaders is { } headers && headers.TryGetValue("Sec-WebSocket-Extensions", out var values) ? string.Join(", ", values) : "";

    public void Dispose() => Socket.Dispose();
}

/// <summary>What the web tests publish through: the leader's publish port, committed before it returns.</summary>
public static class WebClusterPublisher
{
    public static async Task PublishAsync(ClusterFixture cluster, IEnumerable<(byte[] Key, byte[] Payload)> entries, string? token = null, string? caFile = null)
    {
        await using var publisher = await GeoRelay.LearnerClient.PublisherClient.ConnectAsync(GeoRelay.LearnerClient.PublisherClientOptions.Default with
        {
            Endpoints = [cluster.Topology.Leader.Publish!.Value.ToString()],
            AuthToken = token,
            TlsCaFile = caFile,
        });
        var batch = entries.Select(e => new GeoRelay.LearnerClient.PublishEntry(e.Key, e.Payload)).ToList();
        await publisher.PublishAsync(batch, GeoRelay.Codec.Frames.WaitLevel.Committed);
    }
}
