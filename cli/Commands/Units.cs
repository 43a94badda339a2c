using System.Globalization;

namespace GeoRelay.Cli;

/// <summary>Numbers as the status command and the demo print them (invariant culture).</summary>
internal static class Units
{
    public static string Bytes(long n) => n switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{n / (double)(1L << 30):0.0} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{n / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{n / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{n} B"),
    };

    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
    public static string Count(ulong n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Seconds as a short human duration: µs, ms or s.</summary>
    public static string Duration(double seconds) => seconds switch
    {
        double.NaN => "-",
        < 1e-3 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e6:0} µs"),
        < 1 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1e3:0.0} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds:0.00} s"),
    };
}

/// <summary>Command-line options shared by several commands.</summary>
internal static partial class DurationOption
{
    [System.Text.RegularExpressions.GeneratedRegex(@"^\d+:\d\d:\d\d(\.\d+)?$")]
    private static partial System.Text.RegularExpressions.Regex FullTimeSpanPattern();

    private static readonly System.Text.RegularExpressions.Regex FullTimeSpan = FullTimeSpanPattern();

    /// <summary>
    /// A duration option taking what the topology file takes (`8` seconds, `500ms`, `10s`, `2m`) or a full TimeSpan
    /// (`00:00:10`). Anything else, `1:30` say (minutes or hours?), is refused with the accepted forms.
    /// </summary>
    public static System.CommandLine.Option<TimeSpan> Create(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description + $" [default: {GeoRelay.Topology.ConfigUnits.FormatDuration(defaultValue)}]",
        HelpName = "duration",
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (GeoRelay.Topology.ConfigUnits.TryParseDuration(text, out var duration, out _)) return duration;
            if (FullTimeSpan.IsMatch(text) && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration)) return duration;
            result.AddError($"{name}: '{text}' is not a duration; write {GeoRelay.Topology.ConfigUnits.DurationForms}, or hh:mm:ss");
            return defaultValue;
        },
    };
}
