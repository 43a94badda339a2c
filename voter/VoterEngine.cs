using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Engines.Consensus;
using GeoRelay.Leader;
using GeoRelay.Relay;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.Topology;
using GeoRelay.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Voter;

/// <summary>How a voter runs. Every voter of a cluster should use the same election settings.</summary>
public sealed record VoterOptions
{
    public LeaderOptions Leader { get; init; } = LeaderOptions.Default;
    public LearnerFanoutOptions? Learners { get; init; }
    public bool PreVote { get; init; } = true;
    public bool CheckQuorum { get; init; } = true;

    /// <summary>Seeds the election's randomized timeouts and the voter links' back-off, with the node id mixed in (the simulator fixes it).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// How long the preferred leader must be caught up before leadership moves back to it: a voter that keeps
    /// restarting does not make leadership flap. Default: one election timeout.
    /// </summary>
    public TimeSpan? FailbackAfter { get; init; }

    public static VoterOptions Default { get; } = new();
}

/// <summary>
/// A voter (the node named by <c>leader:</c>, or a member) as one sans-IO engine. It runs Raft's election
/// (<see cref="Election"/>) with the other voters over voter links of its own (the lower id dials the higher; the
/// leader's liveness and the followers' answers travel there as <see cref="VoterBeat"/>s), and plays the role the
/// election gives it with the data path's engines: a <see cref="LeaderEngine"/> of the term it won, over the
/// topology as seen while it leads (<see cref="TopologyConfig.LedBy"/>), or a <see cref="MemberEngine"/> fenced at
/// its term. A role change closes the old role's connections; voter links stay.
/// </summary>
public sealed class VoterEngine : IEngine, IDisposable
{
    /// <summary>The topology file this node started from: the cluster's name, defaults and security never change at runtime.</summary>
    private readonly TopologyConfig _file;
    /// <summary>The configurations the log holds; <see cref="_config"/> is its newest.</summary>
    private readonly MembershipHistory _history;
    private volatile TopologyConfig _config;
    /// <summary>The newest configuration that lists this node (it keeps serving under it once removed, until stopped).</summary>
    private TopologyConfig _roleTopology;
    private int _appliedVersion;
    /// <summary>The role's engine must be rebuilt for a new configuration (once the disk is not busy for the old one).</summary>
    private bool _roleStale;
    private readonly string _self;
    private readonly IEntryLog _log;
    private readonly IEngineEnvironment _env;
    private readonly ILogger _logger;
    private readonly VoterOptions _options;
    private readonly Random _random;
    private readonly long _heartbeatMicros;
    private readonly long _failbackMicros;

    private string[] _dialed; // members this node dials for voter links (ids above its own)
    private readonly Dictionary<string, Backoff> _backoff = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dialPending = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _voterByLink = new();
    private readonly Dictionary<string, int> _linkByVoter = new(StringComparer.Ordinal);

    private readonly HashSet<int> _roleConnections = new();
    private readonly Dictionary<int, PeerInfo> _rolePeers = new();
    private MemberEngine? _member;
    private LeaderEngine? _leader;
    private IEngine? _syncOwner;
    private long _lastBeatMicros = long.MinValue / 2;
    private long _preferredCaughtUpSince = -1;
    private long _preferredCheckedAt = long.MinValue / 2;
    private ulong _preferredMark = ulong.MaxValue; // nothing is caught up before the first period
    private long _lastTickMicros;

