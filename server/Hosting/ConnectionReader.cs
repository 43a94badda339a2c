using GeoRelay.Codec;
using GeoRelay.Engines;
using GeoRelay.Server.Security;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// One connection's life with the engine after its handshake, accepted or dialed: it is added, every frame its guard
/// lets through goes to the engine (publish connections pause while the engine has no room), and when it closes it is
/// removed and disposed.
/// </summary>
internal sealed class ConnectionReader(EngineLoop loop, PublishBackPressure publish, RefusalCounters refusals, ILogger logger)
{
    public async Task RunAsync(FramedConnection connection, PeerInfo peer, ConnectionGuard? guard)
    {
        if (!loop.OnConnected(connection, peer, guard)) return;
        EngineHostLog.Connected(logger, peer.NodeId, peer.Kind.ToString(), connection.RemoteEndPoint, peer.Version);
        bool guarded = false;
        try
        {
            await connection.ReadLoopAsync(peer.Port == PortKind.Publish ? publish.WaitAsync : null, (frame, more) =>
            {
                if (guard?.Check(frame, Environment.TickCount64) is { } refused)
                {
                    guarded = true;
                    refusals.Add(refused.Kind);
                    EngineHostLog.LimitBroken(logger, peer.NodeId, connection.RemoteEndPoint, refused.Kind, refused.Error.Detail);
                    throw refused.Error;
                }
                loop.OnFrame(connection.Id, frame, more);
            }).ConfigureAwait(false);
        }
        catch (CodecException e)
        {
            // A guard's refusal was counted and logged where it was made.
            if (!guarded)
            {
                refusals.Add(e.Reason == CodecError.TooLarge ? RefusalKind.FrameTooLarge : RefusalKind.BadFrame);
                EngineHostLog.BadFrame(logger, peer.NodeId, connection.RemoteEndPoint, e.Reason, e.Detail);
            }
        }
        catch (Exception e)
        {
            EngineHostLog.EngineFailed(logger, peer.NodeId, e);
            connection.Close(CodecError.Protocol, "internal error");
        }
        loop.OnDisconnected(connection, peer);
        var reason = connection.CloseReason;
        EngineHostLog.Disconnected(logger, peer.NodeId, connection.RemoteEndPoint, reason is null ? "closed" : $"{reason.Value.Reason}: {reason.Value.Message}");
        await connection.DisposeAsync().ConfigureAwait(false);
    }
}
