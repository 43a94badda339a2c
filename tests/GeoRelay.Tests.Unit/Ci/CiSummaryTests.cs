using System.Diagnostics;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Ci;

// .ci/summarize decides whether CI passed: a project that printed no summary or ran no test must fail it.
[TestFixture]
public sealed class CiSummaryTests
{
    private static readonly string[] Projects = ["GeoRelay.Tests.Unit", "GeoRelay.Tests.Simulation"];

    private static string Summary(string project, int passed, int failed = 0) =>
        $"Passed!  - Failed:     {failed}, Passed:    {passed}, Skipped:     0, Total:    {passed + failed}, Duration: 5 s - {project}.dll (net10.0)";

    private static (int ExitCode, string Output, string Errors) Summarize(params string[] logLines)
    {
        string log = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(log, logLines);
            var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ci", "summarize"));
            info.ArgumentList.Add(log);
            foreach (var p in Projects) info.ArgumentList.Add(p);
            using var run = Process.Start(info)!;
            var errors = run.StandardError.ReadToEndAsync();
            string output = run.StandardOutput.ReadToEnd();
            run.WaitForExit();
            return (run.ExitCode, output.Trim(), errors.Result.Trim());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Test]
    public void EveryProjectReportingTestsPassesWithTheTotals()
    {
        var (code, output, errors) = Summarize(Summary(Projects[0], 12), "noise", Summary(Projects[1], 3));
        Assert.That((code, output, errors), Is.EqualTo((0, "15 passed, 0 failed", "")));
    }

    [Test]
    public void AProjectWithoutASummaryFailsAndIsNamed()
    {
        var (code, output, errors) = Summarize(Summary(Projects[0], 12), "The active test run was aborted. Reason: Test host process crashed");
        Assert.That((code, output), Is.EqualTo((1, "12 passed, 0 failed")));
        Assert.That(errors, Is.EqualTo("ci: GeoRelay.Tests.Simulation printed no test summary (it crashed, hung or did not run)"));
    }

    [Test]
    public void AProjectThatRanNoTestFails()
    {
        var (code, output, errors) = Summarize(Summary(Projects[0], 12), Summary(Projects[1], 0));
        Assert.That((code, output), Is.EqualTo((1, "12 passed, 0 failed")));
        Assert.That(errors, Is.EqualTo("ci: GeoRelay.Tests.Simulation ran no test"));
    }

    [Test]
    public void NoTestAtAllFailsRatherThanReportingZero()
    {
        var (code, output, _) = Summarize("Build succeeded.");
        Assert.That((code, output), Is.EqualTo((1, "0 passed, 0 failed")));
    }
}
