namespace GeoRelay.Codec;

/// <summary>Why a frame, handshake or compressed block was refused. Sent to the peer in an Error frame.</summary>
public enum CodecError : ushort
{
    None = 0,
    TooLarge = 1,
    UnknownType = 2,
    Truncated = 3,
    Corrupt = 4,
    VersionMismatch = 5,
    BadMagic = 6,
    DefinitionsMismatch = 7,
    StaleEpoch = 8,
    Unauthorized = 9,
    UnknownNode = 10,
    SlowConsumer = 11,
    Decompression = 12,
    Protocol = 13,
    SnapshotRequired = 14,
    Shutdown = 15,
    /// <summary>A configured limit was broken (connections per port or address, request rate).</summary>
    LimitExceeded = 16,
    /// <summary>The handshake or the connection's idle time ran out.</summary>
    Timeout = 17,
    /// <summary>This node does not lead (any more): it acknowledges no publish. The message names the leader it knows of.</summary>
    NotLeader = 18,
}

/// <summary>Bad input on the wire. The only exception the codec throws on untrusted bytes.</summary>
public sealed class CodecException : Exception
{
    public CodecError Reason { get; }

    /// <summary>
    /// The explanation without the reason (<see cref="Exception.Message"/> is <c>"{Reason}: {Detail}"</c>): what goes in an
    /// Error frame or a log line that shows the reason beside it, so the reason is not said twice.
    /// </summary>
    public string Detail { get; }

    public CodecException(CodecError reason, string message) : base($"{reason}: {message}")
    {
        Reason = reason;
        Detail = message;
    }

    public static CodecException Truncated(string what) => new(CodecError.Truncated, $"{what} ends before its declared length");
    public static CodecException Corrupt(string what) => new(CodecError.Corrupt, what);
}
