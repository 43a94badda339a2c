using System.Diagnostics;
using System.Globalization;

namespace GeoRelay.Bench.Datapath;

/// <summary>
/// What the disk allows: every member and the leader write each entry to a log of their own, so on one machine
/// the page cache and the disk take the cluster's whole write volume, whatever the code costs.
/// </summary>
internal static class DiskCeiling
{
    /// <summary>
    /// Bytes this process has had written to storage so far (<c>write_bytes</c> of <c>/proc/self/io</c>, counted when
    /// pages are dirtied); null where there is no such file.
    /// </summary>
    public static long? WrittenBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/io"))
                if (line.StartsWith("write_bytes:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan("write_bytes:".Length).Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>
    /// Sequential write rate into a fresh file in the temp directory (where the nodes keep their logs): 1 MiB writes,
    /// an fsync every 64 MiB, as a segment log does at its best. Bytes per second.
    /// </summary>
    public static double MeasureWriteRate(long totalBytes = 1L << 30)
    {
        string path = Path.Combine(Path.GetTempPath(), $"georelay-disk-{Environment.ProcessId}.bin");
        var chunk = new byte[1 << 20];
        new Random(7).NextBytes(chunk);
        try
        {
            using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
            var clock = Stopwatch.StartNew();
            for (long written = 0; written < totalBytes; written += chunk.Length)
            {
                file.Write(chunk);
                if ((written + chunk.Length) % (64 << 20) == 0) file.Flush(flushToDisk: true);
            }
            file.Flush(flushToDisk: true);
            return totalBytes / clock.Elapsed.TotalSeconds;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
