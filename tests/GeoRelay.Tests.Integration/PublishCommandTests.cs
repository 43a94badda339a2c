using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration;

/// <summary>`georelay publish` as a person at a terminal uses it: lines go out as they are typed, not when a batch fills.</summary>
[TestFixture]
[NonParallelizable]
public sealed class PublishCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Test]
    public async Task ALineTypedByHandIsPublishedAtOnceWhileStdinStaysOpen()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml");
        await cluster.StartAllAsync();
        var seen = System.Threading.Channels.Channel.CreateUnbounded<string>();
        using var stop = new CancellationTokenSource();
        var learning = Task.Run(async () =>
        {
            await using var learner = new GeoRelay.LearnerClient.LearnerClient(LearnerClientOptions.Default with
            {
                Endpoints = [cluster.Topology.GetNode("m1").Learners!.Value.ToString()],
                Cluster = cluster.Topology.Cluster,
                NodeId = "terminal-learner",
            });
            try
            {
                await foreach (var e in learner.SubscribeAsync(1, stop.Token))
                    if (!InternalEntries.IsInternal(e.Key.Span)) await seen.Writer.WriteAsync(Encoding.UTF8.GetString(e.Payload.Span));
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        });
        try
        {
            var publisher = cluster.Run("publish", $"publish --connect {cluster.Topology.Leader.Publish} --wait committed", keepInputOpen: true);
            foreach (var line in new[] { "first, typed by hand", "second, a while later" })
            {
                await publisher.Input.WriteLineAsync(line);
                await publisher.Input.FlushAsync();
                // stdin stays open: the line must reach a learner on its own, not wait for 511 more or for the end.
                Assert.That(await seen.Reader.ReadAsync().AsTask().WaitAsync(Patience), Is.EqualTo(line));
            }
            publisher.Input.Close();
            Assert.That(await publisher.WaitForExitAsync(Patience), Is.EqualTo(0), publisher.Output);
            Assert.That(publisher.Errors, Does.Contain("published 2 entries (committed)"));
        }
        finally
        {
            stop.Cancel();
            await learning.WaitAsync(Patience);
        }
    }
}
