using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Topology;
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
        try { relay = new ScriptedRelay(100, port: 7302); }
        catch (SocketException) { Assert.Ignore("port 7302, the README's first endpoint, is in use"); return; }
        await using var _ = relay;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(testToken);
        var ct = stop.Token;
        var output = new StopAtLine("100: entry-100", stop);
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            // ---- README.md, verbatim ----
            var options = new LearnerClientOptions { Endpoints = ["127.0.0.1:7302", "127.0.0.1:7312"] };
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

    /// <summary>The block above is README.md's, line for line, and its endpoints are learner ports of one datacenter's relays in three-regions.yaml.</summary>
    [Test]
    public void Readme_learner_example_matches_the_readme_and_the_sample_topology()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "readme");
        var readme = Regex.Match(File.ReadAllText(Path.Combine(dir, "README.md")), "## A learner in five lines\\s*```csharp\\n(.*?)```", RegexOptions.Singleline);
        Assert.That(readme.Success, Is.True, "README.md has no csharp block under '## A learner in five lines'");
        var test = Regex.Match(File.ReadAllText(Path.Combine(dir, "ReadmeExample.cs")), "// ---- README.md, verbatim ----\\n(.*?)\\n\\s*// ---- end ----", RegexOptions.Singleline);
        static string[] Lines(string block) => block.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).ToArray();
        Assert.That(Lines(test.Groups[1].Value), Is.EqualTo(Lines(readme.Groups[1].Value)), "README.md and ReadmeExample.cs differ");

        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        var endpoints = Regex.Matches(readme.Groups[1].Value, "\"(127\\.0\\.0\\.1:\\d+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.That(endpoints, Is.Not.Empty);
        var nodes = endpoints.Select(e => topology.Nodes.Values.SingleOrDefault(n => n.Learners?.ToString() == e)).ToList();
        for (int i = 0; i < endpoints.Count; i++)
            Assert.That(nodes[i], Is.Not.Null, $"{endpoints[i]} is not any node's learner port in three-regions.yaml");
        Assert.That(nodes.Select(n => n!.Datacenter).Distinct().Count(), Is.EqualTo(1), "the example's endpoints should be one datacenter's");
        Assert.That(nodes.Select(n => n!.Role), Is.All.EqualTo(NodeRole.Relay), "the example subscribes to relays");
    }
}
