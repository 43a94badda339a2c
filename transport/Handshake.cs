using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Transport;

/// <summary>The peer refused our handshake (or sent an Error frame); Reason says why.</summary>
public sealed class HandshakeRefusedException(CodecError reason, string message)
    : Exception($"refused by peer: {reason}: {message}")
{
    public CodecError Reason { get; } = reason;

    /// <summary>The peer's explanation, as its Error frame carried it.</summary>
    public string Detail { get; } = message;
}

public static class Handshake
{
    /// <summary>The version before <see cref="ProtocolVersion.Max"/>, which a dialer falls back to.</summary>
    public const ushort PreviousVersion = ProtocolVersion.Max - 1;

    /// <summary>
    /// The Hello to redial the same endpoint with after <paramref name="refusal"/>, or null when no fallback applies.
    /// A build of <see cref="PreviousVersion"/> compares its own definitions hash with the dialer's whatever the
    /// dialer's highest version, so it refuses a Hello offering <see cref="ProtocolVersion.Max"/> with
    /// <see cref="CodecError.DefinitionsMismatch"/>; the same Hello capped at that version is what its own builds
    /// send. A fallback Hello offers no newer version, so it never falls back again.
    /// </summary>
    public static Hello? FallbackHello(in Hello local, Exception refusal) =>
        refusal is HandshakeRefusedException { Reason: CodecError.DefinitionsMismatch }
        && local.MaxVersion > PreviousVersion && local.MinVersion <= PreviousVersion
            ? local with { MaxVersion = PreviousVersion, DefinitionsHash = ProtocolVersion.DefinitionsHashFor(PreviousVersion)!.Value }
            : null;

    /// <summary>Dialing side: sends Hello, returns the peer's Welcome or throws why it refused.</summary>
    public static async Task<Welcome> DialAsync(FramedConnection connection, Hello local, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        local.Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Hello);
        connection.TrySend(frame);
        var (type, payload) = await connection.ReadOneFrameAsync(cts.Token).ConfigureAwait(false);
        switch (type)
        {
            case FrameType.Welcome:
                var welcome = Welcome.Read(new(payload));
                if (welcome.Version < local.MinVersion || welcome.Version > local.MaxVersion)
                    throw new CodecException(CodecError.VersionMismatch, $"peer chose version {welcome.Version}, we speak {local.MinVersion}..{local.MaxVersion}");
                connection.PeerCapabilities = welcome.Capabilities;
                connection.Version = welcome.Version;
                return welcome;
            case FrameType.Error:
                var error = ErrorFrame.Read(new(payload));
                throw new HandshakeRefusedException(error.Code, error.Message);
            default:
                throw new CodecException(CodecError.Protocol, $"expected Welcome, got {type}");
        }
    }

    /// <summary>
    /// Listening side: reads the peer's Hello, negotiates the version, asks <paramref name="check"/>,
    /// and answers Welcome, or Error (then closes) and throws.
    /// </summary>
    public static async Task<(Hello Hello, ushort Version)> AcceptAsync(FramedConnection connection, Hello local,
        Func<Hello, CodecException?> check, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            var (type, payload) = await connection.ReadOneFrameAsync(cts.Token).ConfigureAwait(false);
            if (type != FrameType.Hello)
                throw new CodecException(CodecError.Protocol, $"expected Hello first, got {type}");
            var hello = Hello.Read(new(payload));
            var version = ProtocolVersion.Negotiate(local, hello);
            var refusal = check(hello);
            if (refusal is not null) throw refusal;
            var frame = FrameBuffer.Rent();
            int start = FrameWriter.Begin(frame.Writer);
            new Welcome(version, local.NodeId, local.Kind, local.Epoch, local.Capabilities & hello.Capabilities).Write(frame.Writer);
            FrameWriter.End(frame.Writer, start, FrameType.Welcome);
            connection.TrySend(frame);
            connection.Version = version;
            return (hello, version);
        }
        catch (CodecException e)
        {
            connection.Close(e.Reason, e.Detail);
            throw;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            connection.Close(CodecError.Timeout, $"no handshake within {timeout.TotalMilliseconds:0} ms");
            throw new CodecException(CodecError.Timeout, $"no handshake within {timeout.TotalMilliseconds:0} ms");
        }
    }
}
