using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Transport.Security;

namespace GeoRelay.Server.Security;

/// <summary>
/// Per-connection checks the host makes before a frame reaches the engine: the Subscribe rate on learner
/// ports, and that a token holder stays inside its key prefixes. Called from the connection's read loop only.
/// </summary>
internal sealed class ConnectionGuard(PortKind port, TokenClaims? claims, int maxSubscribesPerSecond)
{
    private long _windowStart;
    private int _inWindow;

    public TokenClaims? Claims { get; } = claims;

    /// <summary>The <see cref="TokenSnapshot.Version"/> the claims were last checked against; the sweep checks them again after a reload.</summary>
    public int TokenVersion { get; set; }

    /// <summary>Null when <paramref name="frame"/> may pass; otherwise why not, and which counter it goes to.</summary>
    public (RefusalKind Kind, CodecException Error)? Check(in Frame frame, long nowMillis)
    {
        if (port == PortKind.Learner && frame.Type == FrameType.Subscribe)
        {
            if (_inWindow == 0 || nowMillis - _windowStart >= 1000)
            {
                _windowStart = nowMillis;
                _inWindow = 0;
            }
            if (++_inWindow > maxSubscribesPerSecond)
                return (RefusalKind.SubscribeRate, new CodecException(CodecError.LimitExceeded,
                    $"more than {maxSubscribesPerSecond} Subscribe requests in one second"));
            if (Claims is not null)
            {
                if (frame.IsCompressed) return Refuse("compressed frames cannot be checked against the token; learners send them uncompressed");
                var subscribe = Subscribe.Read(frame.Payload);
                if (!Claims.AllowsSubscription(subscribe.KeyPrefix.Span))
                    return Refuse($"the token for '{Claims.Subject}' does not allow key prefix '{Printable(subscribe.KeyPrefix.Span)}'; subscribe with one of its prefixes");
            }
        }
        else if (port == PortKind.Publish && frame.Type == FrameType.Publish && Claims is not null)
        {
            if (frame.IsCompressed) return Refuse("compressed frames cannot be checked against the token; publish them uncompressed");
            var reader = PublishFrame.Read(frame.Payload, out _, out _, out _);
            Span<byte> head = stackalloc byte[TokenClaims.MaxPrefixBytes];
            while (reader.TryNext(out var key, out _))
            {
                if (Allows(key, head)) continue;
                int shown = (int)Math.Min(key.Length, 64);
                key.Slice(0, shown).CopyTo(head);
                return Refuse($"the token for '{Claims.Subject}' does not allow publishing key '{Printable(head[..shown])}'");
            }
        }
        return null;
    }

    private bool Allows(in ReadOnlySequence<byte> key, Span<byte> scratch)
    {
        if (key.IsSingleSegment) return Claims!.Allows(key.FirstSpan);
        int n = (int)Math.Min(key.Length, scratch.Length);
        key.Slice(0, n).CopyTo(scratch);
        return Claims!.Allows(scratch[..n]);
    }

    private static (RefusalKind, CodecException) Refuse(string message) =>
        (RefusalKind.Unauthorized, new CodecException(CodecError.Unauthorized, message));

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var text = System.Text.Encoding.UTF8.GetString(bytes);
        return text.Length > 64 ? text[..64] + "…" : text;
    }
}
