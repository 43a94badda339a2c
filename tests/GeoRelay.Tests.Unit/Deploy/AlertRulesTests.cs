using System.Diagnostics;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Deploy;

// deploy/prometheus: the alert rules load in Prometheus, and each alert fires on the series it is for
// (georelay-alerts.test.yaml drives them through promtool's rule tests).
[TestFixture]
public sealed class AlertRulesTests
{
    private static readonly string RulesDirectory = Path.Combine(AppContext.BaseDirectory, "deploy", "prometheus");

    private static (int ExitCode, string Output) Promtool(params string[] arguments)
    {
        string promtool = File.Exists("/usr/bin/promtool") ? "/usr/bin/promtool"
            : throw new AssertionException("promtool is missing: install the Debian package prometheus (.ci/run does)");
        var info = new ProcessStartInfo(promtool) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RulesDirectory };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var run = Process.Start(info)!;
        var errors = run.StandardError.ReadToEndAsync();
        string output = run.StandardOutput.ReadToEnd();
        run.WaitForExit();
        return (run.ExitCode, output + errors.Result);
    }

    [Test]
    public void TheRulesPassPromtoolsCheck()
    {
        var (code, output) = Promtool("check", "rules", "georelay-alerts.yaml");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain("SUCCESS: 6 rules found"));
    }

    [Test]
    public void EachAlertFiresOnItsFailureAndNotBefore()
    {
        var (code, output) = Promtool("test", "rules", "georelay-alerts.test.yaml");
        Assert.That(code, Is.EqualTo(0), output);
    }
}
