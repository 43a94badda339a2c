using System.Diagnostics;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Disk;

/// <summary>
/// A small tmpfs mounted on a directory, so a node's data directory can really fill up. Mounting needs root (CI runs
/// as root); where it is impossible the test fails saying so, rather than skipping. Dispose unmounts.
/// </summary>
internal sealed class Tmpfs : IDisposable
{
    private bool _mounted;

    public string Directory { get; }

    private Tmpfs(string directory) => Directory = directory;

    public static Tmpfs Mount(string directory, string size)
    {
        System.IO.Directory.CreateDirectory(directory);
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", directory);
        if (code != 0)
            Assert.Fail($"cannot mount a {size} tmpfs on {directory}: this test needs root and tmpfs (CI runs as root); `mount` exited {code}: {output}");
        return new Tmpfs(directory) { _mounted = true };
    }

    /// <summary>Bytes still free on it.</summary>
    public long FreeBytes => new DriveInfo(Directory).AvailableFreeSpace;

    /// <summary>Fills it with a file until about <paramref name="leaveFree"/> bytes are left; returns the file.</summary>
    public string Fill(long leaveFree)
    {
        string path = Path.Combine(Directory, "filler.bin");
        long size = FreeBytes - leaveFree;
        using (var filler = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            var block = new byte[64 * 1024];
            for (long written = 0; written < size; written += block.Length)
                filler.Write(block, 0, (int)Math.Min(block.Length, size - written));
        }
        return path;
    }

    public void Dispose()
    {
        if (!_mounted) return;
        _mounted = false;
        var (code, output) = Run("umount", Directory);
        // Busy (a process we could not stop still holds a file): detach it now, freed once released.
        if (code != 0) (code, output) = Run("umount", "-l", Directory);
        if (code != 0) TestContext.Out.WriteLine($"could not unmount {Directory}: {output}");
    }

    private static (int Code, string Output) Run(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(info)!;
            string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output.Trim());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"cannot run {program}: {e.Message}");
        }
    }
}
