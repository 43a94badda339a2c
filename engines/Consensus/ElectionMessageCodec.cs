using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Engines.Consensus;

/// <summary>Maps <see cref="ElectionMessage"/> to and from the VoteRequest, VoteResponse and TimeoutNow frames.</summary>
public static class ElectionMessageCodec
{
    public static FrameType FrameTypeOf(ElectionMessageKind kind) => kind switch
    {
        ElectionMessageKind.VoteRequest => FrameType.VoteRequest,
        ElectionMessageKind.VoteResponse => FrameType.VoteResponse,
        ElectionMessageKind.TimeoutNow => FrameType.TimeoutNow,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an election message kind"),
    };

    public static bool IsElectionFrame(FrameType type) => type is FrameType.VoteRequest or FrameType.VoteResponse or FrameType.TimeoutNow;

    /// <summary>Writes the payload of <paramref name="message"/>'s frame (see <see cref="FrameTypeOf"/>). From and To travel as the connection's ends.</summary>
    public static void WritePayload(IBufferWriter<byte> writer, in ElectionMessage message)
    {
        switch (message.Kind)
        {
            case ElectionMessageKind.VoteRequest:
                var flags = (message.PreVote ? VoteRequestFlags.PreVote : 0) | (message.Transfer ? VoteRequestFlags.Transfer : 0);
                new VoteRequest(message.Term, message.LastLog.Term, message.LastLog.Index, flags, message.From).Write(writer);
                break;
            case ElectionMessageKind.VoteResponse:
                var answer = (message.Granted ? VoteResponseFlags.Granted : 0) | (message.PreVote ? VoteResponseFlags.PreVote : 0);
                new VoteResponse(message.Term, answer, message.Reason ?? "").Write(writer);
                break;
            case ElectionMessageKind.TimeoutNow:
                new TimeoutNow(message.Term).Write(writer);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(message), message.Kind, "not an election message kind");
        }
    }

    /// <summary>
    /// Reads an election frame that arrived on the connection from <paramref name="from"/> to <paramref name="to"/>.
    /// A vote request naming another candidate than the connection's peer is a <see cref="CodecException"/>
    /// (<see cref="CodecError.Protocol"/>): nobody asks for votes on another node's behalf.
    /// </summary>
    public static ElectionMessage Read(FrameType type, ReadOnlySequence<byte> payload, string from, string to)
    {
        switch (type)
        {
            case FrameType.VoteRequest:
                var request = VoteRequest.Read(payload);
                if (request.Candidate != from)
                    throw new CodecException(CodecError.Protocol, $"VoteRequest for candidate {request.Candidate} arrived from {from}");
                return new ElectionMessage(ElectionMessageKind.VoteRequest, from, to, request.Term, new LogPosition(request.LastTerm, request.LastIndex),
                    request.IsPreVote, Granted: false, request.IsTransfer, null);
            case FrameType.VoteResponse:
                var response = VoteResponse.Read(payload);
                return new ElectionMessage(ElectionMessageKind.VoteResponse, from, to, response.Term, default,
                    response.IsPreVote, response.Granted, Transfer: false, response.Granted ? null : response.Reason);
            case FrameType.TimeoutNow:
                var timeoutNow = TimeoutNow.Read(payload);
                return new ElectionMessage(ElectionMessageKind.TimeoutNow, from, to, timeoutNow.Term, default,
                    PreVote: false, Granted: false, Transfer: true, null);
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "not an election frame");
        }
    }
}
