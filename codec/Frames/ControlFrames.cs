using System.Buffers;

namespace GeoRelay.Codec.Frames;

/// <summary>Sent before closing a connection: why. <code>u16 code | str message</code></summary>
public readonly record struct ErrorFrame(CodecError Code, string Message)
{
    public const int MaxMessageLength = 1024;

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.UInt16(w, (ushort)Code);
        PayloadWriter.String(w, Message.Length > MaxMessageLength / 4 ? Message[..(MaxMessageLength / 4)] : Message);
    }

    public static ErrorFrame Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, "Error");
        var code = (CodecError)r.ReadUInt16("code");
        var message = r.ReadString("message", MaxMessageLength);
        r.ExpectEnd();
        return new ErrorFrame(code, message);
    }
}

/// <summary>
/// Per-connection, per-direction memory of the last epoch and commit index sent, so a frame may omit
/// them when unchanged. Reset with the connection.
/// </summary>
public struct DeltaState
{
    public ulong Epoch;
    public ulong Commit;
    public bool Primed;

    public void Reset() => this = default;

    /// <summary>Writes the presence byte and the fields that changed, and remembers them.</summary>
    /// <param name="extra">Bits above the two fields that the frame uses for fields of its own (see <see cref="BatchFrame"/>).</param>
    public void WriteEpochCommit(IBufferWriter<byte> w, ulong epoch, ulong commit, byte extra = 0)
    {
        byte present = extra;
        if (!Primed || epoch != Epoch) present |= 1;
        if (!Primed || commit != Commit) present |= 2;
        PayloadWriter.Byte(w, present);
        if ((present & 1) != 0) PayloadWriter.Varint(w, epoch);
        if ((present & 2) != 0) PayloadWriter.Varint(w, commit);
        Epoch = epoch;
        Commit = commit;
        Primed = true;
    }

    /// <param name="extra">Bits above the two fields that this frame may carry; any other bit is refused.</param>
    /// <returns>The <paramref name="extra"/> bits that are set.</returns>
    public byte ReadEpochCommit(ref PayloadReader r, out ulong epoch, out ulong commit, byte extra = 0)
    {
        byte present = r.ReadByte("present");
        if ((present & ~(3 | extra)) != 0) throw r.Corrupt("present", $"has unknown bits 0x{present:x2}");
        if (!Primed && (present & 3) != 3)
            throw r.Corrupt("present", "omits a field before the connection has sent it once");
        epoch = (present & 1) != 0 ? r.ReadVarint("epoch") : Epoch;
        commit = (present & 2) != 0 ? r.ReadVarint("commit") : Commit;
        Epoch = epoch;
        Commit = commit;
        Primed = true;
        return (byte)(present & ~3);
    }

    /// <summary>Writes both fields, leaving the state alone: for messages forwarded to another connection.</summary>
    public static void WriteFull(IBufferWriter<byte> w, ulong epoch, ulong commit)
    {
        PayloadWriter.Byte(w, 3);
        PayloadWriter.Varint(w, epoch);
        PayloadWriter.Varint(w, commit);
    }
}

/// <summary>Keeps an idle link alive and carries the commit index. <code>epoch/commit (delta) | v timeMicros</code></summary>
public readonly record struct Heartbeat(ulong Epoch, ulong Commit, long TimeMicros)
{
    public void Write(IBufferWriter<byte> w, ref DeltaState delta)
    {
        delta.WriteEpochCommit(w, Epoch, Commit);
        PayloadWriter.Varint(w, (ulong)TimeMicros);
    }

    public static Heartbeat Read(ReadOnlySequence<byte> payload, ref DeltaState delta)
    {
        var r = new PayloadReader(payload, nameof(Heartbeat));
        delta.ReadEpochCommit(ref r, out var epoch, out var commit);
        var time = (long)r.ReadVarint("time");
        r.ExpectEnd();
        return new Heartbeat(epoch, commit, time);
    }
}

