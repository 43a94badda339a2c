using System.Text;

namespace GeoRelay.Cli;

/// <summary>
/// Where a daemon keeps its log when no <c>--data</c> is given: a persistent state directory, never the temp
/// directory: a reboot or a tmp cleaner empties that, and a member that loses its log loses entries it acked. In order: <c>$XDG_STATE_HOME/georelay/CLUSTER/NODE</c> when XDG_STATE_HOME is set to an absolute path;
/// <c>/var/lib/georelay/CLUSTER/NODE</c> when running as root; else <c>$HOME/.local/state/georelay/CLUSTER/NODE</c>
/// (the XDG default). On Windows, <c>%LOCALAPPDATA%\georelay\CLUSTER\NODE</c>.
/// </summary>
public static class DefaultDataDirectory
{
    /// <summary>A directory and the rule that chose it (for the start-up log line).</summary>
    public readonly record struct Choice(string Path, string Source);

    /// <summary>
    /// Applies the rules above to <paramref name="environment"/>; null, with <paramref name="problem"/> saying why,
    /// when none applies (no usable HOME): the daemon then refuses to start rather than fall back to the temp directory.
    /// </summary>
    public static Choice? Resolve(string cluster, string nodeId, Func<string, string?> environment, bool isRoot, out string? problem)
    {
        problem = null;
        string tail = Path.Combine("georelay", Component(cluster), Component(nodeId));
        string? xdg = environment("XDG_STATE_HOME");
        // The XDG spec: a relative path in these variables is invalid and ignored.
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
            return new Choice(Path.Combine(xdg, tail), "$XDG_STATE_HOME");
        if (isRoot) return new Choice(Path.Combine("/var/lib", tail), "running as root: /var/lib");
        string? home = environment("HOME");
        if (!string.IsNullOrEmpty(home) && Path.IsPathRooted(home))
            return new Choice(Path.Combine(home, ".local", "state", tail), "$HOME/.local/state");
        problem = "no --data given, XDG_STATE_HOME and HOME are unset (or not absolute), and not running as root: pass --data DIR, a persistent directory for this node's log";
        return null;
    }

    /// <summary>The default for this process: its environment and user.</summary>
    public static Choice? ForThisProcess(string cluster, string nodeId, out string? problem)
    {
        if (OperatingSystem.IsWindows())
        {
            problem = null;
            string local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
            return new Choice(Path.Combine(local, "georelay", Component(cluster), Component(nodeId)), "%LOCALAPPDATA%");
        }
        return Resolve(cluster, nodeId, Environment.GetEnvironmentVariable, Environment.IsPrivilegedProcess, out problem);
    }

    /// <summary>A cluster name or node id as one safe path component (the topology does not restrict their characters).</summary>
    private static string Component(string name)
    {
        var text = new StringBuilder(name.Length);
        foreach (char c in name)
            text.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        string result = text.ToString();
        return result is "" or "." or ".." ? "_" + result : result;
    }
}
