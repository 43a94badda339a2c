using System.Buffers;
using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.TestUtilities;

/// <summary>
/// A learner that handshakes, subscribes and then reads nothing (a small socket receive buffer, so the relay's
/// queue fills soon), until the test lets it read again. Compiled into the simulation and integration tests.
/// </summary>
public static class StalledLearner
{
    public static async Task<FramedConnection> ConnectAsync(EndPoint relay, string nodeId, ulong from, TimeSpan patience, CancellationToken ct)
    {
        var socket = new Socket(relay.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 16 << 10 };
        await socket.ConnectAsync(relay, ct);
        var connection = new FramedConnection(socket, ConnectionOptions.Default);
        connection.StartWriting();
        await Handshake.DialAsync(connection, Hello.ForThisBuild(nodeId, NodeKind.Learner, 0, "", 0), patience, ct);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        new Subscribe(from, ReadOnlyMemory<byte>.Empty, SubscribeFlags.None).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Subscribe);
        connection.TrySend(frame);
        return connection;
    }

    /// <summary>
    /// Reads Deliver frames (skipping heartbeats), each of which must follow on from <paramref name="next"/>, until an Error frame (its code)
    /// or the end of the connection (null); returns that and the next index the learner would resume from.
    /// </summary>
    public static async Task<(CodecError? Error, ulong Next)> DrainAsync(FramedConnection connection, ulong next, CancellationToken ct)
    {
        while (true)
        {
            FrameType type;
            byte[] payload;
            try
            {
                (type, payload) = await connection.ReadOneFrameAsync(ct);
            }
            catch (Exception e) when (e is CodecException { Reason: CodecError.Truncated } or IOException or SocketException)
            {
                return (null, next);
            }
            if (type == FrameType.Error) return (ErrorFrame.Read(new ReadOnlySequence<byte>(payload)).Code, next);
            // Nodes heartbeat a learner they have sent nothing for a second; a stalled one is often such.
            if (type == FrameType.Heartbeat) continue;
            if (type != FrameType.Deliver) throw new InvalidOperationException($"a learner gets Deliver frames, then an error; got {type}");
            DeliverFrame.Read(new ReadOnlySequence<byte>(payload), out ulong first, out _, out ulong through);
            if (first != next) throw new InvalidOperationException($"the stalled learner's stream has a gap: expected {next}, got {first}");
            next = through + 1;
        }
    }
}