/// <summary>
/// A member's progress, and the epoch of its entry at <see cref="DurableIndex"/> (0 when empty), so the
/// leader can tell a log that matches its own from an old leader's uncommitted suffix. <see cref="Commit"/> is
/// what the member knows committed: those entries are every log's, so its log matches the leader's up to there
/// even when the entry at <see cref="DurableIndex"/> does not.
/// <code>v epoch | v durable | v last | v durableEpoch | v commit</code>
/// </summary>
public readonly record struct Ack(ulong Epoch, ulong DurableIndex, ulong LastIndex, ulong DurableEpoch = 0, ulong Commit = 0)
{
    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.Varint(w, DurableIndex);
        PayloadWriter.Varint(w, LastIndex);
        PayloadWriter.Varint(w, DurableEpoch);
        PayloadWriter.Varint(w, Commit);
    }

    public static Ack Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Ack));
        var ack = new Ack(r.ReadVarint("epoch"), r.ReadVarint("durable"), r.ReadVarint("last"), r.ReadVarint("durableEpoch"), r.ReadVarint("commit"));
        r.ExpectEnd();
        if (ack.DurableIndex > ack.LastIndex) throw r.Corrupt("durable", "is above last");
        return ack;
    }
}

public enum MemberLinkState : byte
{
    Down = 0,
    Up = 1,
    /// <summary>Up on a link that is new since the last DcAck: the sender must resend from the durable index.</summary>
    Resync = 2,
}

public readonly record struct MemberProgress(int Slot, ulong DurableIndex, MemberLinkState State, ulong DurableEpoch = 0, ulong Commit = 0);

/// <summary>
/// A relay's one aggregated ack for its datacenter. <c>retainedEpoch</c> is the epoch of the entry at
/// <c>retained</c> and <c>retainedCommit</c> the highest index the relay knows committed in its retention, so a new
/// leader can tell whether the relay's retention is its own log (as for a member's Ack).
/// <code>v epoch | v retained | v retainedEpoch | v retainedCommit | v n | n × (v slot | v durable | u8 state | v durableEpoch | v commit)</code>
/// </summary>
public readonly struct DcAck
{
    public const int MaxMembers = 65536;

    public readonly ulong Epoch;
    public readonly ulong RetainedIndex;
    public readonly ulong RetainedEpoch;
    public readonly ulong RetainedCommit;
    public readonly MemberProgress[] Members;

    public DcAck(ulong epoch, ulong retainedIndex, MemberProgress[] members, ulong retainedEpoch = 0, ulong retainedCommit = 0)
    {
        Epoch = epoch;
        RetainedIndex = retainedIndex;
        RetainedEpoch = retainedEpoch;
        RetainedCommit = retainedCommit;
        Members = members;
    }

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.Varint(w, RetainedIndex);
        PayloadWriter.Varint(w, RetainedEpoch);
        PayloadWriter.Varint(w, RetainedCommit);
        PayloadWriter.Varint(w, (ulong)Members.Length);
        foreach (var m in Members)
        {
            PayloadWriter.Varint(w, (ulong)m.Slot);
            PayloadWriter.Varint(w, m.DurableIndex);
            PayloadWriter.Byte(w, (byte)m.State);
            PayloadWriter.Varint(w, m.DurableEpoch);
            PayloadWriter.Varint(w, m.Commit);
        }
    }

    public static DcAck Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(DcAck));
        var epoch = r.ReadVarint("epoch");
        var retained = r.ReadVarint("retained");
        var retainedEpoch = r.ReadVarint("retainedEpoch");
        var retainedCommit = r.ReadVarint("retainedCommit");
        if (retainedCommit > retained) throw r.Corrupt("retainedCommit", $"{retainedCommit} is above retained {retained}");
        var n = r.ReadVarint("count");
        // Each member takes at least 5 bytes: check before allocating.
        if (n > MaxMembers || (long)n * 5 > r.Remaining) throw r.Corrupt("count", $"{n} does not fit the payload");
        var members = new MemberProgress[(int)n];
        for (int i = 0; i < members.Length; i++)
        {
            var slot = r.ReadVarint("slot");
            if (slot >= MaxMembers) throw r.Corrupt("slot", $"{slot} is out of range");
            var durable = r.ReadVarint("durable");
            var state = r.ReadByte("state");
            if (state > 2) throw r.Corrupt("state", $"{state} is not a link state");
            members[i] = new MemberProgress((int)slot, durable, (MemberLinkState)state, r.ReadVarint("durableEpoch"), r.ReadVarint("commit"));
        }
        r.ExpectEnd();
        return new DcAck(epoch, retained, members, retainedEpoch, retainedCommit);
    }
}

