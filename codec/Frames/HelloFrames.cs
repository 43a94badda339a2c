using System.Buffers;

namespace GeoRelay.Codec.Frames;

public enum NodeKind : byte
{
    Leader = 1,
    Relay = 2,
    Member = 3,
    Learner = 4,
    Publisher = 5,
    Tool = 6,
    /// <summary>A voter's link to another voter, for elections (dialed by the lower node id); see VoterBeat.</summary>
    Voter = 7,
}

[Flags]
public enum Capabilities : uint
{
    None = 0,
    Zstd = 1,
    Mux = 2,
    Delta = 4,
    /// <summary>
    /// A node sends each learner a Heartbeat when it has sent it nothing for a second; a learner that has had nothing
    /// for much longer knows the node is hung (its kernel still answers TCP) and resumes elsewhere.
    /// </summary>
    LearnerHeartbeats = 8,
    /// <summary>The peer understands <see cref="FrameType.InstallSnapshot"/> (a relay forwards it; a member installs it).</summary>
    SnapshotInstall = 16,
    /// <summary>
    /// The peer serves its keyed state on a peer link (a <see cref="FrameType.Subscribe"/> with the Snapshot flag is
    /// answered with one <see cref="FrameType.SnapshotChunk"/>, tombstones included), and asks its upstream for it when
    /// its log was installed past its own state.
    /// </summary>
    KeyedState = 32,
    /// <summary>
    /// The peer (a relay) reads the voters' progress on batches (<see cref="BatchFrame.ProgressBit"/>), and with its own
    /// members' acks hands learners entries a quorum holds before the leader's commit index comes back.
    /// </summary>
    VoterProgress = 64,
}

/// <summary>
/// The first frame on every connection, from the dialing side.
/// <code>
/// u32 magic "GRLY" | u16 minVersion | u16 maxVersion | u64 definitionsHash | str nodeId | u8 kind
/// | varint epoch | u32 capabilities | str cluster | u64 topologyHash | bytes auth
/// </code>
/// </summary>
public readonly record struct Hello(
    ushort MinVersion,
    ushort MaxVersion,
    ulong DefinitionsHash,
    string NodeId,
    NodeKind Kind,
    ulong Epoch,
    Capabilities Capabilities,
    string Cluster,
    ulong TopologyHash,
    ReadOnlyMemory<byte> Auth)
{
    public const uint Magic = 0x594C5247; // "GRLY" little-endian
    public const int MaxIdLength = 255;
    public const int MaxAuthLength = 4096;

    /// <summary>
    /// A Hello for <see cref="ProtocolVersion.Min"/>..<see cref="ProtocolVersion.LocalMax"/>, with the definitions
    /// hash of the highest (so a process pinned to an older version looks exactly like a build of that version).
    /// </summary>
    public static Hello ForThisBuild(string nodeId, NodeKind kind, ulong epoch, string cluster, ulong topologyHash,
        Capabilities capabilities = Capabilities.Zstd | Capabilities.Mux | Capabilities.Delta | Capabilities.LearnerHeartbeats | Capabilities.SnapshotInstall | Capabilities.KeyedState | Capabilities.VoterProgress, ReadOnlyMemory<byte> auth = default) =>
        new(ProtocolVersion.Min, ProtocolVersion.LocalMax, ProtocolVersion.DefinitionsHashFor(ProtocolVersion.LocalMax)!.Value, nodeId, kind, epoch, capabilities, cluster, topologyHash, auth);

    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.UInt32(w, Magic);
        PayloadWriter.UInt16(w, MinVersion);
        PayloadWriter.UInt16(w, MaxVersion);
        PayloadWriter.UInt64(w, DefinitionsHash);
        PayloadWriter.String(w, NodeId);
        PayloadWriter.Byte(w, (byte)Kind);
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.UInt32(w, (uint)Capabilities);
        PayloadWriter.String(w, Cluster);
        PayloadWriter.UInt64(w, TopologyHash);
        PayloadWriter.Bytes(w, Auth.Span);
    }

    public static Hello Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Hello));
        if (r.ReadUInt32("magic") != Magic)
            throw new CodecException(CodecError.BadMagic, "not a GeoRelay peer (bad magic in Hello)");
        var min = r.ReadUInt16("minVersion");
        var max = r.ReadUInt16("maxVersion");
        if (min > max) throw r.Corrupt("versions", $"range {min}..{max} is empty");
        var hash = r.ReadUInt64("definitionsHash");
        var node = r.ReadString("nodeId", MaxIdLength);
        var kind = (NodeKind)r.ReadByte("kind");
        if (kind is < NodeKind.Leader or > NodeKind.Voter) throw r.Corrupt("kind", $"{(byte)kind} is not a node kind");
        var epoch = r.ReadVarint("epoch");
        var caps = (Capabilities)r.ReadUInt32("capabilities");
        var cluster = r.ReadString("cluster", MaxIdLength);
        var topo = r.ReadUInt64("topologyHash");
        var auth = r.ReadBytes("auth", MaxAuthLength).ToArray();
        r.ExpectEnd();
        return new Hello(min, max, hash, node, kind, epoch, caps, cluster, topo, auth);
    }
}

