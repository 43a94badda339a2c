using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

/// <summary>
/// Replaces a file whole, so a crash at any point leaves either the old file or the new one, never a torn mix: the
/// content goes to <c>PATH.tmp</c>, which is fsynced, renamed over <c>PATH</c>, and then the directory is fsynced.
/// </summary>
/// <remarks>
/// A leftover <c>PATH.tmp</c> (a crash before the rename, or a writer that threw) is never read: only <c>PATH</c> is,
/// and the next replace overwrites the leftover. A failed replace does not poison later ones: each writes a fresh
/// temporary file and only its own fsync vouches for it.
/// </remarks>
public static class AtomicFile
{
    /// <summary>Opens <paramref name="path"/> for reading, unbuffered (readers buffer what they need); null when it does not exist.</summary>
    public static FileStream? OpenIfExists(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The temporary file a replace of <paramref name="path"/> writes before renaming it.</summary>
    public static string TemporaryPath(string path) => path + ".tmp";

    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/>; returns once durable.</summary>
    public static void Replace(string path, byte[] bytes, bool fsync = true) => Replace(path, stream => stream.Write(bytes), fsync);

    /// <summary>
    /// Replaces <paramref name="path"/> with what <paramref name="write"/> writes to the temporary file (a seekable stream
    /// it may seek back in); returns once durable. A failure of the disk is a <see cref="DiskFailedException"/> naming the
    /// operation and the file; what <paramref name="write"/> throws otherwise passes through, and the old file stays.
    /// </summary>
    /// <param name="fsync">Off only for tests that do not care about power loss: then a replace survives a process crash, not an OS crash.</param>
    public static void Replace(string path, Action<FileStream> write, bool fsync = true)
    {
        string temporary = TemporaryPath(path);
        FileStream stream;
        try
        {
            // Unbuffered: a write fails in write(), not later in a Dispose that would hide the first failure.
            // A writer of many small pieces buffers them itself.
            stream = new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw new DiskFailedException("create", temporary, e);
        }
        using (stream)
        {
            try
            {
                write(stream);
            }
            catch (Exception e) when (IsDiskError(e))
            {
                throw new DiskFailedException("write", temporary, e);
            }
            try
            {
                stream.Flush(flushToDisk: fsync);
            }
            catch (Exception e) when (IsDiskError(e))
            {
                throw new DiskFailedException("fsync", temporary, e);
            }
        }
        try
        {
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw new DiskFailedException("rename", path, e);
        }
        if (!fsync) return;
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        try
        {
            DirectorySync.Sync(directory);
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw new DiskFailedException("directory fsync", directory, e);
        }
    }

    private static bool IsDiskError(Exception e) => e is (IOException and not DiskFailedException) or UnauthorizedAccessException;
}
