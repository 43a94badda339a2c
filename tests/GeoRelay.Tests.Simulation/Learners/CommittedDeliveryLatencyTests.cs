using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Relay;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using GeoRelay.TestUtilities.Sim;
using GeoRelay.Tests.Simulation.Sim;
using GeoRelay.Transport;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Learners;

/// <summary>
/// Committed delivery across a slow WAN link (the three-region sample, us-east 50 ms one way from eu-west, ap-south 100 ms
/// from both; virtual time). A commit needs 5 of the 8 members' acks: us-east's two and three more from across the WAN.
/// The leader cannot know an entry committed before eu-west's acks come back (one round trip), and its commit index
/// reaches eu-west one more one-way delay later. eu-west's relay hears its own members first, and with the voters'
/// progress on the leader's batches it sees the quorum itself.
/// </summary>
[TestFixture]
public sealed class CommittedDeliveryLatencyTests
{
    private const long UsToEuMicros = 50_000;
    private const long ApMicros = 100_000;

    [Test]
    public void ARemoteLearnerGetsAnEntryOneWayDelayAfterTheLeaderWroteIt()
    {
        var (index, waited, leaderCommit) = TimeOneEntry(olderRelay: false);
        Assert.That(leaderCommit, Is.LessThan(index), "the leader did not know the entry committed yet when the learner got it");
        Assert.That(waited, Is.LessThan(UsToEuMicros + 10_000), "one one-way delay, plus linger and local hops");
    }

    /// <summary>A relay of a build without <see cref="Capabilities.VoterProgress"/> is sent none, and waits for the commit index.</summary>
    [Test]
    public void ARelayOfAnOlderBuildWaitsForTheLeadersCommitIndex()
    {
        var (index, waited, leaderCommit) = TimeOneEntry(olderRelay: true);
        Assert.That(leaderCommit, Is.GreaterThanOrEqualTo(index));
        Assert.That(waited, Is.GreaterThanOrEqualTo(3 * UsToEuMicros), "acks to the leader, and its commit index back");
    }

    /// <summary>Publishes one entry on a warmed-up, quiet cluster; returns its index, the virtual time until eu-west's learner had it, and the leader's commit index then.</summary>
    private static (ulong Index, long WaitedMicros, ulong LeaderCommit) TimeOneEntry(bool olderRelay)
    {
        var c = SimulatedClusterTests.Build(21, acrossRegions: (a, b) => a == "ap-south" || b == "ap-south" ? ApMicros : UsToEuMicros);
        if (olderRelay)
            c.Network.Restart("eu-p1", new OlderBuild(new RelayEngine(c.Topology, "eu-p1", new MemoryLog(), new SimEnvironment(c.Network.Clock), seed: 21),
                Capabilities.VoterProgress));
        const string learnerId = "eu-learner";
        var learner = new SimLearner(learnerId, 1);
        c.Placement[learnerId] = "eu-west";
        c.Network.Add(learnerId, learner);
        c.Network.Connect(learnerId, "eu-p1", PortKind.Learner);

        SimulatedClusterTests.Publish(c, 1, 21);
        SimulatedClusterTests.RunUntil(c, () => learner.Next > 1 && SimulatedClusterTests.Converged(c, 1), 5_000);
        for (int i = 0; i < 500; i++) c.Network.Step(); // every ack and commit of the first entry has landed

        SimulatedClusterTests.Publish(c, 1, 21);
        ulong index = c.Leader.LastIndex;
        long written = c.Network.Clock.NowMicros;
        SimulatedClusterTests.RunUntil(c, () => learner.Next > index, 5_000);
        Assert.That(learner.Entries[^1].Index, Is.EqualTo(index));
        long waited = c.Network.Clock.NowMicros - written;
        TestContext.Out.WriteLine($"entry {index} reached eu-west's learner {waited / 1000.0} ms after it was written; the leader's commit index was {c.Leader.CommitIndex}");
        return (index, waited, c.Leader.CommitIndex);
    }

    /// <summary>An engine that greets as a build without <paramref name="missing"/> would: a peer of an older version.</summary>
    private sealed class OlderBuild(IEngine engine, Capabilities missing) : IEngine
    {
        public List<EngineCommand> Outbox => engine.Outbox;
        public Hello LocalHello => engine.LocalHello with { Capabilities = engine.LocalHello.Capabilities & ~missing };
        public CodecException? CheckPeer(in Hello hello, PortKind port) => engine.CheckPeer(hello, port);
        public void OnConnected(int connection, PeerInfo peer) => engine.OnConnected(connection, peer);
        public void OnDisconnected(int connection) => engine.OnDisconnected(connection);
        public void OnDialFailed(string nodeId, string reason) => engine.OnDialFailed(nodeId, reason);
        public void OnFrame(int connection, in Frame frame) => engine.OnFrame(connection, frame);
        public void OnTick() => engine.OnTick();
        public void OnSynced() => engine.OnSynced();
        public long NextTickMicros => engine.NextTickMicros;
    }
}