[Flags]
public enum SubscribeFlags : byte
{
    None = 0,
    /// <summary>The learner will send Confirm frames for what its application processed.</summary>
    Confirms = 1,
    /// <summary>
    /// A relay of the same datacenter takes its feed: every entry, internal ones included (its retention must hold the
    /// whole log), with no key prefix.
    /// </summary>
    RelayFeed = 2,
    /// <summary>
    /// Start from the node's snapshot of keyed state (<c>compaction: keyed</c>), then the stream after it. With a
    /// <c>snapshotThrough</c>, resume that snapshot's transfer at <c>fromIndex</c>.
    /// </summary>
    Snapshot = 4,
}

/// <summary>
/// A learner's request. <c>lastIndex</c>/<c>lastEpoch</c> name the last entry the learner received (0/0 for none):
/// a node whose entry there has another epoch took it back, and answers <see cref="Truncated"/> first.
/// <c>snapshotThrough</c> (with <see cref="SubscribeFlags.Snapshot"/>) names the snapshot whose transfer the learner
/// resumes, <c>fromIndex</c> then being the next snapshot entry it needs; 0 for a new snapshot.
/// <code>v fromIndex | bytes keyPrefix | u8 flags | v lastIndex | v lastEpoch | v snapshotThrough</code>
/// </summary>
public readonly record struct Subscribe(ulong FromIndex, ReadOnlyMemory<byte> KeyPrefix, SubscribeFlags Flags, ulong LastIndex = 0, ulong LastEpoch = 0,
    ulong SnapshotThrough = 0)
{
    public const int MaxPrefixLength = 1024;

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, FromIndex);
        PayloadWriter.Bytes(w, KeyPrefix.Span);
        PayloadWriter.Byte(w, (byte)Flags);
        PayloadWriter.Varint(w, LastIndex);
        PayloadWriter.Varint(w, LastEpoch);
        PayloadWriter.Varint(w, SnapshotThrough);
    }

    public static Subscribe Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Subscribe));
        var from = r.ReadVarint("from");
        if (from == 0) throw r.Corrupt("from", "must be at least 1 (indexes start at 1)");
        var prefix = r.ReadBytes("prefix", MaxPrefixLength).ToArray();
        var flags = (SubscribeFlags)r.ReadByte("flags");
        if (((byte)flags & ~7) != 0) throw r.Corrupt("flags", $"has unknown bits 0x{(byte)flags:x2}");
        if ((flags & SubscribeFlags.RelayFeed) != 0 && prefix.Length != 0) throw r.Corrupt("flags", "a relay feed takes every entry; it has no key prefix");
        if ((flags & (SubscribeFlags.RelayFeed | SubscribeFlags.Snapshot)) == (SubscribeFlags.RelayFeed | SubscribeFlags.Snapshot))
            throw r.Corrupt("flags", "a relay feed takes the log, not a snapshot");
        var lastIndex = r.ReadVarint("lastIndex");
        if (lastIndex >= from) throw r.Corrupt("lastIndex", $"{lastIndex} is not below from {from}");
        var lastEpoch = r.ReadVarint("lastEpoch");
        if ((lastIndex == 0) != (lastEpoch == 0)) throw r.Corrupt("lastEpoch", "must be 0 exactly when lastIndex is");
        var snapshotThrough = r.ReadVarint("snapshotThrough");
        if (snapshotThrough != 0 && (flags & SubscribeFlags.Snapshot) == 0) throw r.Corrupt("snapshotThrough", "is set without the Snapshot flag");
        if (snapshotThrough != 0 && from > snapshotThrough) throw r.Corrupt("from", $"{from} is past the snapshot it resumes ({snapshotThrough})");
        r.ExpectEnd();
        return new Subscribe(from, prefix, flags, lastIndex, lastEpoch, snapshotThrough);
    }
}

