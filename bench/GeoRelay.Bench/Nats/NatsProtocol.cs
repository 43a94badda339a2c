using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace GeoRelay.Bench.Nats;

/// <summary>What the server sent: one protocol operation of the NATS client protocol.</summary>
public enum NatsOpKind
{
    Info,
    Msg,
    Ping,
    Pong,
    Ok,
    Err,
}

/// <summary>
/// One server operation. For <see cref="NatsOpKind.Msg"/>: <see cref="Subject"/>, <see cref="Sid"/>,
/// <see cref="ReplyTo"/> (empty when absent) and <see cref="Payload"/>; for INFO and -ERR the text after the
/// verb is in <see cref="Payload"/>. The sequences are slices of the receive buffer: valid only until the
/// caller advances past them.
/// </summary>
public readonly struct NatsServerOp
{
    public NatsOpKind Kind { get; init; }
    public ReadOnlySequence<byte> Subject { get; init; }
    public long Sid { get; init; }
    public ReadOnlySequence<byte> ReplyTo { get; init; }
    public ReadOnlySequence<byte> Payload { get; init; }
}

/// <summary>Bad bytes from a NATS server, with what was wrong.</summary>
public sealed class NatsProtocolException(string message) : Exception(message);

/// <summary>
/// Sans-IO reader and writer of the NATS client protocol
/// (https://docs.nats.io/reference/reference-protocols/nats-protocol): the caller owns the socket and
/// advances its pipe to where <see cref="TryRead"/> leaves the buffer.
/// </summary>
public static class NatsProtocol
{
    /// <summary>Longest control line accepted (nats-server's own default max_control_line is 4096).</summary>
    public const int MaxControlLine = 4096;

