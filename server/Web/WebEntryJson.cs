using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace GeoRelay.Server.Web;

/// <summary>
/// The JSON of one entry as web clients get it: <c>{"index":N,"key":"…","payload":"…"}</c>. A key or payload that is not
/// valid UTF-8 goes as <c>key_base64</c> or <c>payload_base64</c> instead, so any byte string arrives intact. A tombstone
/// adds <c>"tombstone":true</c>.
/// </summary>
public static class WebEntryJson
{
    // Relaxed: the messages are never embedded in HTML, so non-ASCII text goes as itself instead of \uXXXX (a third the size).
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    /// <summary>A writer for <see cref="Write"/>; one per client, reset onto the buffer of each message.</summary>
    public static Utf8JsonWriter CreateWriter(IBufferWriter<byte> output) => new(output, Options);

    /// <summary>Writes one entry as a single-line JSON object (no raw line breaks, so it fits an SSE <c>data:</c> line).</summary>
    public static void Write(Utf8JsonWriter json, ulong index, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload, bool tombstone = false)
    {
        json.WriteStartObject();
        json.WriteNumber("index"u8, index);
        Bytes(json, "key"u8, "key_base64"u8, key);
        Bytes(json, "payload"u8, "payload_base64"u8, payload);
        if (tombstone) json.WriteBoolean("tombstone"u8, true);
        json.WriteEndObject();
        json.Flush();
    }

    /// <summary><c>{"error":"code","message":"…"}</c>: an HTTP error body, or an SSE <c>error</c> event's data.</summary>
    public static void WriteError(Utf8JsonWriter json, string code, string message)
    {
        json.WriteStartObject();
        json.WriteString("error"u8, code);
        json.WriteString("message"u8, message);
        json.WriteEndObject();
        json.Flush();
    }

    private static void Bytes(Utf8JsonWriter json, ReadOnlySpan<byte> textName, ReadOnlySpan<byte> base64Name, ReadOnlySpan<byte> value)
    {
        if (Utf8.IsValid(value)) json.WriteString(textName, value);
        else json.WriteBase64String(base64Name, value);
    }
}
