using System.Net;
using GeoRelay.Engines;

namespace GeoRelay.Server.Security;

/// <summary>
/// Open connections per listening port and per remote address on that port, against their limits. Addresses are
/// counted per port so a flood on the learner port cannot starve the peer port of its leader.
/// </summary>
internal sealed class ConnectionCounts(int maxPerPort, int maxPerAddress)
{
    private readonly object _gate = new();
    private readonly int[] _perPort = new int[4];
    private readonly Dictionary<(PortKind, IPAddress), int> _perAddress = new();

    public int OnPort(PortKind port)
    {
        lock (_gate) return _perPort[(int)port];
    }

    /// <summary>Counts a new connection in, or returns null (and which limit is full) when it may not open.</summary>
    public IPAddress? TryOpen(PortKind port, IPAddress? remote, out RefusalKind full)
    {
        var address = remote is null ? IPAddress.None : remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote;
        lock (_gate)
        {
            full = RefusalKind.PortFull;
            if (_perPort[(int)port] >= maxPerPort) return null;
            _perAddress.TryGetValue((port, address), out int count);
            full = RefusalKind.AddressFull;
            if (count >= maxPerAddress) return null;
            _perPort[(int)port]++;
            _perAddress[(port, address)] = count + 1;
            return address;
        }
    }

    public void Close(PortKind port, IPAddress address)
    {
        lock (_gate)
        {
            _perPort[(int)port]--;
            if (_perAddress.TryGetValue((port, address), out int count) && count > 1) _perAddress[(port, address)] = count - 1;
            else _perAddress.Remove((port, address));
        }
    }
}
