using GeoRelay.Cli;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Cli;

// `georelay config apply`'s step driver against a fake cluster whose leader, commits and catch-up move as a real one's do.
[TestFixture]
public sealed class ConfigApplyDriverTests
{
    private const string Base = """
        cluster: apply
        leader: a
        quorum: majority
        insecure: true
        defaults:
          elections: true
        datacenters:
          local:
            relays: []
            members: [b, c]
        nodes:
          a: { dc: local, publish: 127.0.0.1:7000, listen: 127.0.0.1:7001, admin: 127.0.0.1:7003 }
          b: { dc: local, publish: 127.0.0.1:7010, listen: 127.0.0.1:7011, admin: 127.0.0.1:7013 }
          c: { dc: local, publish: 127.0.0.1:7020, listen: 127.0.0.1:7021, admin: 127.0.0.1:7023 }
        """;

    private static readonly TopologyConfig Current = Valid(Base);

    /// <summary>The base file with d added to local as a voter: a non-voter first, then promoted.</summary>
    private static readonly TopologyConfig WithD = Valid(Base
        .Replace("members: [b, c]", "members: [b, c, d]")
        .Replace("  c: {", "  d: { dc: local, publish: 127.0.0.1:7030, listen: 127.0.0.1:7031, admin: 127.0.0.1:7033 }\n  c: {"));

    /// <summary>The base file without b.</summary>
    private static readonly TopologyConfig WithoutB = Valid(Base
        .Replace("members: [b, c]", "members: [c]")
        .Replace("  b: { dc: local, publish: 127.0.0.1:7010, listen: 127.0.0.1:7011, admin: 127.0.0.1:7013 }\n", ""));

    private static (ConfigApplyDriver Driver, StringWriter Output, StringWriter Error) Driver(FakeCluster cluster, TimeSpan? timeout = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var options = ConfigApplyOptions.Default with
        {
            StepTimeout = timeout ?? TimeSpan.FromSeconds(60),
            Time = cluster.Clock,
            Delay = (d, _) =>
            {
                cluster.Clock.Advance(d);
                return Task.CompletedTask;
            },
        };
        return (new ConfigApplyDriver(cluster, options, output, error), output, error);
    }

    [Test]
    public async Task ANewVoterIsAddedAsANonVoterAndPromotedOnceCaughtUpThroughAFollowersEndpoint()
    {
        var cluster = new FakeCluster(Current, leader: "a");
        var (driver, output, error) = Driver(cluster);

        int exit = await driver.ApplyAsync("127.0.0.1:7013", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(0), error.ToString());
        Assert.That(cluster.Proposals.Select(p => (p.To, p.Membership.Nodes["d"].Voter)), Is.EqualTo(new[] { ("a", false), ("a", true) }),
            "both proposed to the leader, not to the follower asked first");
        Assert.That(cluster.PromotedAtDurable, Is.GreaterThanOrEqualTo(cluster.CommitWhenCatchUpBegan), "promoted only once d held what was committed");
        Assert.That(cluster.CommittedMembership, Is.EqualTo(Membership.Of(WithD)));
        Assert.That(output.ToString(), Does.Match(@"step 1/2: add d to local as a non-voter \.\.\. committed at entry 1 \(\d+\.\d s\)"));
        Assert.That(output.ToString(), Does.Contain("catching up: d is reachable from a, durable to"));
        Assert.That(output.ToString(), Does.Match(@"step 2/2: promote d to voter once it has caught up \.\.\. committed at entry 2 \("));
    }

    [Test]
    public async Task LeadershipThatMovesBetweenAskingAndProposingIsFollowed()
    {
        var cluster = new FakeCluster(Current, leader: "a") { MoveLeaderOnProposeTo = "c" };
        var (driver, _, error) = Driver(cluster);

        int exit = await driver.ApplyAsync("127.0.0.1:7003", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(0), error.ToString());
        Assert.That(cluster.Proposals.Select(p => p.To), Is.EqualTo(new[] { "c", "c" }), "a answered 421; the driver asked c");
        Assert.That(cluster.Misdirected, Is.EqualTo(1));
    }

