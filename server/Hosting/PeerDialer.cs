using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// Dials a peer the engine asked for (over TLS when the host has it), checks that the node it meant answered, and
/// runs the connection; a dial that fails, at any step, is reported to the engine.
/// </summary>
internal sealed class PeerDialer(Func<string, EndPoint?> resolve, ConnectionOptions options, HostSecurity security,
    EngineLoop loop, ConnectionReader reader, ILogger logger, CancellationToken stopping)
{
    // Peers already warned about (once each): dials run concurrently.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _warnedNodes = new();

    /// <param name="dialAs"><see cref="NodeKind.Voter"/> for an election link (see <see cref="EngineCommand.DialVoter"/>).</param>
    public async Task DialAsync(string nodeId, NodeKind dialAs = 0)
    {
        var endPoint = resolve(nodeId);
        if (endPoint is null)
        {
            loop.OnDialFailed(nodeId, "no address for node");
            return;
        }
        if (security.Tls is null && !ConnectionAcceptor.IsLoopback(endPoint) && _warnedNodes.TryAdd(nodeId, true))
            EngineHostLog.PlaintextDial(logger, nodeId, endPoint);
        FramedConnection? connection = null;
        try
        {
            var hello = dialAs == NodeKind.Voter ? loop.LocalHello with { Kind = NodeKind.Voter } : loop.LocalHello;
            Welcome welcome;
            try
            {
                (connection, welcome) = await HandshakeAsync(nodeId, endPoint, hello).ConfigureAwait(false);
            }
            catch (HandshakeRefusedException e) when (Handshake.FallbackHello(hello, e) is { } fallback)
            {
                EngineHostLog.ProtocolFallback(logger, nodeId, fallback.MaxVersion);
                (connection, welcome) = await HandshakeAsync(nodeId, endPoint, fallback).ConfigureAwait(false);
            }
            if (welcome.NodeId != nodeId)
                throw new CodecException(CodecError.UnknownNode, $"dialed {nodeId} at {endPoint} but {welcome.NodeId} answered");
            await reader.RunAsync(connection, new PeerInfo(welcome.NodeId, dialAs == NodeKind.Voter ? NodeKind.Voter : welcome.Kind, welcome.Epoch, PortKind.Outbound, welcome.Capabilities, welcome.Version), null).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CodecException or HandshakeRefusedException or OperationCanceledException or IOException or SocketException or AuthenticationException)
        {
            if (connection is not null) await connection.DisposeAsync().ConfigureAwait(false);
            if (stopping.IsCancellationRequested) return;
            // A node that answers "not now" (a relay with no feed to share) is part of how relays find their feed, not a fault.
            if (e is HandshakeRefusedException { Reason: CodecError.Shutdown })
                EngineHostLog.DialNotServing(logger, nodeId, endPoint.ToString() ?? "", e.Message);
            else
                EngineHostLog.DialFailed(logger, nodeId, endPoint.ToString() ?? "", e.Message);
            loop.OnDialFailed(nodeId, e.Message);
        }
    }

    /// <summary>Connects (over TLS when the host has it) and sends <paramref name="hello"/>; disposes the connection when either fails.</summary>
    private async Task<(FramedConnection, Welcome)> HandshakeAsync(string nodeId, EndPoint endPoint, Hello hello)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        cts.CancelAfter(options.HandshakeTimeout);
        var connection = security.Tls is { } tls
            ? await FramedConnection.ConnectTlsAsync(endPoint, options, tls.ClientOptions(nodeId, expectedNodeId: nodeId), cts.Token).ConfigureAwait(false)
            : await FramedConnection.ConnectAsync(endPoint, options, cts.Token).ConfigureAwait(false);
        try
        {
            connection.StartWriting();
            return (connection, await Handshake.DialAsync(connection, hello, options.HandshakeTimeout, cts.Token).ConfigureAwait(false));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
