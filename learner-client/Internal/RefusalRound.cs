using GeoRelay.Codec;
using GeoRelay.Transport;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// One round of dials over the endpoints: decides when a refusal is final (see <see cref="ClientRefusedException"/>)
/// instead of a reason to try the next endpoint or to back off and go round again.
/// </summary>
internal struct RefusalRound
{
    private int _failed;
    private int _mismatched;
    private ClientRefusedException? _firstMismatch;

    /// <summary>The token: every node checks it with the same keys, so one refusal speaks for all.</summary>
    public static bool IsFinalAtOnce(CodecError code) => code == CodecError.Unauthorized;

    /// <summary>
    /// Another protocol version, another cluster, or a port that does not take this kind of client (the leader's
    /// publish port for a learner): final only when every endpoint says so, since endpoints can differ.
    /// </summary>
    private static bool IsMismatch(CodecError code) =>
        code is CodecError.VersionMismatch or CodecError.DefinitionsMismatch or CodecError.UnknownNode or CodecError.Protocol;

    /// <summary>Records a failed dial of <paramref name="endpoint"/>; throws at once when it is a refusal of the token.</summary>
    public void Failed(string endpoint, Exception failure)
    {
        _failed++;
        if (failure is not HandshakeRefusedException refused) return;
        if (IsFinalAtOnce(refused.Reason))
            throw new ClientRefusedException(endpoint, refused.Reason, refused.Detail, refused);
        if (!IsMismatch(refused.Reason)) return;
        _mismatched++;
        _firstMismatch ??= new ClientRefusedException(endpoint, refused.Reason, refused.Detail, refused);
    }

    /// <summary>The first refusal, when every endpoint dialed this round refused this client as a mismatch; else null.</summary>
    public readonly ClientRefusedException? EveryEndpointRefused => _failed > 0 && _mismatched == _failed ? _firstMismatch : null;
}