    /// <param name="membership">Where the configurations this voter's log holds are kept (the <c>membership</c> file); memory when null.</param>
    public VoterEngine(TopologyConfig topology, string nodeId, IEntryLog log, IElectionStore store, IEngineEnvironment env,
        VoterOptions? options = null, ILogger? logger = null, IMembershipStore? membership = null)
    {
        _file = topology.AsWritten;
        _history = new MembershipHistory(_file, membership ?? new MemoryMembershipStore(), log);
        _config = _history.Latest;
        _roleTopology = _config.Nodes.TryGetValue(nodeId, out var listed) && listed.Role != NodeRole.Relay ? _config
            : _file.Nodes.TryGetValue(nodeId, out var inFile) && inFile.Role != NodeRole.Relay ? _file
            : throw new ArgumentException($"{nodeId} is not a voter (the leader or a member) of cluster '{_file.Cluster}'", nameof(nodeId));
        _self = nodeId;
        _log = log;
        _env = env;
        _logger = logger ?? NullLogger.Instance;
        _options = options ?? VoterOptions.Default;
        // Mixed with the node id: voters sharing a seed (every process's default) must still time out apart.
        _random = new Random(_options.Seed ^ (int)GeoRelay.Codec.Frames.ProtocolVersion.Fnv1a64(nodeId));
        _heartbeatMicros = (long)_file.Defaults.Heartbeat.TotalMicroseconds;
        _failbackMicros = (long)(_options.FailbackAfter ?? _file.Defaults.ElectionTimeout).TotalMicroseconds;
        var voters = _config.Voters.ToList();
        _dialed = DialedOf(_config);
        Election = new Election(_self, voters, store, new ElectionOptions
        {
            ElectionTimeout = _file.Defaults.ElectionTimeout,
            Heartbeat = _file.Defaults.Heartbeat,
            PreVote = _options.PreVote,
            CheckQuorum = _options.CheckQuorum,
            Candidates = CandidatesOf(_config),
        }, () => new LogPosition(_log.LastEpoch, _log.LastIndex), _random, env.NowMicros, selfVotes: _config.IsVoter(_self));
        _appliedVersion = _history.Version;
        // Entries of a term imply that term was reached: a restart on them never goes back below it.
        Election.ObserveTerm(_log.LastEpoch, env.NowMicros);
        _member = NewMember();
        LogElection();
    }

    /// <summary>The configuration this voter acts on: the newest its log holds (committed or not), else the file's.</summary>
    public TopologyConfig Configuration => _config;

    /// <summary>The configurations this voter knows (committed, and the newest in its log).</summary>
    public MembershipHistory Memberships => _history;

    /// <summary>This node is in no configuration's membership any more: it was removed, and may be stopped.</summary>
    public bool Removed => !_config.Nodes.ContainsKey(_self);

    /// <summary>The election state: term, role, leader, vote.</summary>
    public Election Election { get; }

    /// <summary>The leader's engine while this voter leads, else null.</summary>
    public LeaderEngine? Leader => _leader;

    /// <summary>The member's engine while this voter follows, else null.</summary>
    public MemberEngine? Member => _member;

    public string NodeId => _self;
    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello => Role.LocalHello;

    /// <summary>Role changes since start (each won election, and each step down).</summary>
    public int RoleChanges { get; private set; }

    private IEngine Role => (IEngine?)_leader ?? _member!;

    public CodecException? CheckPeer(in Hello hello, PortKind port)
    {
        if (hello.Kind == NodeKind.Voter)
        {
            if (port != PortKind.Peer) return new CodecException(CodecError.Protocol, $"voter links use the peer port, not {port}");
            if (hello.Cluster != _file.Cluster) return new CodecException(CodecError.UnknownNode, $"cluster '{hello.Cluster}' is not '{_file.Cluster}'");
            // Voters on protocol 3 may hold different configurations for a while (the log brings them together);
            // an older build knows only its file, which must then be the same.
            if (hello.TopologyHash != TopologyFingerprint.Of(_config) && !ProtocolVersion.CarriesConfiguration(hello))
                return new CodecException(CodecError.Protocol, $"topology differs: {hello.NodeId} has {hello.TopologyHash:x16}, {_self} has {TopologyFingerprint.Of(_config):x16}");
            if (!IsVoterPeer(_config, hello.NodeId) || hello.NodeId == _self)
                return new CodecException(CodecError.UnknownNode, $"{hello.NodeId} is not another voter of cluster '{_file.Cluster}'");
            if (string.CompareOrdinal(hello.NodeId, _self) > 0)
                return new CodecException(CodecError.Protocol, $"{_self} dials {hello.NodeId} for the voter link, not the other way");
            return null;
        }
        // Refused in the handshake, so a client with several endpoints goes on to the next one.
        if (port == PortKind.Publish && _leader is null)
            return hello.Kind is NodeKind.Publisher or NodeKind.Tool ? new CodecException(CodecError.NotLeader, NotLeaderMessage())
                : new CodecException(CodecError.Protocol, $"the publish port takes publishers, not {hello.Kind}");
        if (port == PortKind.Learner && _leader is not null)
            return new CodecException(CodecError.Shutdown, $"{_self} leads now and serves no learners; subscribe at a member or relay");
        if (port == PortKind.Learner && Removed)
            return new CodecException(CodecError.Shutdown, $"{_self} was removed from the cluster and is fed no more; subscribe at another member or relay");
        return Role.CheckPeer(hello, port);
    }