/// <summary>The listening side's answer to an acceptable <see cref="Hello"/>.
/// <code>u16 version | str nodeId | u8 kind | varint epoch | u32 capabilities</code></summary>
public readonly record struct Welcome(ushort Version, string NodeId, NodeKind Kind, ulong Epoch, Capabilities Capabilities)
{
    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.UInt16(w, Version);
        PayloadWriter.String(w, NodeId);
        PayloadWriter.Byte(w, (byte)Kind);
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.UInt32(w, (uint)Capabilities);
    }

    public static Welcome Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(Welcome));
        var version = r.ReadUInt16("version");
        var node = r.ReadString("nodeId", Hello.MaxIdLength);
        var kind = (NodeKind)r.ReadByte("kind");
        if (kind is < NodeKind.Leader or > NodeKind.Voter) throw r.Corrupt("kind", $"{(byte)kind} is not a node kind");
        var epoch = r.ReadVarint("epoch");
        var caps = (Capabilities)r.ReadUInt32("capabilities");
        r.ExpectEnd();
        return new Welcome(version, node, kind, epoch, caps);
    }
}

public static class ProtocolVersion
{
    /// <summary>
    /// Version 2 added the tombstone flag to entry records and published entries, and snapshots of keyed state for
    /// learners (keyed compaction). Version 3 added <see cref="FrameType.Configuration"/> (runtime membership changes).
    /// </summary>
    public const ushort Min = 2;
    public const ushort Max = 3;

    /// <summary>
    /// The environment variable that pins this process to an older version (<c>2</c> or <c>3</c>; unset for
    /// <see cref="Max"/>): to hold a new build at the previous version, and to stand in for a build of it in tests.
    /// </summary>
    public const string MaxVariable = "GEORELAY_PROTOCOL_MAX";

    /// <summary>
    /// Version 2's frame layouts, exactly as version-2 builds hash them: a version-2 peer's Hello carries this hash,
    /// so the text must never change.
    /// </summary>
    public const string DefinitionsV2 =
        "header:u32len,u8type,u8flags;" +
        "Hello:u32magic,u16min,u16max,u64defs,str,u8kind,v epoch,u32caps,str cluster,u64 topo,bytes auth;" +
        "Welcome:u16,str,u8,v,u32;Error:u16 code,str;" +
        "Heartbeat:u8 present,[v epoch],[v commit],v time;" +
        "Entry:v gap,v epoch,v time,v keyLen<<1|tombstone,key,bytes payload;" +
        "Append:u8 present,[v epoch],[v commit],v first,v count,entries;" +
        "Batch:u8 present,[v epoch],[v commit],v seq,v k,k*v slot,v first,v count,(k+1)*v skip,mux(k+1)*entries;" +
        "Ack:v epoch,v durable,v last,v durableEpoch,v commit;DcAck:v epoch,v retained,v retainedEpoch,v retainedCommit,v n,n*(v slot,v durable,u8 state,v durableEpoch,v commit);" +
        "Subscribe:v from,bytes prefix,u8 flags,v lastIndex,v lastEpoch,v snapshotThrough;"+
        "SnapshotChunk:v through,u8 flags,v total,v first,v count,entries,u32 crc;Deliver:v first,v count,v through,entries;" +
        "SnapshotRequired:v oldest;Confirm:v index;" +
        "Publish:v request,u8 wait,u64 producer,u64 firstSeq,v count,count*(v keyLen<<1|tombstone,key,bytes payload);PublishAck:v request,v first,v count,u8 level;" +
        "VoteRequest:v term,v lastTerm,v lastIndex,u8 flags,str candidate;VoteResponse:v term,u8 flags,str reason;TimeoutNow:v term;" +
        "VoterBeat:v term,u8 flags;Truncated:v after";

    /// <summary>
    /// Describes every frame layout of version 3 (this build's newest); both sides of a connection must hash it the
    /// same, so a changed layout without a version bump is caught at the handshake.
    /// </summary>
    public const string Definitions = DefinitionsV2 + ";Configuration:v index,v epoch,u64 hash,bytes membership";

