using System.Buffers;

namespace GeoRelay.Codec.Frames;

/// <summary>
/// Protocol 3: the cluster membership, the first frame on a follower link (leader or relay to relay or member), before
/// any batch. A follower whose membership differs adopts it and reconnects. <see cref="Membership"/> is opaque here:
/// encoded and hashed by whoever makes it.
/// <code>v index | v epoch | u64 hash | bytes membership</code>
/// </summary>
/// <param name="Index">The log index of the configuration entry that made this membership; 0 for the bootstrap file.</param>
/// <param name="Epoch">That entry's epoch.</param>
/// <param name="Hash">The membership's hash, as its encoder computed it.</param>
/// <param name="Membership">The encoded membership, at most <see cref="MaxMembershipBytes"/>.</param>
public readonly record struct ConfigurationFrame(ulong Index, ulong Epoch, ulong Hash, ReadOnlyMemory<byte> Membership)
{
    /// <summary>1 MiB: far above any real cluster's membership, and low enough that a bad length cannot make us allocate much.</summary>
    public const int MaxMembershipBytes = 1 << 20;

    public void Write(IBufferWriter<byte> w)
    {
        // Refused here too, so an oversized membership fails where it is sent, not as a protocol error at every follower.
        if (Membership.Length > MaxMembershipBytes)
            throw new ArgumentException($"membership of {Membership.Length} bytes is over the maximum of {MaxMembershipBytes}", nameof(Membership));
        PayloadWriter.Varint(w, Index);
        PayloadWriter.Varint(w, Epoch);
        PayloadWriter.UInt64(w, Hash);
        PayloadWriter.Bytes(w, Membership.Span);
    }

    /// <summary>Decodes a payload; the membership is copied out (the payload is only valid until the pipe advances).</summary>
    public static ConfigurationFrame Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, "Configuration");
        var index = r.ReadVarint("index");
        var epoch = r.ReadVarint("epoch");
        var hash = r.ReadUInt64("hash");
        // ReadBytes checks the length against the maximum and the bytes left before anything is copied.
        var membership = r.ReadBytes("membership", MaxMembershipBytes).ToArray();
        r.ExpectEnd();
        return new ConfigurationFrame(index, epoch, hash, membership);
    }
}