    public void OnConnected(int connection, PeerInfo peer)
    {
        long now = _env.NowMicros;
        if (peer.Kind == NodeKind.Voter)
        {
            _dialPending.Remove(peer.NodeId);
            if (_backoff.TryGetValue(peer.NodeId, out var b)) { b.Succeed(); _backoff[peer.NodeId] = b; }
            if (_linkByVoter.Remove(peer.NodeId, out int old))
            {
                _voterByLink.Remove(old);
                Outbox.Add(EngineCommand.Close(old, CodecError.None, "replaced by a newer voter link"));
            }
            _voterByLink[connection] = peer.NodeId;
            _linkByVoter[peer.NodeId] = connection;
            if (_leader is not null) SendBeat(connection, fromLeader: true);
            return;
        }
        if (peer.Port == PortKind.Publish && _leader is null)
        {
            // Lost its lead between the handshake and now.
            Outbox.Add(EngineCommand.Close(connection, CodecError.NotLeader, NotLeaderMessage()));
            return;
        }
        _roleConnections.Add(connection);
        _rolePeers[connection] = peer;
        Role.OnConnected(connection, peer);
        After(now);
    }

    public void OnDisconnected(int connection)
    {
        if (_voterByLink.Remove(connection, out var voter))
        {
            _linkByVoter.Remove(voter);
            Fail(voter);
            long now = _env.NowMicros;
            Election.OnLeaderLinkLost(voter, now);
            After(now);
            return;
        }
        if (!_roleConnections.Remove(connection)) return; // an old role's, or a publisher sent away
        _rolePeers.Remove(connection);
        Role.OnDisconnected(connection);
        After(_env.NowMicros);
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        // A voter link and the role's own dial may both be out to one node: each hears of a failure.
        if (_dialPending.Remove(nodeId)) Fail(nodeId);
        Role.OnDialFailed(nodeId, reason);
        After(_env.NowMicros);
    }

    public void OnFrame(int connection, in Frame frame)
    {
        long now = _env.NowMicros;
        if (_voterByLink.TryGetValue(connection, out var voter))
        {
            if (frame.Flags != FrameFlags.None)
                throw new CodecException(CodecError.Protocol, $"voter {voter} sent a {frame.Type} frame with flags {frame.Flags}; voter links are uncompressed");
            if (frame.Type == FrameType.VoterBeat) OnBeat(connection, voter, VoterBeat.Read(frame.Payload), now);
            // A voter that stops says why before it closes: not a protocol error.
            else if (frame.Type == FrameType.Error) Outbox.Add(EngineCommand.Close(connection, CodecError.None, $"voter {voter} closed the link: {ErrorFrame.Read(frame.Payload).Message}"));
            else if (ElectionMessageCodec.IsElectionFrame(frame.Type)) Election.OnMessage(ElectionMessageCodec.Read(frame.Type, frame.Payload, voter, _self), now);
            else throw new CodecException(CodecError.Protocol, $"unexpected {frame.Type} on the voter link from {voter}");
            After(now);
            return;
        }
        if (!_roleConnections.Contains(connection)) return;
        if (frame.Type == FrameType.Configuration && _member is not null)
        {
            // Our own log says which configuration we act on; the upstream's only tells us of one our log's start skipped.
            var configuration = ConfigurationFrame.Read(frame.Payload);
            _history.AdoptCommitted(configuration.Index, configuration.Epoch, configuration.Membership.ToArray());
            After(now);
            return;
        }
        Role.OnFrame(connection, frame);
        After(now);
    }

    public void OnTick()
    {
        long now = _lastTickMicros = _env.NowMicros;
        Election.OnTick(now);
        foreach (var voter in _dialed)
        {
            if (_linkByVoter.ContainsKey(voter) || _dialPending.Contains(voter)) continue;
            if (_backoff.TryGetValue(voter, out var b) && !b.Due(now)) continue;
            _dialPending.Add(voter);
            Outbox.Add(EngineCommand.DialVoter(voter));
        }
        if (_leader is not null)
        {
            if (now - _lastBeatMicros >= _heartbeatMicros)
            {
                _lastBeatMicros = now;
                foreach (var (link, _) in _voterByLink) SendBeat(link, fromLeader: true);
            }
            MoveLeadershipHome(now);
        }
        Role.OnTick();
        After(now);
    }

