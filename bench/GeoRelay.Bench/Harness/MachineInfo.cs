using System.Runtime.InteropServices;

namespace GeoRelay.Bench.Harness;

/// <summary>What a results file says about the machine it was measured on.</summary>
public static class MachineInfo
{
    public static IEnumerable<string> Describe()
    {
        yield return $"- date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC";
        yield return $"- cores (nproc): {Environment.ProcessorCount}";
        yield return $"- CPU: {CpuModel()}";
        yield return $"- runtime: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}";
        yield return $"- load average (1/5/15 min, at the end): {LoadAverage()}";
        yield return $"- GC: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, build: {BuildConfiguration()}";
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                    return line[(line.IndexOf(':') + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        return "unknown";
    }

    private static string LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return $"{fields[0]} / {fields[1]} / {fields[2]}";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string BuildConfiguration()
    {
#if DEBUG
        return "Debug (numbers are not meaningful)";
#else
        return "Release";
#endif
    }
}