/// <summary>
/// To a learner: the node took back the entries above <c>after</c> that it had sent (a new leader rewrote an
/// uncommitted suffix; only with <c>delivery: durable</c>). The stream goes on at <c>after + 1</c>.
/// <code>v after</code>
/// </summary>
public readonly record struct Truncated(ulong After)
{
    public void Write(IBufferWriter<byte> w) => PayloadWriter.Varint(w, After);

    public static Truncated Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Truncated));
        var after = r.ReadVarint("after");
        r.ExpectEnd();
        return new Truncated(after);
    }
}

/// <summary>
/// Raft's InstallSnapshot, for a log without application state: the leader's log starts at <c>index</c> (an entry of
/// <c>indexEpoch</c>); everything before it is committed and no longer held anywhere the leader can send from. A
/// follower that does not hold that very entry drops its whole log and takes the leader's from <c>index</c> on.
/// <c>target</c> is 0 for the receiver itself, or a relay's member slot + 1 (the relay forwards it with target 0).
/// <code>v target | v epoch | v commit | v index | v indexEpoch</code>
/// </summary>
public readonly record struct InstallSnapshot(int Target, ulong Epoch, ulong Commit, ulong Index, ulong IndexEpoch)
{
    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, (ulong)Target);
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.Varint(w, Commit);
        PayloadWriter.Varint(w, Index);
        PayloadWriter.Varint(w, IndexEpoch);
    }

    public static InstallSnapshot Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(InstallSnapshot));
        ulong target = r.ReadVarint("target");
        if (target > int.MaxValue) throw r.Corrupt("target", $"{target} is too large");
        var epoch = r.ReadVarint("epoch");
        var commit = r.ReadVarint("commit");
        var index = r.ReadVarint("index");
        if (index == 0) throw r.Corrupt("index", "is 0; entry indexes start at 1");
        if (index > commit) throw r.Corrupt("index", $"{index} is above the commit index {commit}: only committed entries are compacted");
        var indexEpoch = r.ReadVarint("indexEpoch");
        if (indexEpoch > epoch) throw r.Corrupt("indexEpoch", $"{indexEpoch} is above the sender's epoch {epoch}");
        r.ExpectEnd();
        return new InstallSnapshot((int)target, epoch, commit, index, indexEpoch);
    }
}

/// <summary>Nothing reachable holds the requested index any more. <code>v oldestIndex</code></summary>
public readonly record struct SnapshotRequired(ulong OldestIndex)
{
    public void Write(IBufferWriter<byte> w) => PayloadWriter.Varint(w, OldestIndex);

    public static SnapshotRequired Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(SnapshotRequired));
        var oldest = r.ReadVarint("oldest");
        r.ExpectEnd();
        return new SnapshotRequired(oldest);
    }
}

/// <summary>A learner's application has processed everything up to Index. <code>v index</code></summary>
public readonly record struct Confirm(ulong Index)
{
    public void Write(IBufferWriter<byte> w) => PayloadWriter.Varint(w, Index);

    public static Confirm Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Confirm));
        var index = r.ReadVarint("index");
        r.ExpectEnd();
        return new Confirm(index);
    }
}
