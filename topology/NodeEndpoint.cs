using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace GeoRelay.Topology;

/// <summary>
/// A <c>host:port</c> address from the topology file: an IPv4 address, a bracketed IPv6 address
/// (<c>[::1]:7000</c>) or a host name. IP addresses are kept in canonical form and host names in
/// lower case, so two spellings of the same address compare equal.
/// </summary>
public readonly record struct NodeEndpoint(string Host, int Port)
{
    /// <summary>True when <see cref="Host"/> is an IPv6 literal (printed in brackets).</summary>
    public bool IsIPv6 => Host.Contains(':');

    /// <summary>
    /// True for addresses only this machine can reach: 127.0.0.0/8, <c>::1</c> and <c>localhost</c>. A wildcard
    /// (<c>0.0.0.0</c>, <c>::</c>) or any other host name is not: it may be reachable from elsewhere.
    /// </summary>
    public bool IsLoopback =>
        IPAddress.TryParse(Host, out var address) ? IPAddress.IsLoopback(address) : Host == "localhost";

    /// <summary>Parses <c>host:port</c>; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string? text, out NodeEndpoint endpoint, out string? error)
    {
        endpoint = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = "expected host:port, found nothing";
            return false;
        }

        string host;
        string portText;
        if (text[0] == '[')
        {
            int close = text.IndexOf(']');
            if (close < 0)
            {
                error = $"'{text}': missing ']' after the IPv6 address";
                return false;
            }
            host = text[1..close];
            if (close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}': missing ':port' after ']'";
                return false;
            }
            portText = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{text}': '{host}' is not an IPv6 address";
                return false;
            }
            host = v6.ToString();
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                error = $"'{text}': missing ':port'";
                return false;
            }
            if (text.IndexOf(':') != colon)
            {
                error = $"'{text}': an IPv6 address needs brackets, as in [::1]:7000";
                return false;
            }
            host = text[..colon];
            portText = text[(colon + 1)..];
            if (host.Length == 0)
            {
                error = $"'{text}': missing host before ':'";
                return false;
            }
            if (LooksLikeIPv4(host))
            {
                if (!IPAddress.TryParse(host, out var v4) || v4.AddressFamily != AddressFamily.InterNetwork
                    || host.Split('.').Length != 4)
                {
                    error = $"'{text}': '{host}' is not an IPv4 address";
                    return false;
                }
                host = v4.ToString();
            }
            else if (Uri.CheckHostName(host) != UriHostNameType.Dns)
            {
                error = $"'{text}': '{host}' is not a valid host name";
                return false;
            }
            else
            {
                host = host.ToLowerInvariant();
            }
        }

        if (portText.Length == 0 || portText.Length > 5 || !portText.All(char.IsAsciiDigit)
            || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535)
        {
            error = $"'{text}': port must be a number from 1 to 65535";
            return false;
        }

        endpoint = new NodeEndpoint(host, port);
        error = null;
        return true;
    }

    /// <summary>
    /// Parses an admin address: <c>host:port</c>, or a bare port (<c>9100</c> or <c>:9100</c>), which means
    /// <c>127.0.0.1:port</c>. The admin endpoint listens beyond this machine only where a host says so.
    /// </summary>
    public static bool TryParseAdmin(string? text, out NodeEndpoint endpoint, out string? error)
    {
        var trimmed = text?.Trim() ?? "";
        var port = trimmed.StartsWith(':') ? trimmed[1..] : trimmed;
        if (port.Length == 0 || !port.All(char.IsAsciiDigit)) return TryParse(text, out endpoint, out error);
        if (!TryParse("127.0.0.1:" + port, out endpoint, out _))
        {
            error = $"'{trimmed}': port must be a number from 1 to 65535";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>Parses <c>host:port</c> or throws <see cref="FormatException"/>.</summary>
    public static NodeEndpoint Parse(string text) =>
        TryParse(text, out var endpoint, out var error) ? endpoint : throw new FormatException(error);

    /// <summary>An <see cref="IPEndPoint"/> for IP literals, a <see cref="DnsEndPoint"/> for host names.</summary>
    public EndPoint ToEndPoint() =>
        IPAddress.TryParse(Host, out var address) ? new IPEndPoint(address, Port) : new DnsEndPoint(Host, Port);

    public override string ToString() => IsIPv6 ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    // Only digits and dots: meant as an IPv4 address, so a typo like 127.0.0.256 is reported as such
    // instead of being accepted as a (numeric) host name.
    private static bool LooksLikeIPv4(string host)
    {
        foreach (char c in host)
        {
            if (c != '.' && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
