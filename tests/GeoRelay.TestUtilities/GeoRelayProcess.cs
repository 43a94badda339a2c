using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace GeoRelay.TestUtilities;

/// <summary>
/// A real `georelay` process started from the build output (georelay.dll next to the running assembly), with its
/// output captured; the integration tests and the cross-region benchmark start their daemons with it.
/// </summary>
public sealed partial class GeoRelayProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();
    private readonly object _gate = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Done)> _waiters = new();

    public string Name { get; }
    public int Id => _process.Id;

    /// <param name="streamInput">Keep stdin open for <see cref="Input"/> (a publisher fed at a pace) instead of writing <paramref name="stdin"/> and closing it.</param>
    public GeoRelayProcess(string name, string arguments, string? stdin = null, IReadOnlyDictionary<string, string>? environment = null, bool streamInput = false)
    {
        Name = name;
        var dll = Path.Combine(AppContext.BaseDirectory, "georelay.dll");
        var info = new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null || streamInput,
            UseShellExecute = false,
        };
        info.Environment["DOTNET_gcServer"] = "0";
        if (environment is not null)
            foreach (var (key, value) in environment) info.Environment[key] = value;
        _process = Process.Start(info) ?? throw new InvalidOperationException("could not start georelay");
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_gate) _errors.AppendLine(e.Data);
            OnLine(e.Data);
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        if (stdin is not null && !streamInput)
        {
            _ = Task.Run(async () =>
            {
                await _process.StandardInput.WriteAsync(stdin);
                _process.StandardInput.Close();
            });
        }
    }

    /// <summary>The process's stdin, when started with <c>streamInput</c>; close it to end the input.</summary>
    public StreamWriter Input => _process.StandardInput;

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

    /// <summary>Waits for an output line matching <paramref name="pattern"/> (already printed ones count).</summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan timeout)
    {
        var regex = new Regex(pattern);
        TaskCompletionSource<Match> done;
        lock (_gate)
        {
            foreach (var line in _output.ToString().Split('\n'))
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
