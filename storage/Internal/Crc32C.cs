using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace GeoRelay.Storage.Internal;

/// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and Kafka.</summary>
internal static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private static readonly uint[] Table = BuildTable();

    public static bool IsHardwareAccelerated => Sse42.X64.IsSupported;

    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(~0u, data);

    /// <summary>Continues a raw (not finalised) CRC state; start with <c>~0u</c> and finish with <c>~state</c>.</summary>
    public static uint Update(uint state, ReadOnlySpan<byte> data) =>
        Sse42.X64.IsSupported ? UpdateSse42(state, data) : UpdateSoftware(state, data);

    internal static uint ComputeSoftware(ReadOnlySpan<byte> data) => ~UpdateSoftware(~0u, data);

    internal static uint ComputeHardware(ReadOnlySpan<byte> data) => ~UpdateSse42(~0u, data);

    private static uint UpdateSse42(uint state, ReadOnlySpan<byte> data)
    {
        if (!Sse42.X64.IsSupported) throw new PlatformNotSupportedException("SSE4.2 (x64) is not available");
        ulong crc = state;
        ref byte p = ref MemoryMarshal.GetReference(data);
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            // The CRC instruction consumes the lowest-addressed byte first, i.e. a little-endian load.
            crc = Sse42.X64.Crc32(crc, BinaryPrimitives.ReadUInt64LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref p, i), 8)));
        }
        uint c = (uint)crc;
        for (; i < data.Length; i++)
        {
            c = Sse42.Crc32(c, Unsafe.Add(ref p, i));
        }
        return c;
    }

    private static uint UpdateSoftware(uint state, ReadOnlySpan<byte> data)
    {
        uint[] table = Table;
        foreach (byte b in data)
        {
            state = table[(byte)(state ^ b)] ^ (state >> 8);
        }
        return state;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            }
            table[n] = c;
        }
        return table;
    }
}
