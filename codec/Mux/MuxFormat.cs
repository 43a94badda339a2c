using GeoRelay.Codec.Mux.Internal;

namespace GeoRelay.Codec.Mux;

/// <summary>
/// The mux batch ("bitmap-chunk diff"): K packets that share most of their bytes, each shared run stored once.
/// </summary>
/// <remarks>
/// <code>
/// ┌──────────┬────────┬───────────────┬──────────────┬────────┬───────────────┬───────
/// │ varint K │ bitmap │ varint length │ length bytes │ bitmap │ varint length │ ...    chunks until the batch ends
/// └──────────┴────────┴───────────────┴──────────────┴────────┴───────────────┴───────
/// </code>
/// Packet i is the concatenation, in batch order, of the bytes of every chunk whose bitmap names i.
/// Bitmaps take one byte for "all packets", for packets 0..111 alone, and for any set of packets
/// 0..6; larger sets use a tag byte and a varint index, a sparse list, runs or a raw bit mask,
/// whichever is smallest (layout drawn on <c>Internal/MuxBitmap.cs</c>). Chunk lengths are at least 1.
/// </remarks>
public static class MuxFormat
{
    /// <summary>Default limit on K for <see cref="MuxBatch.Parse"/>: 65,536 packets.</summary>
    public const int DefaultMaxPackets = 65536;

    /// <summary>
    /// Size of the batch that shares nothing: <c>varint(K)</c>, then per non-empty packet i one chunk of
    /// <c>bitmap(i) + varint(length_i) + length_i</c>, where <c>bitmap(i)</c> is 1 byte when K = 1 or
    /// i &lt; 112, else <c>1 + varint(i)</c>: 2 bytes below 128, 3 below 16,384, 4 below 2,097,152.
    /// Both encoders never write more than this, whatever the input.
    /// </summary>
    public static long NoSharingLength(ReadOnlySpan<int> packetLengths)
    {
        long total = Varint.SizeOf((ulong)packetLengths.Length);
        for (int i = 0; i < packetLengths.Length; i++)
            total += UnsharedLayout.ChunkSize(i, packetLengths.Length, packetLengths[i]);
        return total;
    }
}
