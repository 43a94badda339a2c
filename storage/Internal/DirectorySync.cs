using System.Runtime.InteropServices;

namespace GeoRelay.Storage.Internal;

/// <summary>
/// fsync of a directory, so that creating or deleting a segment file is itself durable (POSIX does not promise
/// that fsync of the file covers its directory entry). .NET cannot open a directory as a file, hence libc.
/// Best effort: a no-op on Windows, where NTFS journals metadata.
/// </summary>
internal static partial class DirectorySync
{
    private const int ORdOnly = 0;

    public static void Sync(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(directory, ORdOnly);
        if (fd < 0) throw new IOException($"Cannot open directory '{directory}' to fsync it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (FSync(fd) != 0) throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
