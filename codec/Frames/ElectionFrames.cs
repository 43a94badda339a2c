using System.Buffers;

namespace GeoRelay.Codec.Frames;

[Flags]
public enum VoteRequestFlags : byte
{
    None = 0,
    /// <summary>A pre-vote: asks whether the voter would vote, changes no term and records no vote.</summary>
    PreVote = 1,
    /// <summary>The leader asked for this election (TimeoutNow): voters set leader stickiness aside.</summary>
    Transfer = 2,
}

/// <summary>
/// A candidate (or pre-candidate) asks a voter for its vote in <see cref="Term"/>, stating its last log position.
/// <code>v term | v lastTerm | v lastIndex | u8 flags | str candidate</code>
/// </summary>
public readonly record struct VoteRequest(ulong Term, ulong LastTerm, ulong LastIndex, VoteRequestFlags Flags, string Candidate)
{
    public bool IsPreVote => (Flags & VoteRequestFlags.PreVote) != 0;
    public bool IsTransfer => (Flags & VoteRequestFlags.Transfer) != 0;

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Term);
        PayloadWriter.Varint(w, LastTerm);
        PayloadWriter.Varint(w, LastIndex);
        PayloadWriter.Byte(w, (byte)Flags);
        PayloadWriter.String(w, Candidate);
    }

    public static VoteRequest Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(VoteRequest));
        var term = r.ReadVarint("term");
        if (term == 0) throw r.Corrupt("term", "is 0 (elections start at term 1)");
        var lastTerm = r.ReadVarint("lastTerm");
        if (lastTerm >= term) throw r.Corrupt("lastTerm", $"{lastTerm} is not below the requested term {term}");
        var lastIndex = r.ReadVarint("lastIndex");
        var flags = (VoteRequestFlags)r.ReadByte("flags");
        if (((byte)flags & ~3) != 0) throw r.Corrupt("flags", $"has unknown bits 0x{(byte)flags:x2}");
        if (flags == (VoteRequestFlags.PreVote | VoteRequestFlags.Transfer))
            throw r.Corrupt("flags", "mark a pre-vote as a transfer (a transfer skips the pre-vote)");
        var candidate = r.ReadString("candidate", Hello.MaxIdLength);
        if (candidate.Length == 0) throw r.Corrupt("candidate", "is empty");
        r.ExpectEnd();
        return new VoteRequest(term, lastTerm, lastIndex, flags, candidate);
    }
}

[Flags]
public enum VoteResponseFlags : byte
{
    None = 0,
    Granted = 1,
    /// <summary>Answers a pre-vote.</summary>
    PreVote = 2,
}

/// <summary>
/// A voter's answer. <see cref="Term"/> is the requested term when granted, else the voter's own term (so a
/// candidate behind it learns the newer term). <see cref="Reason"/> says why a vote was refused.
/// <code>v term | u8 flags | str reason</code>
/// </summary>
public readonly record struct VoteResponse(ulong Term, VoteResponseFlags Flags, string Reason)
{
    /// <summary>Longest reason accepted, in UTF-8 bytes; the writer shortens longer ones.</summary>
    public const int MaxReasonLength = 512;

    public bool Granted => (Flags & VoteResponseFlags.Granted) != 0;
    public bool IsPreVote => (Flags & VoteResponseFlags.PreVote) != 0;

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Term);
        PayloadWriter.Byte(w, (byte)Flags);
        // At most 4 UTF-8 bytes per char, so this many chars always fit.
        PayloadWriter.String(w, Reason.Length > MaxReasonLength / 4 ? Reason[..(MaxReasonLength / 4)] : Reason);
    }

    public static VoteResponse Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(VoteResponse));
        var term = r.ReadVarint("term");
        var flags = (VoteResponseFlags)r.ReadByte("flags");
        if (((byte)flags & ~3) != 0) throw r.Corrupt("flags", $"has unknown bits 0x{(byte)flags:x2}");
        var reason = r.ReadString("reason", MaxReasonLength);
        r.ExpectEnd();
        return new VoteResponse(term, flags, reason);
    }
}

/// <summary>The leader tells a caught-up voter to start an election now (leadership transfer). <code>v term</code></summary>
public readonly record struct TimeoutNow(ulong Term)
{
    public void Write(IBufferWriter<byte> w) => PayloadWriter.Varint(w, Term);

    public static TimeoutNow Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(TimeoutNow));
        var term = r.ReadVarint("term");
        if (term == 0) throw r.Corrupt("term", "is 0 (only a leader sends TimeoutNow, and leaders start at term 1)");
        r.ExpectEnd();
        return new TimeoutNow(term);
    }
}
