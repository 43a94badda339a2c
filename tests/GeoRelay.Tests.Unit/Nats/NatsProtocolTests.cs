using System.Buffers;
using System.Text;
using GeoRelay.Bench.Nats;
using GeoRelay.Tests.Unit.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Nats;

public sealed class NatsProtocolTests
{
    private const int MaxPayload = 1 << 20;

    // A server stream as nats-server writes it: INFO, a MSG without and one with a reply subject (the payload
    // holds CRLF and spaces, which must not end it), PING, a zero-length MSG, -ERR.
    private static readonly byte[] Stream = Encoding.ASCII.GetBytes(
        "INFO {\"server_id\":\"X\",\"max_payload\":1048576}\r\n" +
        "MSG bench.entries 7 10\r\nhello\r\nw d\r\n" +
        "msg a.b.c 12 _INBOX.x 3\r\nabc\r\n" +
        "PING\r\n" +
        "MSG e  1   0\r\n\r\n" +
        "PONG\r\n+OK\r\n" +
        "-ERR 'Slow Consumer'\r\n");

    private static List<string> ReadAll(ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> left)
    {
        var ops = new List<string>();
        while (NatsProtocol.TryRead(ref buffer, MaxPayload, out var op))
        {
            ops.Add(op.Kind switch
            {
                NatsOpKind.Msg => $"MSG {Encoding.ASCII.GetString(op.Subject)} {op.Sid} [{Encoding.ASCII.GetString(op.ReplyTo)}] <{Encoding.ASCII.GetString(op.Payload)}>",
                NatsOpKind.Info or NatsOpKind.Err => $"{op.Kind} {Encoding.ASCII.GetString(op.Payload)}",
                _ => op.Kind.ToString(),
            });
        }
        left = buffer;
        return ops;
    }

    private static readonly string[] Expected =
    [
        "Info {\"server_id\":\"X\",\"max_payload\":1048576}",
        "MSG bench.entries 7 [] <hello\r\nw d>",
        "MSG a.b.c 12 [_INBOX.x] <abc>",
        "Ping",
        "MSG e 1 [] <>",
        "Pong",
        "Ok",
        "Err 'Slow Consumer'",
    ];

    [Test]
    public void ReadsEveryOperationOfAStream()
    {
        var ops = ReadAll(new ReadOnlySequence<byte>(Stream), out var left);
        Assert.That(ops, Is.EqualTo(Expected));
        Assert.That(left.Length, Is.Zero);
    }

    [Test]
    public void ReadsTheSameWhenSplitAtEveryOffset()
    {
        for (int cut = 1; cut < Stream.Length; cut++)
        {
            var ops = ReadAll(Fragment.Split(Stream, cut), out var left);
            Assert.That(ops, Is.EqualTo(Expected), $"split at {cut}");
            Assert.That(left.Length, Is.Zero, $"split at {cut}");
        }
    }

    [Test]
    public void EveryPrefixYieldsOnlyCompleteOperationsAndKeepsTheRest()
    {
        for (int length = 0; length < Stream.Length; length++)
        {
            var ops = ReadAll(new ReadOnlySequence<byte>(Stream, 0, length), out var left);
            Assert.That(ops, Is.EqualTo(Expected[..ops.Count]), $"prefix {length}");
            Assert.That(ops.Count, Is.LessThan(Expected.Length), $"prefix {length}");
            // What is left starts at the first unread operation: appending the rest completes the stream.
            var rest = left.ToArray().Concat(Stream[length..]).ToArray();
            Assert.That(ReadAll(new ReadOnlySequence<byte>(rest), out _), Is.EqualTo(Expected[ops.Count..]), $"prefix {length}");
        }
    }

    [TestCase("MSG subject 1\r\n", "3 or 4")]
    [TestCase("MSG subject 1 2 3 4\r\n", "3 or 4")]
    [TestCase("MSG subject x 3\r\nabc\r\n", "sid")]
    [TestCase("MSG subject 1 -3\r\n", "size")]
    [TestCase("MSG subject 1 3\r\nabcd\r\n", "not followed by CRLF")]
    [TestCase("HMSG subject 1 3 3\r\n", "unknown NATS operation 'HMSG'")]
    [TestCase("MSG subject 1 1048577\r\n", "exceeds max_payload")]
    public void RejectsMalformedInputSayingWhatIsWrong(string input, string reason)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(input));
        var error = Assert.Throws<NatsProtocolException>(() => NatsProtocol.TryRead(ref buffer, MaxPayload, out _));
        Assert.That(error!.Message, Does.Contain(reason));
    }

    [Test]
    public void RejectsAControlLineLongerThanTheLimitBeforeItsEnd()
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes("MSG " + new string('a', NatsProtocol.MaxControlLine)));
        Assert.Throws<NatsProtocolException>(() => NatsProtocol.TryRead(ref buffer, MaxPayload, out _));
    }

    [Test]
    public void PubIsWhatTheServerExpects()
    {
        var writer = new ArrayBufferWriter<byte>();
        NatsProtocol.WritePub(writer, "a.b"u8, "x y\r\n"u8);
        NatsProtocol.WriteSub(writer, "a.>", null, 5);
        NatsProtocol.WriteSub(writer, "a.>", "q", 6);
        Assert.That(Encoding.ASCII.GetString(writer.WrittenSpan), Is.EqualTo("PUB a.b 5\r\nx y\r\n\r\nSUB a.> 5\r\nSUB a.> q 6\r\n"));
    }
}
