using System.Diagnostics;
using GeoRelay.Cli;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Deploy;

// deploy/systemd: what an operator copies to /etc/systemd/system. systemd-analyze checks the units, and the
// georelay command line checks that ExecStart names real commands and flags.
[TestFixture]
public sealed class SystemdUnitTests
{
    private static readonly string UnitDirectory = Path.Combine(AppContext.BaseDirectory, "deploy", "systemd");

    private static IEnumerable<string> Units() =>
        Directory.GetFiles(UnitDirectory, "*.service").Select(Path.GetFileName)!;

    /// <summary>Templates (name@.service) are checked as an instance, the way systemd would load them.</summary>
    private static string InstanceName(string unit) => unit.Replace("@.service", "@eu-p1.service", StringComparison.Ordinal);

    [Test]
    public void TheLeaderRelayAndMemberUnitsAreShipped() =>
        Assert.That(Units(), Is.EquivalentTo(new[] { "georelay-leader.service", "georelay-relay@.service", "georelay-member@.service" }));

    [TestCaseSource(nameof(Units))]
    public void SystemdAcceptsTheUnitWithoutAWarning(string unit)
    {
        string analyze = File.Exists("/usr/bin/systemd-analyze") ? "/usr/bin/systemd-analyze"
            : throw new AssertionException("systemd-analyze is missing: install the Debian package systemd (.ci/run does)");
        string scratch = Directory.CreateTempSubdirectory("georelay-units-").FullName;
        try
        {
            string path = Path.Combine(scratch, InstanceName(unit));
            File.Copy(Path.Combine(UnitDirectory, unit), path);
            var info = new ProcessStartInfo(analyze) { RedirectStandardError = true, RedirectStandardOutput = true };
            info.ArgumentList.Add("verify");
            info.ArgumentList.Add(path);
            using var verify = Process.Start(info)!;
            string errors = verify.StandardError.ReadToEnd() + verify.StandardOutput.ReadToEnd();
            verify.WaitForExit();
            Assert.That((verify.ExitCode, errors.Trim()), Is.EqualTo((0, "")), "systemd-analyze verify " + unit);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [TestCaseSource(nameof(Units))]
    public void ExecStartIsAValidGeoRelayCommandLine(string unit)
    {
        string execStart = File.ReadLines(Path.Combine(UnitDirectory, unit)).Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal));
        string[] words = execStart["ExecStart=".Length..].Replace("%i", "eu-p1", StringComparison.Ordinal)
            .Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(words[..2], Is.EqualTo(new[] { "/usr/bin/dotnet", "/opt/georelay/georelay.dll" }));
        var parse = GeoRelayCommandLine.Create().Parse(words[2..]);
        Assert.That(parse.Errors.Select(e => e.Message), Is.Empty, execStart);
        Assert.That(parse.CommandResult.Command.Name, Is.EqualTo(unit.Split('-', '@', '.')[1]));
    }
}
