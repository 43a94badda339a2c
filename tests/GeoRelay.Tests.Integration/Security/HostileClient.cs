using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>A misbehaving client: raw bytes over TCP or TLS, then waits for the daemon to hang up and reports why.</summary>
internal sealed class HostileClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private Stream _stream;

    private HostileClient(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
    }

    public static async Task<HostileClient> ConnectAsync(EndPoint endPoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        return new HostileClient(socket, new NetworkStream(socket, ownsSocket: false));
    }

    /// <summary>TLS with the CA for the server's certificate and, optionally, a client certificate. Throws when the server refuses.</summary>
    public static async Task<HostileClient> ConnectTlsAsync(EndPoint endPoint, X509Certificate2 ca, X509Certificate2? clientCertificate = null)
    {
        var client = await ConnectAsync(endPoint);
        var tls = new SslStream(client._stream, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
            RemoteCertificateValidationCallback = (_, cert, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return cert is not null && chain.Build(new X509Certificate2(cert));
            },
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await tls.AuthenticateAsClientAsync(options, timeout.Token);
        client._stream = tls;
        return client;
    }

    /// <summary>The daemon accepted the handshake (sent Welcome) at some point.</summary>
    public bool Welcomed { get; private set; }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public static byte[] Frame(FrameType type, Action<IBufferWriter<byte>> payload)
    {
        var body = new ArrayBufferWriter<byte>();
        payload(body);
        var frame = new ArrayBufferWriter<byte>();
        FrameWriter.Write(frame, type, FrameFlags.None, body.WrittenSpan);
        return frame.WrittenSpan.ToArray();
    }

    public static byte[] HelloFrame(Hello hello) => Frame(FrameType.Hello, hello.Write);

    /// <summary>A frame header claiming <paramref name="length"/> payload bytes, and nothing after it.</summary>
    public static byte[] OversizedHeader(uint length)
    {
        var head = new byte[FrameHeader.Size];
        BinaryPrimitives.WriteUInt32LittleEndian(head, length);
        head[4] = (byte)FrameType.Subscribe;
        return head;
    }

    /// <summary>
    /// Reads until the daemon closes the connection (bounded by <paramref name="timeout"/>); returns the code of the
    /// Error frame it sent first, if any. Welcome and other frames before it are skipped.
    /// </summary>
    public async Task<CodecError?> WaitForHangUpAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        CodecError? error = null;
        try
        {
            await ReadFramesAsync(_stream, frame =>
            {
                if (frame.Type == FrameType.Error) error ??= ErrorFrame.Read(frame.Payload).Code;
                else if (frame.Type == FrameType.Welcome) Welcomed = true;
                return true;
            }, cts.Token);
        }
        catch (IOException) { } // reset by the daemon
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the daemon did not hang up within {timeout.TotalSeconds} s");
        }
        return error;
    }

    /// <summary>Reads until the daemon answers the Hello: true on Welcome, false when it sends an Error or hangs up first.</summary>
    public async Task<bool> WaitForWelcomeAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await ReadFramesAsync(_stream, frame =>
            {
                Welcomed = frame.Type == FrameType.Welcome;
                return false;
            }, cts.Token);
            return Welcomed;
        }
        catch (IOException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the daemon did not answer the Hello within {timeout.TotalSeconds} s");
        }
    }

    /// <summary>
    /// Hands each frame read from <paramref name="stream"/> to <paramref name="onFrame"/> until it returns false (then
    /// true is returned) or the stream ends (false).
    /// </summary>
    public static async Task<bool> ReadFramesAsync(Stream stream, Func<Frame, bool> onFrame, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        var received = new ArrayBufferWriter<byte>();
        while (true)
        {
            int n = await stream.ReadAsync(buffer, ct);
            if (n == 0) return false;
            received.Write(buffer.AsSpan(0, n));
            var sequence = new ReadOnlySequence<byte>(received.WrittenMemory);
            bool more = true;
            while (more && FrameReader.TryRead(ref sequence, 16 << 20, out var frame)) more = onFrame(frame);
            if (!more) return true;
            var rest = sequence.ToArray();
            received.Clear();
            received.Write(rest);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { await _stream.DisposeAsync(); } catch (IOException) { }
        _socket.Dispose();
    }
}
