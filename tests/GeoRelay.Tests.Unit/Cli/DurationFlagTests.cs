using System.CommandLine;
using GeoRelay.Cli.Demo;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay demo --duration 8` once ran for eight days (a bare number read as a TimeSpan's days).
[TestFixture]
public sealed class DurationFlagTests
{
    private static (TimeSpan Value, IReadOnlyList<string> Errors) ParseDemoDuration(string text)
    {
        var demo = DemoCommand.Create();
        var option = (Option<TimeSpan>)demo.Options.Single(o => o.Name == "--duration");
        var result = demo.Parse(["--duration", text]);
        var errors = result.Errors.Select(e => e.Message).ToList();
        return (errors.Count == 0 ? result.GetValue(option) : TimeSpan.Zero, errors);
    }

    [TestCase("8", 8)]
    [TestCase("8s", 8)]
    [TestCase("1500ms", 1.5)]
    [TestCase("2m", 120)]
    [TestCase("00:00:10", 10)]
    public void ABareNumberIsSecondsLikeEveryOtherDurationForm(string text, double seconds)
    {
        var (value, errors) = ParseDemoDuration(text);
        Assert.That(errors, Is.Empty);
        Assert.That(value, Is.EqualTo(TimeSpan.FromSeconds(seconds)));
    }

    [TestCase("1:30")]
    [TestCase("1.5")]
    [TestCase("8 days")]
    public void AnAmbiguousDurationIsRefusedWithTheAcceptedForms(string text)
    {
        var (_, errors) = ParseDemoDuration(text);
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0], Does.Contain($"--duration: '{text}' is not a duration; write seconds as a whole number (8)").And.Contain("hh:mm:ss"));
    }
}
