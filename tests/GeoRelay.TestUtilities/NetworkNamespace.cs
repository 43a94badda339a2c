using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace GeoRelay.TestUtilities;

/// <summary>
/// A network namespace joined to the root one by a veth pair (<see cref="HostAddress"/> on the root side,
/// <see cref="InnerAddress"/> inside), so a real process can be cut off by a real network fault: <see cref="Partition"/>
/// has nftables drop every packet on the namespace's end of the pair, both ways (silence: no reset, no ICMP), and
/// <see cref="Heal"/> lets them through again. Loopback inside the namespace is untouched. Needs CAP_NET_ADMIN, `ip`
/// (iproute2) and `nft` (nftables); <see cref="TryCreate"/> says which is missing. Dispose deletes the namespace and
/// the pair.
/// </summary>
public sealed class NetworkNamespace : IDisposable
{
    private const string Table = "georelay_partition";
    private static readonly TimeSpan CommandPatience = TimeSpan.FromSeconds(20);
    private static int s_created;

    private readonly string _hostLink;
    private readonly string _innerLink;
    private bool _disposed;

    /// <summary>The namespace's name (<c>{prefix}-{pid}-{n}</c>).</summary>
    public string Name { get; }

    /// <summary>The root side's address on the pair, 10.231.N.1.</summary>
    public string HostAddress { get; }

    /// <summary>The namespace side's address on the pair, 10.231.N.2.</summary>
    public string InnerAddress { get; }

    /// <summary>Whether <see cref="Partition"/> is in force.</summary>
    public bool Partitioned { get; private set; }

    /// <summary>The command that runs a program inside the namespace (it execs in place, so the pid is the program's).</summary>
    public IReadOnlyList<string> Launcher => ["ip", "netns", "exec", Name];

    private NetworkNamespace(string name, string hostLink, string innerLink, int subnet)
    {
        Name = name;
        _hostLink = hostLink;
        _innerLink = innerLink;
        HostAddress = $"10.231.{subnet}.1";
        InnerAddress = $"10.231.{subnet}.2";
    }

    /// <summary>
    /// Creates the namespace and its pair, or returns null with <paramref name="whyNot"/> saying what this machine lacks
    /// (not root, no CAP_NET_ADMIN, no `ip` or `nft`); nothing is left behind then.
    /// </summary>
    public static NetworkNamespace? TryCreate(string prefix, out string whyNot)
    {
        if (Run("nft", ["--version"]) is { Exit: not 0 } nft)
        {
            whyNot = $"nft (Debian package nftables) does not run here: {nft.Output}";
            return null;
        }
        var addresses = Run("ip", ["-o", "-4", "addr", "show"]);
        if (addresses.Exit != 0)
        {
            whyNot = $"ip (Debian package iproute2) does not run here: {addresses.Output}";
            return null;
        }
        // A /30 no interface here uses yet, so two runs at once (other checkouts) do not share one.
        var used = Regex.Matches(addresses.Output, @"10\.231\.(\d+)\.").Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();
        int pid = Environment.ProcessId;
        int subnet = Enumerable.Range(0, 250).Select(i => 1 + (pid + i) % 250).FirstOrDefault(n => !used.Contains(n));
        if (subnet == 0)
        {
            whyNot = "every 10.231.N.0/30 subnet is in use";
            return null;
        }
        int n = Interlocked.Increment(ref s_created);
        // Interface names have at most 15 characters.
        var ns = new NetworkNamespace($"{prefix}-{pid}-{n}", $"gr{pid}x{n}h", $"gr{pid}x{n}n", subnet);
        var add = Run("ip", ["netns", "add", ns.Name]);
        if (add.Exit != 0)
        {
            whyNot = $"cannot create a network namespace (needs root or CAP_NET_ADMIN): ip netns add {ns.Name}: {add.Output}";
            return null;
        }
        try
        {
            ns.Ip("link", "add", ns._hostLink, "type", "veth", "peer", "name", ns._innerLink);
            ns.Ip("link", "set", ns._innerLink, "netns", ns.Name);
            ns.Ip("addr", "add", ns.HostAddress + "/30", "dev", ns._hostLink);
            ns.Ip("link", "set", ns._hostLink, "up");
            ns.Ip("-n", ns.Name, "addr", "add", ns.InnerAddress + "/30", "dev", ns._innerLink);
            ns.Ip("-n", ns.Name, "link", "set", ns._innerLink, "up");
            ns.Ip("-n", ns.Name, "link", "set", "lo", "up");
        }
        catch (InvalidOperationException e)
        {
            ns.Dispose();
            whyNot = $"cannot wire the namespace {ns.Name}: {e.Message}";
            return null;
        }
        whyNot = "";
        return ns;
    }

    /// <summary>Drops every packet in and out of the namespace's end of the pair, silently, until <see cref="Heal"/>.</summary>
    public void Partition()
    {
        string rules = $$"""
            table inet {{Table}} {
              chain input { type filter hook input priority filter; policy accept; iifname "{{_innerLink}}" drop; }
              chain output { type filter hook output priority filter; policy accept; oifname "{{_innerLink}}" drop; }
            }
            """;
        Check(Run("ip", ["netns", "exec", Name, "nft", "-f", "-"], rules + "\n"), "nft -f - (the partition)");
        Partitioned = true;
    }

    /// <summary>Lets packets through again.</summary>
    public void Heal()
    {
        Check(Run("ip", ["netns", "exec", Name, "nft", "delete", "table", "inet", Table]), "nft delete table (the heal)");
        Partitioned = false;
    }

    /// <summary>
    /// Deletes the namespace and the pair. Stop the processes inside first: a namespace with a process in it lives on
    /// (with its end of the pair) until that process exits.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Run("ip", ["netns", "delete", Name]);
        // Gone with the namespace when nothing runs in it any more; deleted here otherwise.
        if (Run("ip", ["link", "show", _hostLink]).Exit == 0) Run("ip", ["link", "delete", _hostLink]);
    }

    private void Ip(params string[] arguments) => Check(Run("ip", arguments), "ip " + string.Join(" ", arguments));

    private static void Check((int Exit, string Output) result, string what)
    {
        if (result.Exit != 0) throw new InvalidOperationException($"{what} failed ({result.Exit}): {result.Output}");
    }

    /// <summary>Runs a command to its end (bounded); exit code and stdout+stderr. A program that is missing exits 127.</summary>
    private static (int Exit, string Output) Run(string file, IReadOnlyList<string> arguments, string? stdin = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new Win32Exception($"could not start {file}");
        }
        catch (Win32Exception e)
        {
            return (127, $"{file}: {e.Message}");
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            if (stdin is not null)
            {
                process.StandardInput.Write(stdin);
                process.StandardInput.Close();
            }
            if (!process.WaitForExit(CommandPatience))
            {
                process.Kill();
                return (-1, $"{file} {string.Join(" ", arguments)} did not finish within {CommandPatience.TotalSeconds} s");
            }
            return (process.ExitCode, (output.Result + errors.Result).Trim());
        }
    }
}
