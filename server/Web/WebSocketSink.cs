using System.Net.WebSockets;
using System.Text;

namespace GeoRelay.Server.Web;

/// <summary>
/// A WebSocket: one text message per entry. Clients send nothing: a read loop answers the closing handshake and treats
/// any message as a protocol error, reading into a fixed buffer so a client's claimed length allocates nothing.
/// </summary>
internal sealed class WebSocketSink : WebStreamSink, IDisposable
{
    /// <summary>RFC 6455: a close frame's reason is at most 123 bytes of UTF-8.</summary>
    private const int MaxCloseReasonBytes = 123;

    private readonly WebSocket _socket;
    private readonly CancellationTokenSource _gone;
    private readonly Task _reading;

    public WebSocketSink(WebSocket socket, CancellationToken requestAborted)
    {
        _socket = socket;
        _gone = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        _reading = ReadAsync();
    }

    public override CancellationToken ClientGone => _gone.Token;

    public override ValueTask SendAsync(ulong index, ReadOnlyMemory<byte> json, CancellationToken ct) =>
        _socket.SendAsync(json, WebSocketMessageType.Text, endOfMessage: true, ct);

    public override async Task CloseAsync(WebCloseReason reason, ReadOnlyMemory<byte> json)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _socket.CloseOutputAsync((WebSocketCloseStatus)reason.WebSocketCode, Truncate(reason.Message), bounded.Token).ConfigureAwait(false);
            // The read loop sees the client's close frame (or gives up with the request).
            await _reading.WaitAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or TimeoutException)
        {
            // A client that takes nothing cannot be told; Kestrel closes the connection when the request ends.
        }
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[256];
        try
        {
            while (true)
            {
                var received = await _socket.ReceiveAsync(buffer, _gone.Token).ConfigureAwait(false);
                if (received.MessageType == WebSocketMessageType.Close) break;
                Violation = WebCloseReason.ClientSentData();
                break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
        }
        finally
        {
            _gone.Cancel();
        }
    }

    internal static string Truncate(string reason)
    {
        if (Encoding.UTF8.GetByteCount(reason) <= MaxCloseReasonBytes) return reason;
        int length = reason.Length;
        while (length > 0 && Encoding.UTF8.GetByteCount(reason.AsSpan(0, length)) > MaxCloseReasonBytes - 3) length--;
        if (length > 0 && char.IsHighSurrogate(reason[length - 1])) length--;
        return reason[..length] + "…";
    }

    public void Dispose() => _gone.Dispose();
}
