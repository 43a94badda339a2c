namespace GeoRelay.Bench.Datapath;

/// <summary>
/// A fresh directory on tmpfs (<c>/dev/shm</c>) made this process's temp directory while it lives: <c>LocalCluster</c> and
/// <see cref="FollowerProcesses"/> put every node's log under <c>Path.GetTempPath()</c>, which reads <c>TMPDIR</c> on each
/// call, so the same code runs with its logs in memory. Dispose restores <c>TMPDIR</c> and deletes the directory.
/// </summary>
internal sealed class TmpfsTempDirectory : IDisposable
{
    private const string Root = "/dev/shm";
    private readonly string? _previous;

    public string Path { get; }

    public TmpfsTempDirectory()
    {
        if (!IsTmpfs(Root)) throw new InvalidOperationException($"{Root} is not a tmpfs mount here; the tmpfs runs need one");
        Path = System.IO.Path.Combine(Root, $"georelay-datapath-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(Path);
        _previous = Environment.GetEnvironmentVariable("TMPDIR");
        Environment.SetEnvironmentVariable("TMPDIR", Path);
    }

    /// <summary>Whether <paramref name="directory"/> lies in the temp directory this scope set up (a check that the nodes' logs really went there).</summary>
    public bool Holds(string directory) => System.IO.Path.GetFullPath(directory).StartsWith(Path + "/", StringComparison.Ordinal);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TMPDIR", _previous);
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static bool IsTmpfs(string mountPoint)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/mounts"))
            {
                var fields = line.Split(' ');
                if (fields.Length > 2 && fields[1] == mountPoint) return fields[2] == "tmpfs";
            }
        }
        catch (IOException) { }
        return false;
    }
}
