using System.Net.Sockets;

namespace GeoRelay.TestUtilities;

/// <summary>
/// A directory entry that lists as a file but fails every open with a real I/O error (ENXIO, "No such device or
/// address"), deterministically and for root too (tests run as root, so permissions stop nothing): a Unix socket's
/// file. Stands in for a segment the disk cannot give back.
/// </summary>
public static class UnreadableFile
{
    public static void Create(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string bound = path + ".sock";
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(bound));
        // Moved away before the socket closes: .NET deletes the file it bound when it does.
        File.Move(bound, path);
    }
}
