using System.Net.Sockets;
using System.Text;
using GeoRelay.LearnerClient;
using GeoRelay.Tests.Simulation.Learners;
using NUnit.Framework;

// Outside GeoRelay.*, as an application would be, so the README's lines compile exactly as written.
namespace LearnersReadme;

[TestFixture, NonParallelizable]
public sealed class ReadmeLearnerExample
{
    /// <summary>Console output that cancels the example once it printed the last entry served.</summary>
    private sealed class StopAtLine(string last, CancellationTokenSource stop) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value == last) stop.Cancel();
        }
    }

    /// <summary>README.md's "A learner in five lines", verbatim, run against a relay stand-in on its first endpoint.</summary>
    [Test, CancelAfter(20_000)]
    public async Task Readme_learner_example_runs_as_written(CancellationToken testToken)
    {
        ScriptedRelay relay;
        try { relay = new ScriptedRelay(100, port: 7301); }
        catch (SocketException) { Assert.Ignore("port 7301, the README's first endpoint, is in use"); return; }
        await using var _ = relay;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(testToken);
        var ct = stop.Token;
        var output = new StopAtLine("100: entry-100", stop);
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            // ---- README.md, verbatim ----
            var options = new LearnerClientOptions { Endpoints = ["127.0.0.1:7301", "127.0.0.1:7302"] };
            await using var learner = await LearnerClient.ConnectAsync(options, ct);
            await foreach (LearnerEntry e in learner.SubscribeAsync(fromIndex: 1, ct))
                Console.WriteLine($"{e.Index}: {Encoding.UTF8.GetString(e.Payload.Span)}");
            // After any reconnect it resumes at the last index + 1: every entry exactly once, in order.
            // ---- end ----
        }
        catch (OperationCanceledException) when (!testToken.IsCancellationRequested)
        {
        }
        finally
        {
            Console.SetOut(console);
        }
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines, Has.Length.EqualTo(100));
        for (int i = 0; i < lines.Length; i++) Assert.That(lines[i], Is.EqualTo($"{i + 1}: entry-{i + 1}"));
    }
}
