using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace GeoRelay.Server.Web;

/// <summary>
/// What a <c>GET /stream</c> asks for: where to start, which keys, and the token to subscribe with. Parsed from the query
/// (<c>from</c>, <c>prefix</c>, <c>token</c>) and the headers (<c>Last-Event-ID</c>, <c>Authorization</c>, <c>Accept</c>).
/// </summary>
public sealed record WebStreamRequest(ulong From, string? Prefix, string? Token, bool ServerSentEvents)
{
    /// <summary>
    /// <c>batch=1</c>: over WebSocket, a message may carry several entries, as a JSON array of entry objects in order
    /// (what arrived together goes together); without it each message is one entry object. SSE events are one entry each
    /// either way, since each carries its index as its id.
    /// </summary>
    public bool Batch { get; init; }

    /// <summary>The longest key prefix, in UTF-8 bytes: the learner SDK's limit.</summary>
    public const int MaxPrefixBytes = 1024;

    /// <summary>The longest token, in UTF-8 bytes: what the learner handshake carries.</summary>
    public const int MaxTokenBytes = Codec.Frames.Hello.MaxAuthLength;

    /// <summary>
    /// Reads the request; on failure <paramref name="status"/> is 400 (or 401 for a malformed <c>Authorization</c>
    /// header) and <paramref name="error"/> says what is wrong and how to write it.
    /// </summary>
    public static bool TryParse(IQueryCollection query, IHeaderDictionary headers, out WebStreamRequest? request, out int status, out string? error)
    {
        request = null;
        status = 400;
        ulong from;
        // A browser's EventSource reconnects to the same URL with Last-Event-ID: it must win over the URL's `from`.
        if (Single(headers["Last-Event-ID"], "the Last-Event-ID header", out string? lastEventId, out error) is false) return false;
        if (lastEventId is not null)
        {
            if (!TryIndex(lastEventId, out ulong last) || last == ulong.MaxValue)
            {
                error = $"the Last-Event-ID header must be the index of the last event received (a whole number), not '{Shorten(lastEventId)}'";
                return false;
            }
            from = last + 1;
        }
        else
        {
            if (Single(query["from"], "from", out string? fromText, out error) is false) return false;
            if (fromText is null)
            {
                error = "from is required: GET /stream?from=N subscribes from index N (1 is the start of the log)";
                return false;
            }
            if (!TryIndex(fromText, out from) || from == 0)
            {
                error = $"from must be a log index, a whole number from 1, not '{Shorten(fromText)}'";
                return false;
            }
        }

        if (Single(query["prefix"], "prefix", out string? prefix, out error) is false) return false;
        if (prefix is { Length: 0 }) prefix = null;
        if (prefix is not null && Encoding.UTF8.GetByteCount(prefix) > MaxPrefixBytes)
        {
            error = $"prefix must be at most {MaxPrefixBytes} bytes in UTF-8";
            return false;
        }

        if (Single(query["batch"], "batch", out string? batchText, out error) is false) return false;
        bool batch = false;
        if (batchText is not null && !TryFlag(batchText, out batch))
        {
            error = $"batch must be 1 (several entries per WebSocket message, as a JSON array) or 0, not '{Shorten(batchText)}'";
            return false;
        }

        if (!TryToken(query, headers, out string? token, out status, out error)) return false;
        request = new WebStreamRequest(from, prefix, token, AcceptsEventStream(headers.Accept)) { Batch = batch };
        status = 200;
        return true;
    }

    /// <summary><c>Authorization: Bearer T</c>, else <c>?token=T</c> (a browser's EventSource cannot set headers).</summary>
    private static bool TryToken(IQueryCollection query, IHeaderDictionary headers, out string? token, out int status, out string? error)
    {
        token = null;
        status = 400;
        if (Single(headers.Authorization, "the Authorization header", out string? authorization, out error) is false) return false;
        if (authorization is not null)
        {
            var text = authorization.Trim();
            if (!text.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                status = 401;
                error = "the Authorization header must read `Bearer <token>`";
                return false;
            }
            token = text["Bearer ".Length..].Trim();
        }
        else
        {
            if (Single(query["token"], "token", out token, out error) is false) return false;
        }
        if (token is { Length: 0 }) token = null;
        if (token is not null && Encoding.UTF8.GetByteCount(token) > MaxTokenBytes)
        {
            error = $"the token is longer than {MaxTokenBytes} bytes; mint one with `georelay token`";
            return false;
        }
        return true;
    }

    private static bool Single(Microsoft.Extensions.Primitives.StringValues values, string name, out string? value, out string? error)
    {
        value = null;
        error = null;
        if (values.Count > 1)
        {
            error = $"{name} is given {values.Count} times; give it once";
            return false;
        }
        value = values.Count == 1 ? values[0] : null;
        return true;
    }

    private static bool TryFlag(string text, out bool flag)
    {
        flag = text is "1" or "true";
        return text is "0" or "1" or "true" or "false";
    }

    private static bool TryIndex(string text, out ulong index) =>
        ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out index);

    private static bool AcceptsEventStream(Microsoft.Extensions.Primitives.StringValues accept)
    {
        foreach (var value in accept)
            if (value is not null && value.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    // An error message quotes what it refuses, but not a megabyte of it.
    private static string Shorten(string text) => text.Length > 40 ? text[..40] + "…" : text;
}