    /// <summary>The hash of <see cref="Definitions"/> (version 3's layouts).</summary>
    public static readonly ulong DefinitionsHash = Fnv1a64(Definitions);

    private static readonly ulong DefinitionsV2Hash = Fnv1a64(DefinitionsV2);

    // Read once: a process speaks one range for its whole life.
    private static readonly (ushort Max, string? Problem) s_pin = ParseMax(Environment.GetEnvironmentVariable(MaxVariable));

    /// <summary>
    /// The highest version this process speaks: <see cref="Max"/>, or lower when <see cref="MaxVariable"/> pins it.
    /// Throws <see cref="InvalidOperationException"/> naming the variable when its value is not a version this build has.
    /// </summary>
    public static ushort LocalMax => s_pin.Problem is null ? s_pin.Max : throw new InvalidOperationException(s_pin.Problem);

    /// <summary>Why <see cref="MaxVariable"/> cannot be used, or null when it is unset or valid: for a daemon to refuse to start.</summary>
    public static string? LocalMaxProblem => s_pin.Problem;

    /// <summary>A value of <see cref="MaxVariable"/>: unset or empty means <see cref="Max"/>; else exactly "2" or "3".</summary>
    public static (ushort Max, string? Problem) ParseMax(string? value) => value switch
    {
        null or "" => (Max, null),
        "2" => (2, null),
        "3" => (3, null),
        _ => (Max, $"{MaxVariable} is '{value}': it must be 2 or 3 (the highest protocol version this process speaks), or unset for {Max}"),
    };

    /// <summary>The hash of version <paramref name="version"/>'s frame layouts, or null for a version this build does not have.</summary>
    public static ulong? DefinitionsHashFor(ushort version) => version switch
    {
        2 => DefinitionsV2Hash,
        3 => DefinitionsHash,
        _ => null,
    };

    /// <summary>The newest frame type of version <paramref name="version"/>: a peer that sends a newer one breaks the protocol.</summary>
    public static FrameType MaxFrameType(ushort version) => version >= 3 ? FrameType.Configuration : FrameType.SnapshotChunk;

    /// <summary>
    /// Picks the highest version both ranges contain, or refuses naming both ranges. A Hello's definitions hash is
    /// that of its sender's highest version, so a peer whose highest is the chosen version is checked against our
    /// definitions of it; a peer whose highest is above it checks our hash itself (each side checks the older one).
    /// A <paramref name="local"/> Hello whose highest is 2 (a process pinned to 2) negotiates exactly as version-2
    /// builds do, refusing any peer whose hash differs from its own, version-3 dialers included.
    /// </summary>
    public static ushort Negotiate(in Hello local, in Hello remote)
    {
        ushort low = Math.Max(local.MinVersion, remote.MinVersion);
        ushort high = Math.Min(local.MaxVersion, remote.MaxVersion);
        if (low > high)
            throw new CodecException(CodecError.VersionMismatch,
                $"no common protocol version: {local.NodeId} speaks {local.MinVersion}..{local.MaxVersion}, {remote.NodeId} speaks {remote.MinVersion}..{remote.MaxVersion}");
        if (local.MaxVersion == 2)
        {
            // The rule of the previous release (a06841e), kept so a pinned process is a true stand-in for it in tests.
            // Keyed on the Hello rather than LocalMax (which it equals for every Hello a process listens with) so
            // tests can run both sides in one process.
            if (high == local.MaxVersion && local.DefinitionsHash != remote.DefinitionsHash)
                throw new CodecException(CodecError.DefinitionsMismatch,
                    $"protocol {high} frame definitions differ: {local.NodeId} has {local.DefinitionsHash:x16}, {remote.NodeId} has {remote.DefinitionsHash:x16}");
            return high;
        }
        if (remote.MaxVersion == high)
        {
            ulong? ours = local.MaxVersion == high ? local.DefinitionsHash : DefinitionsHashFor(high);
            if (ours is { } hash && hash != remote.DefinitionsHash)
                throw new CodecException(CodecError.DefinitionsMismatch,
                    $"protocol {high} frame definitions differ: {local.NodeId} has {hash:x16}, {remote.NodeId} has {remote.DefinitionsHash:x16}");
        }
        return high;
    }

    /// <summary>
    /// Whether the connection with <paramref name="remote"/> speaks protocol 3 or later, where nodes may hold different
    /// configurations (the leader sends its own first) instead of having to load the same topology file.
    /// </summary>
    public static bool CarriesConfiguration(in Hello remote) => LocalMax >= 3 && remote.MaxVersion >= 3;

    public static ulong Fnv1a64(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
        return hash;
    }
}
