using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;

namespace GeoRelay.Engines;

/// <summary>Which listener a connection came in on, or Outbound for ones the engine asked to dial.</summary>
public enum PortKind : byte
{
    Outbound = 0,
    Peer = 1,
    Learner = 2,
    Publish = 3,
}

/// <summary>The other side of a connection, as its handshake stated.</summary>
/// <param name="Capabilities">What the peer said it understands (its Hello, or the Welcome's intersection): frames newer peers understand are sent only to them.</param>
/// <param name="Version">
/// The protocol version the handshake chose: a frame newer than it (<see cref="FrameType.Configuration"/> needs 3) must not
/// be sent on this connection. The default, this build's newest, suits drivers without a handshake (the simulator).
/// </param>
public readonly record struct PeerInfo(string NodeId, NodeKind Kind, ulong Epoch, PortKind Port, Capabilities Capabilities = Capabilities.None,
    ushort Version = ProtocolVersion.Max);

/// <summary>What an engine may ask of whatever drives it (real sockets or the simulator).</summary>
public interface IEngineEnvironment
{
    /// <summary>Monotonic time in microseconds.</summary>
    long NowMicros { get; }

    /// <summary>Bytes queued on a connection and not yet written to the network.</summary>
    long QueuedBytes(int connection);
}

public enum CommandKind : byte
{
    Send,
    Close,
    Dial,
    /// <summary>
    /// Run <see cref="EngineCommand.Work"/> (a group fsync) off the engine's lock, then call <see cref="IEngine.OnSynced"/>.
    /// If the work throws (a <see cref="GeoRelay.Storage.DiskFailedException"/>), the driver stops the engine instead.
    /// </summary>
    Sync,
}

/// <summary>One thing an engine wants done. Send transfers one reference of Buffer to the driver.</summary>
public readonly struct EngineCommand
{
    public readonly CommandKind Kind;
    public readonly int Connection;
    public readonly FrameBuffer? Buffer;
    public readonly CodecError Reason;
    public readonly string? Text;
    public readonly Action? Work;

    /// <summary>For a Dial: <see cref="NodeKind.Voter"/> opens a link between voters (see <see cref="DialVoter"/>); otherwise 0.</summary>
    public readonly NodeKind DialAs;

    private EngineCommand(CommandKind kind, int connection, FrameBuffer? buffer, CodecError reason, string? text, Action? work = null, NodeKind dialAs = 0)
    {
        DialAs = dialAs;
        Kind = kind;
        Connection = connection;
        Buffer = buffer;
        Reason = reason;
        Text = text;
        Work = work;
    }

    public static EngineCommand Send(int connection, FrameBuffer buffer) => new(CommandKind.Send, connection, buffer, CodecError.None, null);
    public static EngineCommand Close(int connection, CodecError reason, string message) => new(CommandKind.Close, connection, null, reason, message);
    public static EngineCommand Dial(string nodeId) => new(CommandKind.Dial, 0, null, CodecError.None, nodeId);

    /// <summary>
    /// Dials another voter's peer port for an election link: the driver sends <see cref="IEngine.LocalHello"/> with
    /// <see cref="NodeKind.Voter"/> as its kind, and both ends see the other as a <see cref="NodeKind.Voter"/> peer.
    /// </summary>
    public static EngineCommand DialVoter(string nodeId) => new(CommandKind.Dial, 0, null, CodecError.None, nodeId, dialAs: NodeKind.Voter);

    /// <summary>
    /// A blocking fsync for the driver to run without holding up the engine: frames keep arriving and appending while
    /// the disk syncs, and the next sync covers them all. An engine has at most one in flight.
    /// </summary>
    public static EngineCommand Sync(Action flush) => new(CommandKind.Sync, 0, null, CodecError.None, null, flush);
}

/// <summary>
/// A sans-IO state machine: events in, commands out (<see cref="Outbox"/>). It owns no sockets,
/// threads or clocks; the driver calls it from one thread at a time and executes the commands.
/// </summary>
/// <remarks>
/// Fail-stop on the disk: a call that throws <see cref="GeoRelay.Storage.DiskFailedException"/> (its log could not
/// write, fsync, truncate or delete) ends the engine's life. The driver drops the commands that call left, never
/// calls the engine again, and closes its connections; the node recovers from its log when restarted. Engines
/// therefore let that exception through and never catch it.
/// </remarks>
public interface IEngine
{
    List<EngineCommand> Outbox { get; }

    /// <summary>The Hello this node sends when it dials.</summary>
    Hello LocalHello { get; }

    /// <summary>Decides on a handshake: null to accept, or why not.</summary>
    CodecException? CheckPeer(in Hello hello, PortKind port);

    void OnConnected(int connection, PeerInfo peer);
    void OnDisconnected(int connection);
    void OnDialFailed(string nodeId, string reason);
    void OnFrame(int connection, in Frame frame);
    void OnTick();

    /// <summary>The <see cref="CommandKind.Sync"/> this engine asked for has finished; the driver ticks it next.</summary>
    void OnSynced() { }

    /// <summary>
    /// When <see cref="OnTick"/> is next needed, in <see cref="IEngineEnvironment.NowMicros"/> terms: at or before now
    /// when work waits (drivers tick at once, right after the event that made it), else the engine's next timer
    /// (heartbeat, failure detection, back-off, linger). Read after every call; ticking earlier is always allowed.
    /// The default asks for a tick at every opportunity.
    /// </summary>
    long NextTickMicros => long.MinValue;
}

/// <summary>How often an engine with nothing to send still ticks: for heartbeats, failure detection and back-off.</summary>
public static class TickCadence
{
    /// <summary>A quarter of the shorter of heartbeat and failover-after (so both are met within 25 %), at least 1 ms.</summary>
    public static long HousekeepingMicros(TimeSpan heartbeat, TimeSpan failoverAfter) =>
        Math.Max(1000, (long)(Math.Min(heartbeat.TotalMicroseconds, failoverAfter.TotalMicroseconds) / 4));
}
