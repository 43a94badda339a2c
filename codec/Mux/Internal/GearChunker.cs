using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace GeoRelay.Codec.Mux.Internal;

/// <summary>
/// Content-defined chunking with a gear rolling hash (as in FastCDC): a cut falls where the hash of the
/// last 64 bytes has its top 8 bits clear, so equal content is cut at equal places in every packet, even
/// when it sits at different offsets.
/// </summary>
internal static class GearChunker
{
    /// <summary>No cut before this many bytes; also the hash window, so every cut depends on content alone.</summary>
    public const int MinSize = 64;
    public const int MaxSize = 4096;

    // Top bits of the gear hash depend on the last 64 bytes; 8 of them give one cut per ~256 bytes.
    private const ulong CutMask = 0xFF00_0000_0000_0000;

    /// <summary>How many leading bytes of a chunk its fingerprint covers.</summary>
    public const int AnchorSize = 32;

    private static readonly ulong[] Table = BuildTable();

    /// <summary>
    /// Fingerprint of the chunk starting at <paramref name="data"/>: of its first <see cref="AnchorSize"/>
    /// bytes (of all of it when shorter). <paramref name="rolling"/> carries the hash on to <see cref="ChunkLength"/>.
    /// </summary>
    /// <remarks>
    /// The fingerprint names where equal content starts, not the whole chunk: a packet's last chunk, or one
    /// cut short by a different neighbour, still finds its match, and comparing bytes finds how far it goes.
    /// Matched bytes are then skipped without being hashed at all.
    /// </remarks>
    public static ulong Fingerprint(ReadOnlySpan<byte> data, out ulong rolling)
    {
        var anchor = data[..Math.Min(data.Length, AnchorSize)];
        ulong hash = 0;
        foreach (byte b in anchor)
            hash = (hash << 1) + Gear(b);
        rolling = hash;
        // Fewer than 64 bytes in, nothing has been shifted out yet: the hash covers exactly the anchor.
        return Mix(hash ^ (ulong)anchor.Length);
    }

    /// <summary>Length of the chunk at the start of <paramref name="data"/>, given the hash <see cref="Fingerprint"/> left.</summary>
    public static int ChunkLength(ReadOnlySpan<byte> data, ulong rolling)
    {
        var window = data[..Math.Min(data.Length, MaxSize)];
        ulong hash = rolling;
        int i = Math.Min(AnchorSize, window.Length);
        for (int warm = Math.Min(MinSize, window.Length); i < warm; i++)
            hash = (hash << 1) + Gear(window[i]);
        for (; i < window.Length; i++)
        {
            hash = (hash << 1) + Gear(window[i]);
            if ((hash & CutMask) == 0)
                return i + 1;
        }
        return i;
    }

    // The table has 256 entries, so indexing it by a byte needs no bounds check.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Gear(byte b) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Table), b);

    private static ulong Mix(ulong x)
    {
        // splitmix64 finaliser
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        return x ^ (x >> 31);
    }

    private static ulong[] BuildTable()
    {
        // Fixed seed: encoders on different nodes cut identically, which keeps batches reproducible.
        var table = new ulong[256];
        ulong state = 0x6765_6F72_656C_6179; // "georelay"
        for (int i = 0; i < table.Length; i++)
        {
            state += 0x9E3779B97F4A7C15;
            table[i] = Mix(state);
        }
        return table;
    }
}
