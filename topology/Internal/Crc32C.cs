using System.Buffers.Binary;
using System.Numerics;

namespace GeoRelay.Topology.Internal;

/// <summary>CRC-32C (Castagnoli), the checksum of encoded memberships. System.IO.Hashing has no CRC-32C; the CPU does.</summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return ~crc;
    }
}
