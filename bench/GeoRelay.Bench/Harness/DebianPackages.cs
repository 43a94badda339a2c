using System.Diagnostics;

namespace GeoRelay.Bench.Harness;

/// <summary>Installs a Debian package through apt-get when the tool a benchmark needs is missing.</summary>
public static class DebianPackages
{
    /// <summary>
    /// Returns <paramref name="binary"/> once it exists, installing <paramref name="package"/> first if it does
    /// not (apt-get install, and apt-get update then install again if the package lists are stale). Throws
    /// with apt-get's output when that fails, e.g. when not root.
    /// </summary>
    public static string Require(string binary, string package)
    {
        if (File.Exists(binary)) return binary;
        Console.WriteLine($"{binary} is missing; installing Debian package {package}");
        var (code, output) = AptGet($"install -y --no-install-recommends {package}");
        if (code != 0)
        {
            AptGet("update");
            (code, output) = AptGet($"install -y --no-install-recommends {package}");
        }
        if (code != 0 || !File.Exists(binary))
            throw new InvalidOperationException($"apt-get install {package} failed (exit {code}) and {binary} is still missing:\n{output}");
        return binary;
    }

    private static (int Code, string Output) AptGet(string arguments)
    {
        var start = new ProcessStartInfo("apt-get", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start apt-get");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
