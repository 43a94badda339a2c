using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.Tests.Simulation.Publishing;
using GeoRelay.Topology;
using NUnit.Framework;

// Outside GeoRelay.*, as an application would be, so the README's lines compile exactly as written.
namespace PublishersReadme;

[TestFixture, NonParallelizable]
public sealed class SdkReadmeExample
{
    private static string ReadmeDirectory => Path.Combine(AppContext.BaseDirectory, "readme");

    private static string Block(string markdown, string heading)
    {
        var block = Regex.Match(markdown, $"## {heading}\\s*```csharp\\n(.*?)```", RegexOptions.Singleline);
        Assert.That(block.Success, Is.True, $"no csharp block under '## {heading}'");
        return block.Groups[1].Value;
    }

    private static string[] Lines(string block) => block.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).ToArray();

    /// <summary>learner-client/README.md's publisher example, verbatim, against a stand-in leader on its endpoint.</summary>
    [Test, CancelAfter(20_000)]
    public async Task Sdk_readme_publisher_example_runs_as_written(CancellationToken ct)
    {
        ScriptedLeader leader;
        try { leader = new ScriptedLeader(port: 7100); }
        catch (SocketException) { Assert.Ignore("port 7100, the README's endpoint, is in use"); return; }
        await using var _ = leader;
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try
        {
            // ---- README.md, verbatim ----
            var options = PublisherClientOptions.Default with { Endpoints = ["127.0.0.1:7100"] };
            await using var publisher = await PublisherClient.ConnectAsync(options, ct);
            PublishResult done = await publisher.PublishAsync(Encoding.UTF8.GetBytes("greetings"), "hello, learners", WaitLevel.Committed);
            Console.WriteLine($"committed at index {done.FirstIndex}");
            // ---- end ----
        }
        finally
        {
            Console.SetOut(console);
        }
        Assert.That(output.ToString().Trim(), Is.EqualTo("committed at index 1"));
        var request = leader.Received.Single();
        Assert.That(request.Wait, Is.EqualTo(WaitLevel.Committed));
        Assert.That(Encoding.UTF8.GetString(request.Entries.Single().Key), Is.EqualTo("greetings"));
        Assert.That(Encoding.UTF8.GetString(request.Entries.Single().Payload), Is.EqualTo("hello, learners"));
    }

    /// <summary>
    /// The SDK README's publisher block is the one run above, its endpoint is the leader's publish port in
    /// three-regions.yaml, and its learner block is the main README's (which ReadmeLearnerExample runs).
    /// </summary>
    [Test]
    public void Sdk_readme_examples_match_the_tests_the_main_readme_and_the_sample_topology()
    {
        var sdkReadme = File.ReadAllText(Path.Combine(ReadmeDirectory, "learner-client", "README.md"));
        var test = Regex.Match(File.ReadAllText(Path.Combine(ReadmeDirectory, "SdkReadmeExample.cs")),
            "// ---- README.md, verbatim ----\\n(.*?)\\n\\s*// ---- end ----", RegexOptions.Singleline);
        var publisherBlock = Block(sdkReadme, "A publisher");
        Assert.That(Lines(test.Groups[1].Value), Is.EqualTo(Lines(publisherBlock)), "learner-client/README.md and SdkReadmeExample.cs differ");
        Assert.That(Lines(Block(sdkReadme, "A learner in five lines")),
            Is.EqualTo(Lines(Block(File.ReadAllText(Path.Combine(ReadmeDirectory, "README.md")), "A learner in five lines"))),
            "the SDK README's learner example is not the main README's");

        var topology = TopologyLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "samples", "three-regions.yaml")).GetConfigOrThrow();
        var endpoint = Regex.Match(publisherBlock, "\"(127\\.0\\.0\\.1:\\d+)\"").Groups[1].Value;
        Assert.That(endpoint, Is.EqualTo(topology.Leader.Publish!.Value.ToString()), "the example publishes to the sample leader's publish port");
    }
}