    public void OnSynced()
    {
        var owner = _syncOwner;
        _syncOwner = null;
        owner?.OnSynced();
        After(_env.NowMicros);
    }

    public long NextTickMicros
    {
        get
        {
            long next = Math.Min(Election.NextTickMicros, Role.NextTickMicros);
            next = Math.Min(next, _lastTickMicros + TickCadence.HousekeepingMicros(_file.Defaults.Heartbeat, _file.Defaults.FailoverAfter));
            if (_leader is not null) next = Math.Min(next, _lastBeatMicros + _heartbeatMicros);
            return next;
        }
    }

    /// <summary>
    /// Whether new publishes may go in: not while leadership is being handed over, so the target catches up and the
    /// transfer completes (Raft §3.10); the publishes wait, then go to the new leader.
    /// </summary>
    public bool TakesPublishes => _leader is { Deposed: false } && Election.TransferTarget is null;

    /// <summary>
    /// Appends one entry in process (not yet durable) while this voter leads and its window has room; returns its index,
    /// or 0 when it does not lead or has no room (then publish later, or to the leader).
    /// </summary>
    public ulong TryAppend(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, long timestampMicros)
    {
        if (_leader is not { Deposed: false, HasCapacity: true } leader || !TakesPublishes) return 0;
        ulong index = leader.Append(key, payload, timestampMicros);
        After(_env.NowMicros);
        return index;
    }

    /// <summary>Asks this voter, while it leads, to hand leadership to <paramref name="target"/> (maintenance); false when it cannot.</summary>
    public bool TransferLeadership(string target)
    {
        bool started = Election.TransferLeadership(target, _env.NowMicros);
        After(_env.NowMicros);
        return started;
    }

    private void OnBeat(int link, string voter, VoterBeat beat, long now)
    {
        if (beat.FromLeader)
        {
            Election.OnLeaderHeard(voter, beat.Term, now);
            SendBeat(link, fromLeader: false);
        }
        else if (beat.Term > Election.Term)
        {
            Election.ObserveTerm(beat.Term, now);
        }
        else if (beat.Term == Election.Term)
        {
            Election.OnVoterActive(voter, now);
        }
    }

    private void SendBeat(int link, bool fromLeader)
    {
        var buffer = FrameBuffer.Rent();
        int start = FrameWriter.Begin(buffer.Writer);
        new VoterBeat(Election.Term, fromLeader).Write(buffer.Writer);
        FrameWriter.End(buffer.Writer, start, FrameType.VoterBeat);
        Outbox.Add(EngineCommand.Send(link, buffer));
    }

    /// <summary>
    /// While another voter leads, the preferred leader (where writers sit) takes leadership back once it has been
    /// caught up for <see cref="VoterOptions.FailbackAfter"/>; a transfer under way sends TimeoutNow once its target
    /// holds everything this leader holds.
    /// </summary>
    private void MoveLeadershipHome(long now)
    {
        var leader = _leader!;
        string preferred = _config.PreferredLeaderId;
        if (Election.TransferTarget is { } target)
        {
            if (leader.Reaches(target) && leader.DurableOf(target) >= _log.LastIndex && _log.DurableIndex == _log.LastIndex) Election.SendTimeoutNow(target, now);
            return;
        }
        if (_self == preferred || !_config.CanLead(preferred)) return;
        // Under load the commit index moves on while an entry crosses the WAN, so "caught up" is judged per check period:
        // the preferred leader holds, durably, what was committed one period ago.
        if (now - _preferredCheckedAt < 2 * _heartbeatMicros) return;
        bool caughtUp = _linkByVoter.ContainsKey(preferred) && leader.Reaches(preferred) && leader.DurableOf(preferred) >= _preferredMark;
        _preferredCheckedAt = now;
        _preferredMark = leader.CommitIndex;
        if (!caughtUp) { _preferredCaughtUpSince = -1; return; }
        if (_preferredCaughtUpSince < 0) _preferredCaughtUpSince = now;
        if (now - _preferredCaughtUpSince >= _failbackMicros)
        {
            _preferredCaughtUpSince = -1;
            Election.TransferLeadership(preferred, now);
        }
    }

