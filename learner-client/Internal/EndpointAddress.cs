using System.Net;

namespace GeoRelay.LearnerClient.Internal;

internal static class EndpointAddress
{
    /// <summary>Parses <c>host:port</c>, <c>1.2.3.4:port</c> or <c>[::1]:port</c>.</summary>
    public static EndPoint Parse(string text)
    {
        if (IPEndPoint.TryParse(text, out var ip) && ip.Port != 0 && (text.Contains(']') || ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
            return ip;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
            throw new ArgumentException($"'{text}' is not host:port", nameof(text));
        return new DnsEndPoint(text[..colon], port);
    }

    /// <summary>Checks every address of an options list; the exception names the list.</summary>
    public static void Validate(IReadOnlyList<string> endpoints, string property)
    {
        foreach (var endpoint in endpoints)
        {
            try
            {
                Parse(endpoint ?? "");
            }
            catch (ArgumentException)
            {
                throw new ArgumentException($"'{endpoint}' is not host:port", property);
            }
        }
    }

    /// <summary>Whether two parsed addresses are the same: IP addresses by value, host names without regard to case.</summary>
    public static bool Same(EndPoint a, EndPoint b) => (a, b) switch
    {
        (IPEndPoint x, IPEndPoint y) => x.Equals(y),
        (DnsEndPoint x, DnsEndPoint y) => x.Port == y.Port && string.Equals(x.Host, y.Host, StringComparison.OrdinalIgnoreCase),
        _ => false,
    };
}