    [Test]
    public async Task RemovingTheVoterThatLeadsHandsLeadershipOverFirst()
    {
        var cluster = new FakeCluster(Current, leader: "b");
        var (driver, output, error) = Driver(cluster);

        int exit = await driver.ApplyAsync("127.0.0.1:7023", WithoutB, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(0), error.ToString());
        Assert.That(cluster.Transfers, Is.EqualTo(new[] { ("b", "a") }));
        Assert.That(cluster.Proposals.Select(p => p.To), Is.EqualTo(new[] { "a" }), "the removal went to the new leader");
        Assert.That(output.ToString(), Does.Match(@"step 1/2: transfer leadership from b to a \.\.\. a leads term 2 \("));
        Assert.That(cluster.CommittedMembership.Nodes.ContainsKey("b"), Is.False);
    }

    [Test]
    public async Task ARefusedStepStopsTheApplyNamingItAndARerunGoesOnFromTheCommittedMembership()
    {
        var cluster = new FakeCluster(Current, leader: "a") { Refuse = m => m.Nodes.TryGetValue("d", out var d) && d.Voter ? "quorum says no" : null };
        var (driver, output, error) = Driver(cluster);

        int exit = await driver.ApplyAsync("127.0.0.1:7003", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(output.ToString(), Does.Contain("step 2/2: promote d to voter once it has caught up ... failed"));
        Assert.That(error.ToString(), Does.Contain("step 2/2 (promote d to voter once it has caught up) failed").And.Contain("quorum says no"));
        Assert.That(error.ToString(), Does.Contain("step(s) 1-1 are committed; re-run"));
        Assert.That(cluster.CommittedMembership.Nodes["d"].Voter, Is.False, "the first step stays committed");

        cluster.Refuse = _ => null;
        (driver, output, error) = Driver(cluster);
        exit = await driver.ApplyAsync("127.0.0.1:7003", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(0), error.ToString());
        Assert.That(output.ToString(), Does.Contain("step 1/1: promote d to voter"), "the plan starts from the committed membership");
        Assert.That(cluster.CommittedMembership, Is.EqualTo(Membership.Of(WithD)));
    }

    [Test]
    public async Task AnEntryThatNeverCommitsFailsAfterTheStepTimeoutSayingNothingChanged()
    {
        var cluster = new FakeCluster(Current, leader: "a") { Commits = false };
        var (driver, _, error) = Driver(cluster, TimeSpan.FromSeconds(5));

        int exit = await driver.ApplyAsync("127.0.0.1:7003", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("step 1/2 (add d to local as a non-voter) failed").And.Contain("entry 1 not committed within 5 s"));
        Assert.That(error.ToString(), Does.Contain("nothing was changed"));
        Assert.That(cluster.Proposals, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task ANodeThatNeverCatchesUpIsNotPromoted()
    {
        var cluster = new FakeCluster(Current, leader: "a") { Reaches = id => id != "d" };
        var (driver, _, error) = Driver(cluster, TimeSpan.FromSeconds(5));

        int exit = await driver.ApplyAsync("127.0.0.1:7003", WithD, CancellationToken.None);

        Assert.That(exit, Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("d did not catch up within 5 s: d is not reachable from a"));
        Assert.That(cluster.Proposals, Has.Count.EqualTo(1), "only the non-voter was added");
    }

    [Test]
    public async Task AFileWithTheCommittedMembershipChangesNothing()
    {
        var cluster = new FakeCluster(Current, leader: "a");
        var (driver, output, _) = Driver(cluster);

        Assert.That(await driver.ApplyAsync("127.0.0.1:7003", Current, CancellationToken.None), Is.EqualTo(0));
        Assert.That(output.ToString(), Does.Contain("nothing to do"));
        Assert.That(cluster.Proposals, Is.Empty);
    }

    /// <summary>A clock that moves only when the driver waits.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    /// <summary>
    /// Voters named by their admin endpoints; the leader appends what is proposed and commits it on the second
    /// <c>/config</c> after; a node being caught up gains 40 entries per progress poll; a transfer completes on the next
    /// <c>/config</c>.
    /// </summary>
    private sealed class FakeCluster(TopologyConfig file, string leader) : IConfigAdmin
    {
        public ManualClock Clock { get; } = new();
        public List<(string To, Membership Membership)> Proposals { get; } = new();
        public List<(string From, string To)> Transfers { get; } = new();
        public Func<Membership, string?> Refuse { get; set; } = _ => null;
        public Func<string, bool> Reaches { get; set; } = _ => true;
        public bool Commits { get; init; } = true;
        public string? MoveLeaderOnProposeTo { get; init; }
        public int Misdirected { get; private set; }
        public ulong CommitWhenCatchUpBegan { get; private set; }
        public ulong PromotedAtDurable { get; private set; }
        public Membership CommittedMembership => _committed;

        private Membership _committed = Membership.Of(file);
        private ulong _committedIndex;
        private (ulong Index, Membership Membership, int PollsLeft)? _pending;
        private string _leader = leader;
        private ulong _term = 1;
        private string? _transferTo;
        private ulong _commit = 1000;
        private readonly Dictionary<string, ulong> _durable = new();

        private Membership Latest => _pending?.Membership ?? _committed;

        private string NodeOf(string admin) =>
            Latest.Nodes.Values.Concat(_committed.Nodes.Values).First(n => n.Admin?.ToString() == admin).Id;

        private string? AdminOf(string id) => Latest.Nodes.GetValueOrDefault(id)?.Admin?.ToString();

        public Task<AdminCall<ConfigReport>> ConfigAsync(string admin, CancellationToken ct)
        {
            if (_transferTo is { } to)
            {
                (_leader, _transferTo) = (to, null);
                _term++;
            }
            if (_pending is { } p && Commits)
            {
                if (p.PollsLeft > 0) _pending = p with { PollsLeft = p.PollsLeft - 1 };
                else
                {
                    (_committed, _committedIndex, _pending) = (p.Membership, p.Index, null);
                }
            }
            string node = NodeOf(admin);
            bool differs = _pending is not null;
            var report = new ConfigReport(node, _leader, AdminOf(_leader), _term, _committedIndex, _pending?.Index ?? _committedIndex,
                _committed.ToYaml(), differs ? Latest.ToYaml() : null, _committed.Voters, [], Convert.ToBase64String(_committed.Encode()),
                differs ? Convert.ToBase64String(Latest.Encode()) : null);
            return Task.FromResult(AdminCall<ConfigReport>.Of(report));
        }

        public Task<AdminCall<ConfigProposed>> ProposeAsync(string admin, Membership next, CancellationToken ct)
        {
            string node = NodeOf(admin);
            if (MoveLeaderOnProposeTo is { } moved && Misdirected == 0)
            {
                Misdirected++;
                _leader = moved;
                _term++;
            }
            if (node != _leader) return Task.FromResult(AdminCall<ConfigProposed>.Failed(421, $"{node} does not lead"));
            if (_pending is not null) return Task.FromResult(AdminCall<ConfigProposed>.Failed(503, "a change is under way"));
            if (Refuse(next) is { } why) return Task.FromResult(AdminCall<ConfigProposed>.Failed(409, why));
            if (next.Nodes.TryGetValue("d", out var d) && d.Voter && !_committed.Nodes["d"].Voter) PromotedAtDurable = _durable.GetValueOrDefault("d");
            Proposals.Add((node, next));
            ulong index = _committedIndex + 1;
            _pending = (index, next, 1);
            return Task.FromResult(AdminCall<ConfigProposed>.Of(new ConfigProposed(index, _term)));
        }

        public Task<AdminCall<ConfigProgress>> ProgressAsync(string admin, string node, CancellationToken ct)
        {
            if (NodeOf(admin) != _leader) return Task.FromResult(AdminCall<ConfigProgress>.Failed(421, "not the leader"));
            if (!_durable.ContainsKey(node)) CommitWhenCatchUpBegan = _commit;
            ulong durable = _durable[node] = Reaches(node) ? Math.Min(_commit, _durable.GetValueOrDefault(node) + 400) : 0;
            var progress = new ConfigProgress(node, Reaches(node), durable, _commit, _commit);
            _commit += 10; // the cluster keeps taking writes
            return Task.FromResult(AdminCall<ConfigProgress>.Of(progress));
        }

        public Task<AdminCall<TransferStarted>> TransferLeadershipAsync(string admin, string to, CancellationToken ct)
        {
            string node = NodeOf(admin);
            if (node != _leader) return Task.FromResult(AdminCall<TransferStarted>.Failed(409, "not the leader"));
            Transfers.Add((node, to));
            _transferTo = to;
            return Task.FromResult(AdminCall<TransferStarted>.Of(new TransferStarted(node, to, _term)));
        }
    }
}
