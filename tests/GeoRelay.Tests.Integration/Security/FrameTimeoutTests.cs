using System.Buffers.Binary;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using NUnit.Framework;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>
/// frame-timeout on a real member: a client that starts a frame and then sends a byte at a time (each byte resetting
/// the idle timer) is cut; one that sends whole frames just as slowly, each finished in time, stays.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class FrameTimeoutTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static byte[] Heartbeat() => HostileClient.Frame(FrameType.Heartbeat, w =>
    {
        var delta = new DeltaState();
        new Heartbeat(0, 0, 1).Write(w, ref delta);
    });

    [Test]
    public async Task DribbledFrameIsCutAtTheFrameTimeoutWhileSlowWholeFramesAreNot()
    {
        using var cluster = new ClusterFixture("two-nodes.yaml", yaml => yaml.Replace("idle-timeout: 1h", "idle-timeout: 1h\n  frame-timeout: 2"));
        Assert.That(cluster.Topology.Defaults.FrameTimeout, Is.EqualTo(TimeSpan.FromSeconds(2)), "a bare number is seconds");
        var m1 = cluster.StartNode("m1");
        await m1.WaitForLineAsync("Listening for Learner", Patience);
        var learnerPort = cluster.Topology.GetNode("m1").Learners!.Value.ToEndPoint();
        static byte[] HelloOf(string id, string cluster) => HostileClient.HelloFrame(Hello.ForThisBuild(id, NodeKind.Learner, 0, cluster, 0, Capabilities.None));

        await using var dribbler = await HostileClient.ConnectAsync(learnerPort);
        await dribbler.SendAsync(HelloOf("dribbler", cluster.Topology.Cluster));
        Assert.That(await dribbler.WaitForWelcomeAsync(Patience), Is.True);
        await using var honest = await HostileClient.ConnectAsync(learnerPort);
        await honest.SendAsync(HelloOf("honest", cluster.Topology.Cluster));
        Assert.That(await honest.WaitForWelcomeAsync(Patience), Is.True);

        // The dribbler declares a 200-byte frame and sends it a byte every 250 ms (50 s in all) until it is cut.
        var head = new byte[FrameHeader.Size];
        BinaryPrimitives.WriteUInt32LittleEndian(head, 200);
        head[4] = (byte)FrameType.Heartbeat;
        await dribbler.SendAsync(head);
        using var stop = new CancellationTokenSource();
        var dribbling = Task.Run(async () =>
        {
            try
            {
                for (int i = 0; i < 200 && !stop.IsCancellationRequested; i++)
                {
                    await Task.Delay(250, stop.Token); // the hostile client's own pacing
                    await dribbler.SendAsync(new byte[] { 0 });
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
        });
        // Meanwhile the honest client sends 40 heartbeats a byte at a time, 20 ms apart: each frame takes a fraction of
        // the frame timeout, all of them together several times it.
        var frame = Heartbeat();
        for (int n = 0; n < 40; n++)
        {
            for (int i = 0; i < frame.Length; i++)
            {
                await honest.SendAsync(frame.AsMemory(i, 1));
                await Task.Delay(20);
            }
        }
        Assert.That(await dribbler.WaitForHangUpAsync(Patience), Is.EqualTo(CodecError.Timeout));
        stop.Cancel();
        await dribbling;
        await m1.WaitForLineAsync(@"Cut dribbler at .* \(FrameTimeout\): a frame begun \d+ ms ago is still incomplete \(\d+ bytes received\); frame-timeout is 2000 ms", Patience);

        // The honest client leaves on its own: the member saw it close, never cut it.
        await honest.DisposeAsync();
        await m1.WaitForLineAsync("Disconnected from honest at .*: None: peer closed the connection", Patience);
        Assert.That(m1.Output, Does.Not.Contain("Cut honest"));
    }
}