    /// <summary>
    /// The log now holds another configuration (appended, truncated away, or installed): votes and commits count its
    /// voters from now on, voter links follow its members, and the role's engine is rebuilt under it.
    /// </summary>
    private void ApplyConfiguration(long now)
    {
        _appliedVersion = _history.Version;
        var config = _config = _history.Latest;
        var voters = config.Voters.ToList();
        Election.Reconfigure(voters, CandidatesOf(config), now);
        _dialed = DialedOf(config);
        foreach (var (voter, link) in _linkByVoter.ToList())
        {
            if (IsVoterPeer(config, voter)) continue;
            _linkByVoter.Remove(voter);
            _voterByLink.Remove(link);
            Outbox.Add(EngineCommand.Close(link, CodecError.None, $"{voter} is no longer a member of the cluster"));
        }
        bool listed = config.Nodes.TryGetValue(_self, out var self) && self.Role != NodeRole.Relay;
        if (listed) _roleTopology = config;
        // A leader's engine is rebuilt (its routes, slots and quorum follow the membership); a member's is updated in place.
        if (listed && _member is not null) _member.Reconfigure(config);
        _roleStale = listed && _leader is not null;
        // Removed, it is fed no more: its learners resume where they will be.
        if (!listed) _member?.Learners.CloseAll($"{_self} was removed from the cluster; resume at another member or relay");
        VoterLog.Reconfigured(_logger, _self, _history.LatestIndex, _history.CommittedIndex, string.Join(", ", voters),
            listed ? (Election.SelfVotes ? "a voter" : "a non-voter") : "removed");
    }

    /// <summary>Any member (voting or not) has voter links: a non-voter hears who leads from them.</summary>
    private static bool IsVoterPeer(TopologyConfig config, string node) =>
        config.Nodes.TryGetValue(node, out var n) && n.Role != NodeRole.Relay;

    private string[] DialedOf(TopologyConfig config) =>
        config.Nodes.Values.Where(n => n.Role != NodeRole.Relay && string.CompareOrdinal(n.Id, _self) > 0).Select(n => n.Id).Order(StringComparer.Ordinal).ToArray();

    private static HashSet<string> CandidatesOf(TopologyConfig config) => config.Voters.Where(config.CanLead).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Leader: appends <paramref name="next"/> as the cluster's membership, as one configuration entry, and acts on it at
    /// once; returns its index, or 0 with <paramref name="refusal"/> saying why not. Safe changes only (Raft §4.1): the
    /// voters change by at most one, no other configuration entry is uncommitted, this leader has committed an entry of
    /// its term (so a change a deposed leader left behind cannot combine with this one), and this leader stays a voter
    /// (hand leadership over first).
    /// </summary>
    public ulong ProposeMembership(Membership next, out string? refusal)
    {
        refusal = MembershipRefusal(next);
        if (refusal is not null)
        {
            After(_env.NowMicros); // a no-op it appended to commit its term goes out
            return 0;
        }
        if (next.Equals(_history.LatestMembership)) return _history.LatestIndex;
        ulong index = _leader!.AppendConfiguration(next.Encode());
        After(_env.NowMicros);
        return index;
    }

    private string? MembershipRefusal(Membership next)
    {
        if (_leader is not { Deposed: false } leader || Election.Role != RaftRole.Leader)
            return NotLeaderMessage();
        if (Election.TransferTarget is { } target) return $"leadership is being handed to {target}; retry once it leads";
        if (!leader.CommittedOwnEpoch)
        {
            leader.EnsureOwnEpochEntry();
            return $"{_self} has not yet committed an entry of term {Election.Term}; retry shortly";
        }
        if (_history.Uncommitted > 0)
            return $"configuration entry {_history.LatestIndex} is not committed yet (commit index {leader.CommitIndex}); one change at a time";
        if (_file.Quorum.Kind == QuorumKind.Count)
            return $"quorum: {_file.Quorum} is a fixed count; membership changes need 'majority' or 'all', whose quorums overlap from one configuration to the next";
        if (next.Problems(_file) is { Count: > 0 } problems) return "the membership is not valid: " + string.Join("; ", problems);
        var before = _config.Voters.ToHashSet(StringComparer.Ordinal);
        var after = next.Voters.ToHashSet(StringComparer.Ordinal);
        int changed = before.Count(v => !after.Contains(v)) + after.Count(v => !before.Contains(v));
        if (changed > 1)
            return $"it changes {changed} voters at once ({string.Join(", ", before.Except(after).Select(v => "-" + v).Concat(after.Except(before).Select(v => "+" + v)))}); one at a time (`georelay config apply` splits it into steps)";
        if (!after.Contains(_self)) return $"it removes {_self}, which leads: hand leadership to another voter first";
        // Relays number members by position; a leader sets aside a report whose count is not its own (see docs/consensus.md),
        // so members change position only with a change of count.
        foreach (var dc in next.Datacenters)
            if (_config.TryGetDatacenter(dc.Name, out var now) && now.Members.Count == dc.Members.Count && !now.Members.SequenceEqual(dc.Members, StringComparer.Ordinal))
                return $"it changes the members of {dc.Name} or their order without changing how many there are; add and remove them in separate steps";
        return null;
    }

