using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace GeoRelay.Server.Security;

/// <summary>One blacklisted address range; <see cref="Until"/> null means until removed (or the node restarts).</summary>
public sealed record BlacklistEntry(IPNetwork Range, DateTimeOffset Added, DateTimeOffset? Until)
{
    public bool Contains(IPAddress address) => Range.Contains(Normalize(address));

    internal static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    public override string ToString() => Until is { } until ? $"{Range} until {until:u}" : $"{Range}";
}

/// <summary>
/// Addresses and ranges whose connections a node refuses on its learner and publish ports, set through the admin
/// endpoint. Kept in memory only: a restart forgets it (a firewall is the place for blocks that must last). Read by
/// every accept, changed by admin requests: one lock, held briefly.
/// </summary>
public sealed class AddressBlacklist(TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly object _gate = new();
    private readonly List<BlacklistEntry> _entries = new();

    /// <summary>
    /// Parses an address (<c>10.1.2.3</c>, <c>::1</c>) or a CIDR range (<c>10.0.0.0/8</c>, <c>fd00::/8</c>); on failure
    /// <paramref name="error"/> says what is wrong with the text.
    /// </summary>
    public static bool TryParseRange(string? text, out IPNetwork range, out string? error)
    {
        range = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = "expected an address or a CIDR range such as 10.0.0.0/8, found nothing";
            return false;
        }
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out var address) || (address.AddressFamily == AddressFamily.InterNetwork && addressText.Split('.').Length != 4))
        {
            error = $"'{text}': '{addressText}' is not an IPv4 or IPv6 address";
            return false;
        }
        address = BlacklistEntry.Normalize(address);
        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int prefix = bits;
        if (slash >= 0)
        {
            string prefixText = text[(slash + 1)..];
            if (prefixText.Length is 0 or > 3 || !prefixText.All(char.IsAsciiDigit)
                || !int.TryParse(prefixText, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits)
            {
                error = $"'{text}': the prefix length after '/' must be a number from 0 to {bits} for an {(bits == 32 ? "IPv4" : "IPv6")} address";
                return false;
            }
        }
        range = new IPNetwork(Masked(address, prefix), prefix);
        if (!range.BaseAddress.Equals(address))
        {
            error = $"'{text}': {address} has bits set past the first {prefix}; the range is written {range}";
            return false;
        }
        error = null;
        return true;
    }

    private static IPAddress Masked(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(prefix - i * 8, 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }

    /// <summary>Adds <paramref name="range"/> (replacing an entry for the same range) for <paramref name="duration"/>, or for good when null.</summary>
    public BlacklistEntry Add(IPNetwork range, TimeSpan? duration)
    {
        if (duration is { } d && d <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(duration), d, "a blacklist duration must be longer than 0");
        var now = _clock.GetUtcNow();
        var entry = new BlacklistEntry(range, now, now + duration);
        lock (_gate)
        {
            _entries.RemoveAll(e => e.Range.Equals(range));
            _entries.Add(entry);
        }
        return entry;
    }

    /// <summary>Removes the entry for exactly <paramref name="range"/> and returns it; null when there is none (or it had lapsed).</summary>
    public BlacklistEntry? Remove(IPNetwork range)
    {
        lock (_gate)
        {
            DropExpired();
            int i = _entries.FindIndex(e => e.Range.Equals(range));
            if (i < 0) return null;
            var removed = _entries[i];
            _entries.RemoveAt(i);
            return removed;
        }
    }

    /// <summary>The entries in force, oldest first.</summary>
    public IReadOnlyList<BlacklistEntry> Entries()
    {
        lock (_gate)
        {
            DropExpired();
            return _entries.ToArray();
        }
    }

    /// <summary>The entry in force that covers <paramref name="address"/>, or null.</summary>
    public BlacklistEntry? Match(IPAddress? address)
    {
        if (address is null) return null;
        lock (_gate)
        {
            if (_entries.Count == 0) return null;
            DropExpired();
            foreach (var e in _entries)
                if (e.Contains(address)) return e;
            return null;
        }
    }

    /// <summary>What a refused or cut client is told.</summary>
    public static string Refusal(IPAddress address, BlacklistEntry entry) =>
        $"address {BlacklistEntry.Normalize(address)} is blacklisted on this node ({entry.Range}" +
        (entry.Until is { } until ? $", until {until:u})" : ", until an operator removes it)");

    private void DropExpired()
    {
        var now = _clock.GetUtcNow();
        _entries.RemoveAll(e => e.Until is { } until && until <= now);
    }
}
