using System.Net;
using GeoRelay.Wan;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>One emulated link per pair of regions; every connection that crosses regions goes through one of them.</summary>
public sealed class WanMesh(Scenario scenario) : IAsyncDisposable
{
    private readonly Dictionary<(string, string), WanLink> _links = new();

    /// <summary>
    /// The endpoint a node in <paramref name="from"/> dials to reach <paramref name="target"/> in <paramref name="to"/>.
    /// Pass <paramref name="listenPort"/> from the same batch of free ports as the daemons' own, or the kernel may hand
    /// a port chosen for a daemon that has not started yet to the link.
    /// </summary>
    public IPEndPoint Route(string from, string to, IPEndPoint target, int listenPort = 0)
    {
        if (from == to) return target;
        var key = Key(from, to);
        var any = new IPEndPoint(IPAddress.Loopback, listenPort);
        if (_links.TryGetValue(key, out var link)) return link.AddRoute(any, target);
        var spec = scenario.FindLink(from, to)!;
        link = WanLink.Start(any, target, new WanLinkOptions
        {
            OneWayDelay = TimeSpan.FromMilliseconds(spec.DelayMs),
            Jitter = TimeSpan.FromMilliseconds(spec.JitterMs),
            BandwidthBytesPerSecond = (long)(spec.BandwidthMbps * 1e6),
            // Room for a second of traffic at 100 MB/s in flight: the bandwidth-delay product never limits a link.
            MaxBufferedBytes = 32 << 20,
        }, $"{key.Item1}<->{key.Item2}");
        _links[key] = link;
        return link.ListenEndPoint;
    }

    public WanLink? Link(string a, string b) => _links.GetValueOrDefault(Key(a, b));

    /// <summary>Bytes that crossed any region boundary so far, both directions.</summary>
    public long CrossingBytes => _links.Values.Sum(l => l.Counters.TotalBytes);

    public IEnumerable<WanLink> Links => _links.Values;

    private static (string, string) Key(string a, string b) => string.CompareOrdinal(a, b) < 0 ? (a, b) : (b, a);

    public async ValueTask DisposeAsync()
    {
        foreach (var link in _links.Values) await link.DisposeAsync();
    }
}