    /// <summary>Leader: where <paramref name="node"/> stands (reachable, durable index), for promotion once it has caught up.</summary>
    public (bool Reachable, ulong Durable, ulong Last, ulong Commit)? ProgressOf(string node) =>
        _leader is { } leader ? (leader.Reaches(node), leader.DurableOf(node), _log.LastIndex, leader.CommitIndex) : null;

    /// <summary>
    /// The term this voter last led and the commit index it reached there (null if it never led since it started): kept
    /// when the leader's engine is dropped, so a leader that commits and steps down at once is still seen to have committed.
    /// </summary>
    public (ulong Term, ulong Commit)? LastLed { get; private set; }

    /// <summary>After every call: send what the election and the role want sent, log what the election did, and follow its verdict.</summary>
    private void After(long now)
    {
        if (_leader is { } led)
            LastLed = (led.Epoch, LastLed is { } last && last.Term == led.Epoch ? Math.Max(last.Commit, led.CommitIndex) : led.CommitIndex);
        if (_member is { } member)
        {
            if (member.HighestEpoch > Election.Term) Election.ObserveTerm(member.HighestEpoch, now);
            member.ObserveEpoch(Election.Term);
        }
        if (_leader is { Deposed: true } && Election.Role == RaftRole.Leader)
            Election.StepDown("a node has a later epoch", now);
        DrainRole();
        _history.OnCommitted(_leader?.CommitIndex ?? _member?.CommitIndex ?? 0);
        if (_history.Version != _appliedVersion) ApplyConfiguration(now);
        if (_leader is { Deposed: false } && !Election.SelfVotes && _history.Uncommitted == 0)
            Election.StepDown("this node is no longer a voter: the configuration that removed it is committed", now); // Raft §4.2.2
        foreach (var message in Election.Outbox)
        {
            if (!_linkByVoter.TryGetValue(message.To, out int link)) continue; // lost, as Raft allows; the sender retries
            var buffer = FrameBuffer.Rent();
            int start = FrameWriter.Begin(buffer.Writer);
            ElectionMessageCodec.WritePayload(buffer.Writer, message);
            FrameWriter.End(buffer.Writer, start, ElectionMessageCodec.FrameTypeOf(message.Kind));
            Outbox.Add(EngineCommand.Send(link, buffer));
        }
        Election.Outbox.Clear();
        LogElection();
        Reconcile(now);
    }

