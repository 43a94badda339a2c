using System.Globalization;

namespace GeoRelay.Topology;

/// <summary>
/// Sizes and durations as written in the topology file. Sizes: an integer followed by <c>B</c>,
/// <c>KiB</c>, <c>MiB</c> or <c>GiB</c> (binary units), or a plain integer meaning bytes.
/// Durations: an integer followed by <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c>, or a bare integer
/// meaning seconds (as <c>timeout 8</c> reads it). Fractions are not accepted: write <c>1500ms</c>, not <c>1.5s</c>.
/// </summary>
public static class ConfigUnits
{
    private static readonly (string Suffix, long Factor)[] SizeUnits =
        [("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("B", 1)];

    private static readonly (string Suffix, long TicksPerUnit)[] DurationUnits =
        [("ms", TimeSpan.TicksPerMillisecond), ("s", TimeSpan.TicksPerSecond), ("m", TimeSpan.TicksPerMinute), ("h", TimeSpan.TicksPerHour)];

    public static bool TryParseSize(string? text, out long bytes, out string? error)
    {
        bytes = 0;
        if (!SplitNumber(text, out long number, out string unit))
        {
            error = $"'{text}' is not a size; write an integer followed by B, KiB, MiB or GiB, e.g. 64MiB";
            return false;
        }
        if (unit.Length == 0)
        {
            bytes = number;
            error = null;
            return true;
        }
        foreach (var (suffix, factor) in SizeUnits)
        {
            if (unit == suffix)
            {
                if (number > long.MaxValue / factor)
                {
                    error = $"'{text}' is too large";
                    return false;
                }
                bytes = number * factor;
                error = null;
                return true;
            }
        }
        error = $"'{text}': unknown size unit '{unit}'; use B, KiB, MiB or GiB" + SizeHint(unit);
        return false;
    }

    /// <summary>The forms a duration may take, for error messages.</summary>
    public const string DurationForms = "seconds as a whole number (8), or a whole number followed by ms, s, m or h (500ms, 10s, 2m, 1h)";

    public static bool TryParseDuration(string? text, out TimeSpan duration, out string? error)
    {
        duration = TimeSpan.Zero;
        if (!SplitNumber(text, out long number, out string unit))
        {
            error = $"'{text}' is not a duration; write {DurationForms}";
            return false;
        }
        if (unit.Length == 0) unit = "s";
        foreach (var (suffix, ticks) in DurationUnits)
        {
            if (unit == suffix)
            {
                if (number > TimeSpan.MaxValue.Ticks / ticks)
                {
                    error = $"'{text}' is too long";
                    return false;
                }
                duration = TimeSpan.FromTicks(number * ticks);
                error = null;
                return true;
            }
        }
        error = $"'{text}': unknown duration unit '{unit}'; use ms, s, m or h, or no unit for seconds";
        return false;
    }

    /// <summary>Parses a size or throws <see cref="FormatException"/>.</summary>
    public static long ParseSize(string text) =>
        TryParseSize(text, out long bytes, out string? error) ? bytes : throw new FormatException(error);

    /// <summary>Parses a duration or throws <see cref="FormatException"/>.</summary>
    public static TimeSpan ParseDuration(string text) =>
        TryParseDuration(text, out var duration, out string? error) ? duration : throw new FormatException(error);

    /// <summary>The largest unit that divides <paramref name="bytes"/> exactly: <c>1MiB</c>, <c>1500B</c>.</summary>
    public static string FormatSize(long bytes)
    {
        if (bytes != 0)
        {
            foreach (var (suffix, factor) in SizeUnits)
            {
                if (bytes % factor == 0)
                {
                    return (bytes / factor).ToString(CultureInfo.InvariantCulture) + suffix;
                }
            }
        }
        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }

    /// <summary>The largest unit that divides <paramref name="duration"/> exactly: <c>1h</c>, <c>90s</c>.</summary>
    public static string FormatDuration(TimeSpan duration)
    {
        long ticks = duration.Ticks;
        if (ticks == 0)
        {
            return "0ms";
        }
        for (int i = DurationUnits.Length - 1; i >= 0; i--)
        {
            var (suffix, perUnit) = DurationUnits[i];
            if (ticks % perUnit == 0)
            {
                return (ticks / perUnit).ToString(CultureInfo.InvariantCulture) + suffix;
            }
        }
        return duration.TotalMilliseconds.ToString(CultureInfo.InvariantCulture) + "ms";
    }

    private static bool SplitNumber(string? text, out long number, out string unit)
    {
        number = 0;
        unit = "";
        if (text is null)
        {
            return false;
        }
        text = text.Trim();
        int digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
        {
            digits++;
        }
        if (digits == 0 || !long.TryParse(text.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out number))
        {
            return false;
        }
        unit = text[digits..].TrimStart();
        return unit.All(char.IsAsciiLetter);
    }

    private static string SizeHint(string unit) => unit.ToUpperInvariant() switch
    {
        "K" or "KB" => " (1KiB = 1024 bytes)",
        "M" or "MB" => " (1MiB = 1048576 bytes)",
        "G" or "GB" => " (1GiB = 1073741824 bytes)",
        _ => "",
    };
}
