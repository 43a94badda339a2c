using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace GeoRelay.TestUtilities;

/// <summary>
/// A real `georelay` process started from the build output (georelay.dll next to the running assembly), with its
/// output captured; the integration tests and the cross-region benchmark start their daemons with it, and the
/// integration tests the samples too (<c>program</c>).
/// </summary>
public sealed partial class GeoRelayProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();
    private readonly object _gate = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Done)> _waiters = new();
    private readonly bool _keepInputOpen;

    public string Name { get; }
    public int Id => _process.Id;

    /// <param name="environment">
    /// Variables set for the process on top of this one's, e.g. <c>GEORELAY_PROTOCOL_MAX=2</c> for a node that speaks the
    /// previous protocol version's wire format.
    /// </param>
    /// <param name="launcher">
    /// A command the process is started through, which must exec its arguments in place (so the process's id is
    /// georelay's and signals reach it), e.g. <c>["ip", "netns", "exec", "ns1"]</c>; null for none.
    /// </param>
    /// <param name="keepInputOpen">Leave stdin open for <see cref="Input"/> (after <paramref name="stdin"/>, if any, is written).</param>
    /// <param name="onStdoutLine">Called with each stdout line as it arrives (on the reader's thread), before it is kept.</param>
    /// <param name="program">
    /// Another program of the build output to run instead of georelay, by its assembly's file name (e.g. <c>kv-mirror.dll</c>,
    /// a sample the test project references); null for georelay.
    /// </param>
    public GeoRelayProcess(string name, string arguments, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyList<string>? launcher = null, bool keepInputOpen = false, Action<string>? onStdoutLine = null, string? program = null)
    {
        Name = name;
        _keepInputOpen = keepInputOpen;
        var dll = Path.Combine(AppContext.BaseDirectory, program ?? "georelay.dll");
        string command = $"\"{dll}\" {arguments}";
        var info = launcher is { Count: > 0 }
            ? new ProcessStartInfo(launcher[0], string.Join(" ", launcher.Skip(1).Select(Quote)) + " dotnet " + command)
            : new ProcessStartInfo("dotnet", command);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.RedirectStandardInput = stdin is not null || keepInputOpen;
        info.UseShellExecute = false;
        info.Environment["DOTNET_gcServer"] = "0";
        if (environment is not null)
            foreach (var (key, value) in environment) info.Environment[key] = value;
        _process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {dll}");
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null) onStdoutLine?.Invoke(e.Data);
            OnLine(e.Data);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_gate) _errors.AppendLine(e.Data);
            OnLine(e.Data);
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        if (keepInputOpen)
        {
            _process.StandardInput.AutoFlush = true;
            if (stdin is not null) _process.StandardInput.Write(stdin);
        }
        else if (stdin is not null)
        {
            _ = Task.Run(async () =>
            {
                await _process.StandardInput.WriteAsync(stdin);
                _process.StandardInput.Close();
            });
        }
    }

    private static string Quote(string argument) => argument.Contains(' ') ? $"\"{argument}\"" : argument;

    /// <summary>The process's stdin, when it was started with <c>keepInputOpen</c>: write to it, close it for end of input.</summary>
    public StreamWriter Input => _keepInputOpen
        ? _process.StandardInput
        : throw new InvalidOperationException($"{Name} was not started with keepInputOpen");

    /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output
    {
        get { lock (_gate) return _output.ToString(); }
    }

    /// <summary>What was printed to stderr alone.</summary>
    public string Errors
    {
        get { lock (_gate) return _errors.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_gate)
        {
            _output.AppendLine(line);
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                var m = _waiters[i].Pattern.Match(line);
                if (!m.Success) continue;
                _waiters[i].Done.TrySetResult(m);
                _waiters.RemoveAt(i);
            }
        }
    }

    /// <summary>How much output there is so far: a mark for <see cref="WaitForLineAsync"/> to look only past.</summary>
    public int OutputMark
    {
        get { lock (_gate) return _output.Length; }
    }

    /// <summary>
    /// Waits for an output line matching <paramref name="pattern"/>; lines already printed count, those before
    /// <paramref name="since"/> (an <see cref="OutputMark"/>) excepted.
    /// </summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan timeout, int since = 0)
    {
        var regex = new Regex(pattern);
        TaskCompletionSource<Match> done;
        lock (_gate)
        {
            foreach (var line in _output.ToString(since, _output.Length - since).Split('\n'))
            {
                var m = regex.Match(line);
                if (m.Success) return m;
            }
            done = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((regex, done));
        }
        try
        {
            return await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Name} printed no line matching /{pattern}/ within {timeout.TotalSeconds} s; its output:\n{Output}");
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds} s; its output:\n{Output}");
        }
        _process.WaitForExit(); // flushes the redirected output
        return _process.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>SIGTERM: the daemon drains and stops.</summary>
    public Task<int> TerminateAsync(TimeSpan timeout)
    {
        if (!_process.HasExited) SysKill(_process.Id, 15);
        return WaitForExitAsync(timeout);
    }

    /// <summary>SIGHUP: a daemon with an auth section reloads its token keys and revocations.</summary>
    public void HangUp()
    {
        if (!_process.HasExited) SysKill(_process.Id, 1);
    }

    /// <summary>SIGKILL: no chance to flush anything.</summary>
    public void Kill()
    {
        if (!_process.HasExited) SysKill(_process.Id, 9);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) Kill(); } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
