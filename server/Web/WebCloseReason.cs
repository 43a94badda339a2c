namespace GeoRelay.Server.Web;

/// <summary>
/// Why the web endpoint ends a stream: a WebSocket close code (RFC 6455; 4000-4999 are ours), a short code that SSE
/// clients get as <c>error</c> in the <c>close</c> event, and a sentence for people. <see cref="Resumable"/> tells a
/// client whether reconnecting at its last index + 1 can succeed.
/// </summary>
public readonly record struct WebCloseReason(int WebSocketCode, string Code, string Message, bool Resumable)
{
    public static WebCloseReason Stopping(string node) =>
        new(1001, "stopping", $"{node} is stopping; reconnect (to it or another node) from the last index received + 1", true);

    public static WebCloseReason SlowConsumer(string why) =>
        new(4429, "slow-consumer", $"slow consumer: {why}; reconnect from the last index received + 1", true);

    public static WebCloseReason UpstreamLost(string node, Codec.CodecError? code, string? message) =>
        new(1013, "upstream-lost", $"{node} closed this client's subscription ({(code is { } c ? c + ": " : "")}{message}); reconnect from the last index received + 1", true);

    public static WebCloseReason ClientSentData() =>
        new(1008, "client-sent-data", "this endpoint only sends: a client sends nothing but WebSocket control frames", false);

    public static WebCloseReason Refused(int status, string code, string message) =>
        new(status == 403 ? 4403 : 4401, code, message, false);

    public static WebCloseReason SnapshotRequired(ulong from, ulong oldest) =>
        new(4410, "snapshot-required", $"index {from} is no longer retained; the oldest available is {oldest}", false);

    public static WebCloseReason Truncated(ulong after, ulong last) =>
        new(4409, "truncated", $"entries {after + 1}..{last} were taken back by a leader change (delivery: durable); undo them and resume from {after + 1}", false);

    public static WebCloseReason Failed(string message) => new(1011, "internal-error", message, true);
}