    private void Reconcile(long now)
    {
        bool leads = Election.Role == RaftRole.Leader;
        bool sameRole = leads == (_leader is not null) && (!leads || _leader!.Epoch == Election.Term);
        if (sameRole && !_roleStale) return;
        // Stop acknowledging at once; the engines themselves change once the disk is not busy for the old one.
        if (!leads) _leader?.StopLeading();
        if (_syncOwner is not null) return;
        // A leader rebuilt for a new membership in its own term keeps what it knew committed, and its publishers.
        var before = sameRole ? _leader : null;
        ulong knownCommit = before?.CommitIndex ?? 0;
        var keep = new HashSet<int>();
        if (before is not null) foreach (var (connection, peer) in _rolePeers) if (peer.Port == PortKind.Publish) keep.Add(connection);
        CloseRoleConnections(!sameRole ? (leads ? "this node leads now" : "this node no longer leads") : "the cluster's membership changed", keep);
        var old = Role as IDisposable;
        _member = null;
        _leader = null;
        _roleStale = false;
        if (!sameRole) RoleChanges++;
        if (leads)
        {
            _leader = new LeaderEngine(_roleTopology.LedBy(_self), Election.Term, _log, _env, _options.Leader with
            {
                Seed = _options.Seed ^ (int)Election.Term, SendBeforeDurable = true, LogObserver = _history, KnownCommit = knownCommit,
                Configuration = new ConfigurationFrame(_history.LatestIndex, _history.LatestEpoch, _history.LatestMembership.Hash, _history.LatestMembership.Encode()),
            }, _logger);
            before?.HandOverPublishers(_leader); // before the old engine releases its links
            old?.Dispose();
            _lastBeatMicros = long.MinValue / 2;
            VoterLog.Leads(_logger, _self, Election.Term, _log.LastIndex);
        }
        else
        {
            old?.Dispose();
            _member = NewMember();
            VoterLog.Follows(_logger, _self, Election.Term, Election.Leader ?? "unknown");
        }
        DrainRole();
    }

    private MemberEngine NewMember()
    {
        var member = new MemberEngine(_roleTopology, _self, _log, _env, _options.Learners, _logger, _history);
        member.ObserveEpoch(Election.Term);
        return member;
    }

    private void CloseRoleConnections(string why, IReadOnlySet<int> keep)
    {
        var code = _leader is not null && keep.Count == 0 ? CodecError.NotLeader : CodecError.Shutdown;
        foreach (int connection in _roleConnections)
            if (!keep.Contains(connection))
                Outbox.Add(EngineCommand.Close(connection, code, code == CodecError.NotLeader ? NotLeaderMessage() : why));
        _roleConnections.RemoveWhere(c => !keep.Contains(c));
        foreach (var connection in _rolePeers.Keys.ToList()) if (!keep.Contains(connection)) _rolePeers.Remove(connection);
    }

    private void DrainRole()
    {
        var outbox = Role.Outbox;
        foreach (var command in outbox)
        {
            if (command.Kind == CommandKind.Sync) _syncOwner = Role;
            Outbox.Add(command);
        }
        outbox.Clear();
    }

    private string NotLeaderMessage() =>
        Election.Leader is { } leader && leader != _self && _config.Nodes.TryGetValue(leader, out var leaderNode) && leaderNode.Publish is { } at
            ? $"{_self} does not lead; {leader} leads term {Election.Term}, publish at {at}"
            : Election.Leader is { } known && known != _self
                ? $"{_self} does not lead; {known} leads term {Election.Term}"
                : $"{_self} does not lead, and no leader is known in term {Election.Term}; retry shortly";

    private void Fail(string voter)
    {
        _backoff.TryGetValue(voter, out var b);
        b.Fail(_env.NowMicros, 50_000, 1_000_000, _random);
        _backoff[voter] = b;
    }

    private void LogElection()
    {
        foreach (var e in Election.Events) VoterLog.Election(_logger, e.Kind, e.Term, e.Node, e.Peer ?? "-", e.Reason ?? "");
        Election.Events.Clear();
    }

    public void Dispose()
    {
        (Role as IDisposable)?.Dispose();
    }
}

internal static partial class VoterLog
{
    [LoggerMessage(EventId = 903, Level = LogLevel.Warning, Message = "{Node} acts on the configuration of entry {Index} (committed through entry {Committed}): voters {Voters}; this node is {Standing}")]
    public static partial void Reconfigured(ILogger logger, string node, ulong index, ulong committed, string voters, string standing);

    [LoggerMessage(EventId = 900, Level = LogLevel.Information, Message = "Election: {Kind} in term {Term} at {Node} (peer {Peer}) {Reason}")]
    public static partial void Election(ILogger logger, ElectionEventKind kind, ulong term, string node, string peer, string reason);

    [LoggerMessage(EventId = 901, Level = LogLevel.Warning, Message = "{Node} leads term {Term}; its log ends at {Last}")]
    public static partial void Leads(ILogger logger, string node, ulong term, ulong last);

    [LoggerMessage(EventId = 902, Level = LogLevel.Warning, Message = "{Node} follows in term {Term} (leader: {Leader})")]
    public static partial void Follows(ILogger logger, string node, ulong term, string leader);
}
