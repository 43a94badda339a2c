using GeoRelay.Engines;
using GeoRelay.Engines.Consensus;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Voter;
using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Hosting;

/// <summary>
/// A voter (the preferred leader or a member, with <c>elections: true</c>) on real sockets: its segment log, its
/// durable term and vote (<c>term-vote</c> beside the log), and a <see cref="VoterEngine"/> that leads or follows as
/// the election decides. Peers and other voters dial its listen port, learners its learner port, publishers its
/// publish port (answered with NotLeader while it follows).
/// </summary>
public sealed class VoterNode : IAsyncDisposable
{
    private readonly IEntryLog _log;

    /// <summary>The node's log (a <see cref="KeyedLog"/> with keyed compaction).</summary>
    public IEntryLog Log => _log;
    private readonly ILogger _logger;
    private volatile bool _draining;

    public VoterEngine Engine { get; }
    public EngineHost Host { get; }
    public TopologyConfig Topology { get; }
    public string NodeId { get; }
    public System.Net.EndPoint? PublishEndPoint { get; }
    public bool Draining => _draining;

    public VoterNode(TopologyConfig topology, string nodeId, string dataDirectory, VoterOptions? options, ILoggerFactory loggers)
    {
        Topology = topology;
        NodeId = nodeId;
        var node = topology.GetNode(nodeId);
        var logger = _logger = loggers.CreateLogger("georelay.voter");
        _log = NodeSetup.OpenLog(topology, dataDirectory, topology.Defaults.Fsync,
            progress => logger.LogInformation("Recovery: {Progress}", progress));
        var store = new FileElectionStore(dataDirectory, topology.Defaults.Fsync);
        // Peers are found in the configuration the log holds now, which membership changes move past the file.
        Host = new EngineHost(id => NodeSetup.Resolver(Engine?.Configuration ?? topology)(id), NodeSetup.Connections(topology, topology.Defaults.Window * 2),
            loggers.CreateLogger("georelay.transport"), security: NodeSetup.Security(topology, nodeId));
        Engine = new VoterEngine(topology, nodeId, _log, store, Host, options, logger, new FileMembershipStore(dataDirectory, topology.Defaults.Fsync));
        ReportFileDifferences(logger);
        Host.Attach(Engine);
        Host.PublishCapacity = () => !_draining && (Engine.Leader is not { } leader || (leader.HasCapacity && Engine.TakesPublishes));
        Host.Listen(node.Listen!.Value.ToEndPoint(), PortKind.Peer);
        if (node.Learners is { } learners) Host.Listen(learners.ToEndPoint(), PortKind.Learner);
        if (node.Publish is { } publish) PublishEndPoint = Host.Listen(publish.ToEndPoint(), PortKind.Publish);
        Host.Start();
    }

    /// <summary>Term, role, leader and vote, read under the engine lock.</summary>
    public (ulong Term, RaftRole Role, string? Leader, string? VotedFor, int RoleChanges) ElectionState() =>
        Host.Invoke(_ => (Engine.Election.Term, Engine.Election.Role, Engine.Election.Leader, Engine.Election.VotedFor, Engine.RoleChanges));

    /// <summary>Asks this voter, if it leads, to hand leadership to <paramref name="target"/>; false when it cannot.</summary>
    public bool TransferLeadership(string target) => Host.Invoke(_ => Engine.TransferLeadership(target));

    /// <summary>
    /// A clean stop: a leader hands leadership to a caught-up voter first (so writes move on within a round trip
    /// instead of an election timeout), a member makes what it appended durable and acks it, both within
    /// <paramref name="bound"/>. Returns whether that finished in time.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan bound)
    {
        if (Host.Failure is not null) return false;
        _draining = true;
        bool leads = Host.Invoke(_ => Engine.Leader is not null);
        if (leads)
        {
            string? target = Host.Invoke(_ => BestSuccessor());
            if (target is null || !TransferLeadership(target)) return false;
            HostingLog.VoterHandingOver(_logger, NodeId, target);
            return await EngineWaits.UntilAsync(Host, () => Engine.Leader is null || Engine.Election.TransferTarget is null, bound).ConfigureAwait(false)
                && Host.Invoke(_ => Engine.Leader is null);
        }
        Host.Invoke(_ => { Engine.Member?.BeginDrain(); return 0; });
        return await EngineWaits.UntilAsync(Host, () => Engine.Member?.Drained ?? true, bound).ConfigureAwait(false);
    }

    /// <summary>The voter that may lead and holds the most of this leader's log (ties: file order).</summary>
    private string? BestSuccessor()
    {
        var leader = Engine.Leader!;
        string? best = null;
        ulong bestDurable = 0;
        var config = Engine.Configuration;
        foreach (var voter in config.Voters)
        {
            if (voter == NodeId || !config.CanLead(voter) || !leader.Reaches(voter)) continue;
            ulong durable = leader.DurableOf(voter);
            if (best is null || durable > bestDurable) (best, bestDurable) = (voter, durable);
        }
        return best;
    }

    /// <summary>
    /// A node restarted with a file the log has since changed (or an operator's edited copy) keeps the log's configuration,
    /// and says what differs, so that a file contradicting the cluster is seen rather than silently obeyed or ignored.
    /// </summary>
    private void ReportFileDifferences(ILogger logger)
    {
        var history = Engine.Memberships;
        if (history.LatestIndex == 0) return;
        var changes = MembershipDiff.Between(Membership.Of(Topology), history.LatestMembership);
        if (changes.Count == 0) return;
        HostingLog.FileDiffersFromLog(logger, Topology.SourcePath, history.LatestIndex, history.CommittedIndex,
            string.Join("; ", changes.Select(c => c.ToString())));
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync().ConfigureAwait(false);
        try
        {
            Host.Invoke(_ => { if (Host.Failure is null) _log.Flush(); return 0; });
        }
        catch (DiskFailedException) { } // logged by the host
        Host.Invoke(_ => { Engine.Dispose(); return 0; });
        try { _log.Dispose(); }
        catch (DiskFailedException e) { Host.ReportDiskFailure(e); }
    }
}
