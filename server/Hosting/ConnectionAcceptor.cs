using System.Net;
using System.Net.Sockets;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// The listening sockets and their accept loops. Each accepted socket takes a place in the per-port and per-address
/// counts (or is refused at once when a limit is full), is admitted, and holds its place until its connection ends.
/// </summary>
internal sealed class ConnectionAcceptor(ConnectionOptions options, HostSecurity security, ConnectionAdmission admission,
    ConnectionReader reader, RefusalCounters refusals, ILogger logger, CancellationToken stopping)
{
    private readonly ConnectionCounts _counts = new(options.MaxConnectionsPerPort, options.MaxConnectionsPerAddress);
    private readonly List<Socket> _listeners = new();

    public int OpenConnections(PortKind port) => _counts.OnPort(port);

    /// <summary>Binds and listens; returns the bound end point and the accept loop.</summary>
    public (EndPoint Bound, Task AcceptLoop) Listen(EndPoint endPoint, PortKind port)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(endPoint);
        socket.Listen(1024);
        _listeners.Add(socket);
        var bound = socket.LocalEndPoint!;
        EngineHostLog.Listening(logger, port.ToString(), bound);
        if (!security.UsesTls(port) && !IsLoopback(bound))
        {
            string why = security.Tls is null ? "no tls section; insecure: true" : port == PortKind.Learner ? "tls.learners: false" : "tls.publish: false";
            EngineHostLog.PlaintextListen(logger, port.ToString(), bound, why, port == PortKind.Peer
                ? "anyone who can reach it can pose as a node of the cluster, and entries cross the network in the clear"
                : "tokens and entries cross the network in the clear");
        }
        return (bound, Task.Run(() => AcceptLoopAsync(socket, port)));
    }

    /// <summary>Only this machine can reach it: a loopback address (a wildcard such as 0.0.0.0 is reachable from anywhere).</summary>
    internal static bool IsLoopback(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => IPAddress.IsLoopback(ip.Address),
        DnsEndPoint dns => dns.Host == "localhost",
        _ => false,
    };

    public void StopListening()
    {
        foreach (var l in _listeners) l.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener, PortKind port)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (stopping.IsCancellationRequested) return;
                continue;
            }
            _ = Task.Run(() => AcceptOneAsync(socket, port));
        }
    }

    private async Task AcceptOneAsync(Socket socket, PortKind port)
    {
        var remote = socket.RemoteEndPoint as IPEndPoint;
        var place = _counts.TryOpen(port, remote?.Address, out var full);
        if (place is null)
        {
            RefuseAtCapacity(socket, port, full);
            return;
        }
        try
        {
            if (await admission.AdmitAsync(socket, port).ConfigureAwait(false) is { } admitted)
                await reader.RunAsync(admitted.Connection, admitted.Peer, admitted.Guard).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing a client sends may take the daemon down or leak its socket: log, count, close.
            refusals.Add(RefusalKind.BadFrame);
            EngineHostLog.AcceptFailed(logger, socket.RemoteEndPoint, e);
            socket.Dispose();
        }
        finally
        {
            _counts.Close(port, place);
        }
    }

    /// <summary>Over a connection limit: a plain port gets an Error frame; TLS ports are just closed (no TLS spent on them).</summary>
    private void RefuseAtCapacity(Socket socket, PortKind port, RefusalKind full)
    {
        refusals.Add(full);
        string message = full == RefusalKind.PortFull
            ? $"the {port} port already has {options.MaxConnectionsPerPort} connections"
            : $"{(socket.RemoteEndPoint as IPEndPoint)?.Address} already has {options.MaxConnectionsPerAddress} connections";
        EngineHostLog.Refused(logger, socket.RemoteEndPoint, CodecError.LimitExceeded, message);
        try
        {
            if (!security.UsesTls(port))
            {
                var frame = new System.Buffers.ArrayBufferWriter<byte>(128);
                var error = new System.Buffers.ArrayBufferWriter<byte>(96);
                new ErrorFrame(CodecError.LimitExceeded, message).Write(error);
                FrameWriter.Write(frame, FrameType.Error, FrameFlags.None, error.WrittenSpan);
                socket.Blocking = false;
                socket.Send(frame.WrittenSpan, SocketFlags.None, out _);
            }
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        socket.Dispose();
    }
}