    /// <summary>
    /// Reads one operation from the front of <paramref name="buffer"/>. Returns false, leaving the buffer
    /// untouched, when the operation is not complete yet. Throws <see cref="NatsProtocolException"/> on an
    /// unknown verb, a malformed MSG line, a payload longer than <paramref name="maxPayload"/>, or a control
    /// line longer than <see cref="MaxControlLine"/>.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxPayload, out NatsServerOp op)
    {
        op = default;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, "\r\n"u8, advancePastDelimiter: true))
        {
            if (buffer.Length > MaxControlLine)
                throw new NatsProtocolException($"control line longer than {MaxControlLine} bytes without CRLF");
            return false;
        }
        if (line.Length > MaxControlLine)
            throw new NatsProtocolException($"control line of {line.Length} bytes exceeds {MaxControlLine}");

        Span<byte> text = stackalloc byte[(int)line.Length];
        line.CopyTo(text);
        int verbEnd = text.IndexOfAny((byte)' ', (byte)'\t');
        var verb = verbEnd < 0 ? text : text[..verbEnd];
        var rest = verbEnd < 0 ? ReadOnlySequence<byte>.Empty : line.Slice(verbEnd + 1);

        if (EqualsIgnoreCase(verb, "MSG"u8))
        {
            // MSG <subject> <sid> [reply-to] <#bytes>
            var args = text[(verbEnd + 1)..];
            Span<Range> parts = stackalloc Range[5];
            int count = SplitArguments(args, parts);
            if (count is not (3 or 4))
                throw new NatsProtocolException($"MSG line has {count} arguments, expected 3 or 4: '{Printable(text)}'");
            if (!Utf8Parser.TryParse(args[parts[1]], out long sid, out int sidUsed) || sidUsed != args[parts[1]].Length)
                throw new NatsProtocolException($"MSG sid is not a number: '{Printable(text)}'");
            var sizeText = args[parts[count - 1]];
            if (!Utf8Parser.TryParse(sizeText, out int size, out int sizeUsed) || sizeUsed != sizeText.Length || size < 0)
                throw new NatsProtocolException($"MSG size is not a non-negative number: '{Printable(text)}'");
            if (size > maxPayload)
                throw new NatsProtocolException($"MSG payload of {size} bytes exceeds max_payload {maxPayload}");
            if (reader.Remaining < size + 2)
                return false;
            var payload = reader.UnreadSequence.Slice(0, size);
            reader.Advance(size);
            if (!reader.IsNext("\r\n"u8, advancePast: true))
                throw new NatsProtocolException($"MSG payload of {size} bytes is not followed by CRLF");
            int argsStart = verbEnd + 1;
            op = new NatsServerOp
            {
                Kind = NatsOpKind.Msg,
                Subject = line.Slice(argsStart + parts[0].Start.Value, parts[0].End.Value - parts[0].Start.Value),
                Sid = sid,
                ReplyTo = count == 4
                    ? line.Slice(argsStart + parts[2].Start.Value, parts[2].End.Value - parts[2].Start.Value)
                    : ReadOnlySequence<byte>.Empty,
                Payload = payload,
            };
        }
        else if (EqualsIgnoreCase(verb, "PING"u8)) op = new NatsServerOp { Kind = NatsOpKind.Ping };
        else if (EqualsIgnoreCase(verb, "PONG"u8)) op = new NatsServerOp { Kind = NatsOpKind.Pong };
        else if (EqualsIgnoreCase(verb, "+OK"u8)) op = new NatsServerOp { Kind = NatsOpKind.Ok };
        else if (EqualsIgnoreCase(verb, "-ERR"u8)) op = new NatsServerOp { Kind = NatsOpKind.Err, Payload = rest };
        else if (EqualsIgnoreCase(verb, "INFO"u8)) op = new NatsServerOp { Kind = NatsOpKind.Info, Payload = rest };
        else throw new NatsProtocolException($"unknown NATS operation '{Printable(verb)}'");

        buffer = buffer.Slice(reader.Position);
        return true;
    }

    /// <summary>CONNECT with verbose and pedantic off: the server answers nothing but errors.</summary>
    public static void WriteConnect(IBufferWriter<byte> writer, string name) =>
        WriteAscii(writer, $"CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\",\"lang\":\"csharp-georelay-bench\",\"version\":\"0.1\",\"protocol\":1}}\r\n");

    public static void WritePing(IBufferWriter<byte> writer) => writer.Write("PING\r\n"u8);

    public static void WritePong(IBufferWriter<byte> writer) => writer.Write("PONG\r\n"u8);

    /// <summary>SUB &lt;subject&gt; [queue group] &lt;sid&gt;.</summary>
    public static void WriteSub(IBufferWriter<byte> writer, string subject, string? queueGroup, long sid) =>
        WriteAscii(writer, queueGroup is null ? $"SUB {subject} {sid}\r\n" : $"SUB {subject} {queueGroup} {sid}\r\n");

    /// <summary>PUB &lt;subject&gt; &lt;#bytes&gt;, the payload and CRLF; the subject is given already encoded so a hot loop need not re-encode it.</summary>
    public static void WritePub(IBufferWriter<byte> writer, ReadOnlySpan<byte> subject, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(subject.Length + payload.Length + 24);
        "PUB "u8.CopyTo(span);
        int n = 4;
        subject.CopyTo(span[n..]);
        n += subject.Length;
        span[n++] = (byte)' ';
        Utf8Formatter.TryFormat(payload.Length, span[n..], out int written);
        n += written;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        payload.CopyTo(span[n..]);
        n += payload.Length;
        span[n++] = (byte)'\r';
        span[n++] = (byte)'\n';
        writer.Advance(n);
    }

    private static int SplitArguments(ReadOnlySpan<byte> args, Span<Range> parts)
    {
        int count = 0, i = 0;
        while (i < args.Length)
        {
            while (i < args.Length && args[i] is (byte)' ' or (byte)'\t') i++;
            if (i == args.Length) break;
            int start = i;
            while (i < args.Length && args[i] is not ((byte)' ' or (byte)'\t')) i++;
            if (count == parts.Length) return count + 1;
            parts[count++] = new Range(start, i);
        }
        return count;
    }

    private static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> upper)
    {
        if (a.Length != upper.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            byte c = a[i] is >= (byte)'a' and <= (byte)'z' ? (byte)(a[i] - 32) : a[i];
            if (c != upper[i]) return false;
        }
        return true;
    }

    private static string Printable(ReadOnlySpan<byte> text) =>
        Encoding.ASCII.GetString(text.Length > 80 ? text[..80] : text);

    private static void WriteAscii(IBufferWriter<byte> writer, string text)
    {
        var span = writer.GetSpan(text.Length);
        int n = Encoding.ASCII.GetBytes(text, span);
        writer.Advance(n);
    }
}
