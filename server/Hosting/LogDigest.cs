using GeoRelay.Storage;

namespace GeoRelay.Server.Hosting;

public static class LogDigest
{
    public static string Compute(IEntryLog log, ulong through)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var batch = new List<LogEntry>();
        Span<byte> head = stackalloc byte[16];
        ulong next = Math.Max(1, log.FirstIndex);
        while (next <= Math.Min(through, log.LastIndex))
        {
            batch.Clear();
            if (log.Read(next, 4096, 16 << 20, batch) == 0) break;
            foreach (var e in batch)
            {
                if (e.Index > through) break;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head, e.Index);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head[8..], e.Epoch);
                sha.AppendData(head);
                sha.AppendData(e.Key.Span);
                sha.AppendData(e.Payload.Span);
                next = e.Index + 1;
            }
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }
}
