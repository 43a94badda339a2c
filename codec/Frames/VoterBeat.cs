using System.Buffers;

namespace GeoRelay.Codec.Frames;

/// <summary>
/// Sent between voters over their own links, not through relays: a leader says it leads <see cref="Term"/> every
/// heartbeat, and each voter answers with its own term. A voter that stops hearing these calls an election; a
/// leader that stops hearing answers from a quorum steps down.
/// <code>v term | u8 flags (1 = from the leader)</code>
/// </summary>
public readonly record struct VoterBeat(ulong Term, bool FromLeader)
{
    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Term);
        PayloadWriter.Byte(w, FromLeader ? (byte)1 : (byte)0);
    }

    public static VoterBeat Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(VoterBeat));
        ulong term = r.ReadVarint("term");
        byte flags = r.ReadByte("flags");
        r.ExpectEnd();
        if (flags > 1) throw r.Corrupt("flags", $"{flags} has unknown bits");
        return new VoterBeat(term, flags == 1);
    }
}
