using NUnit.Framework;
using GeoRelay.Topology;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// One test per validation rule: a file that breaks it, and the exact position and wording reported.
// Line numbers refer to TopologyTestFiles.Small (ldr on line 10, a2 on line 15).
[TestFixture]
public sealed class TopologyLoaderRuleTests
{
    [Test]
    public void SmallTopologyIsValidAndRolesFollowFromTheLists()
    {
        var config = Valid(Small);
        Assert.Multiple(() =>
        {
            Assert.That(config.Cluster, Is.EqualTo("test"));
            Assert.That(config.Leader.Role, Is.EqualTo(NodeRole.Leader));
            Assert.That(config.Nodes["p1"].Role, Is.EqualTo(NodeRole.Relay));
            Assert.That(config.Nodes["a2"].Role, Is.EqualTo(NodeRole.Member));
            Assert.That(config.LeaderDatacenter.Name, Is.EqualTo("home"));
            Assert.That(config.Datacenters.Select(d => d.Name), Is.EqualTo(new[] { "home", "away" }));
            Assert.That(config.Datacenters.Select(d => d.IsLeaderDatacenter), Is.EqualTo(new[] { true, false }));
            Assert.That(config.GetDatacenter("away").Relays, Is.EqualTo(new[] { "p1", "p2" }));
            Assert.That(config.AllMembers.Select(n => n.Id), Is.EqualTo(new[] { "h1", "a1", "a2" }));
            Assert.That(config.Quorum, Is.EqualTo(QuorumSpec.Majority));
            Assert.That(config.RequiredAcks, Is.EqualTo(2));
            Assert.That(config.Defaults, Is.EqualTo(ClusterDefaults.Default));
            Assert.That(config.Nodes["a1"].Learners, Is.EqualTo(new NodeEndpoint("127.0.0.1", 7042)));
            Assert.That(config.Nodes["a2"].Learners, Is.Null);
            Assert.That(config.SourcePath, Is.EqualTo("t.yaml"));
        });
    }

    [Test]
    public void TheOldProxiesKeyStillReadsAsRelays()
    {
        var config = Valid(SmallWith("relays:", "    proxies: [p1, p2]"));
        Assert.That(config.GetDatacenter("away").Relays, Is.EqualTo(new[] { "p1", "p2" }));
        Assert.That(config.Nodes["p2"].Role, Is.EqualTo(NodeRole.Relay));
    }

    [Test]
    public void RelaysAndTheOldProxiesKeyTogetherAreADuplicate() =>
        AssertOnlyProblem(SmallWith("relays:", "    relays: [p1, p2]\n    proxies: [p1]"), 8, 5,
            "duplicate key 'proxies' (the old spelling of 'relays') in datacenter 'away'; first at line 7");

    [Test]
    public void YamlSyntaxErrorIsReportedWithItsPosition() =>
        AssertOnlyProblem(SmallWith("cluster:", "cluster: test: x"), 1, 14, "YAML syntax error: ", "found invalid mapping");

    [Test]
    public void UnclosedBracketIsReportedWhereItOpens() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2"), 8, 14, "YAML syntax error: '[' is never closed");

    [Test]
    public void TabIndentationIsReportedAtTheTab() =>
        AssertOnlyProblem("cluster: x\nnodes:\n  ldr: {}\n\t\n", 4, 1, "YAML syntax error: ", "tab");

    [Test]
    public void UnknownNodeKeySuggestsTheClosestKnownKey()
    {
        var problems = Problems(SmallWith("a2:", "  a2: { dc: away, lisen: 127.0.0.1:7051 }"));
        Assert.That(problems, Has.Count.EqualTo(2), string.Join("\n", problems));
        AssertProblem(problems[0], 15, 3, "member 'a2' needs a 'listen' address");
        AssertProblem(problems[1], 15, 19, "unknown key 'lisen' in node 'a2'; did you mean 'listen'?");
    }

    [Test]
    public void UnknownTopLevelKeySuggestsTheClosestKnownKey() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\nquorom: all"), 3, 1, "unknown key 'quorom' at the top level; did you mean 'quorum'?");

    [Test]
    public void UnknownDefaultsKeySuggestsTheClosestKnownKey() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  batch: { max-bytes: 1MiB, lingr: 2ms }"),
            4, 29, "unknown key 'lingr' in 'defaults.batch'; did you mean 'linger'?");

    [Test]
    public void UnknownKeyFarFromAnyKnownKeyListsTheKnownKeys() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ncolour: red"), 3, 1,
            "unknown key 'colour' at the top level; known keys: cluster, leader, quorum, defaults, datacenters, nodes");

    [Test]
    public void StringWhereAListIsExpectedIsAWrongType() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: a1"), 8, 14,
            "expected a list for datacenter 'away' members, found 'a1'");

    [Test]
    public void ListWhereAStringIsExpectedIsAWrongType() =>
        AssertOnlyProblem(SmallWith("cluster:", "cluster: [a, b]"), 1, 10, "expected a string for cluster, found a list");

    [Test]
    public void ScalarWhereAMappingIsExpectedIsAWrongType() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  compression: 3"), 4, 16,
            "expected a mapping for defaults.compression, found '3' (e.g. compression: { level: 1 })");

    [TestCase("window: 64MB", 11, "defaults.window: '64MB': unknown size unit 'MB'; use B, KiB, MiB or GiB (1MiB = 1048576 bytes)")]
    [TestCase("max-frame: lots", 14, "defaults.max-frame: 'lots' is not a size")]
    [TestCase("heartbeat: 1.5", 14, "defaults.heartbeat: '1.5' is not a duration; write seconds as a whole number (8), or a whole number followed by ms, s, m or h")]
    [TestCase("heartbeat: 1.5s", 14, "defaults.heartbeat: '1.5s' is not a duration")]
    [TestCase("handshake-timeout: 5sec", 22, "defaults.handshake-timeout: '5sec': unknown duration unit 'sec'; use ms, s, m or h")]
    [TestCase("heartbeat: 0ms", 14, "defaults.heartbeat must be longer than 0")]
    [TestCase("window: 0", 11, "defaults.window must be larger than 0")]
    [TestCase("fsync: maybe", 10, "defaults.fsync must be true or false, not 'maybe'")]
    [TestCase("compression: { level: 23 }", 25, "defaults.compression.level must be a zstd level from 1 to 22, or 0 for no compression; not '23'")]
    [TestCase("compression: { local-level: -1 }", 31, "defaults.compression.local-level must be a zstd level from 1 to 22, or 0 for no compression; not '-1'")]
    [TestCase("max-frame: 1KiB", 14, "defaults.max-frame must be between 64KiB and 1GiB")]
    [TestCase("learner-backlog: 64KiB", 20, "defaults.learner-backlog must be at least 512KiB (two Deliver frames of 256KiB), not '64KiB'")]
    public void WrongUnitOrValueInDefaults(string setting, int column, string message) =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  " + setting), 4, column, message);

    [Test]
    public void LinksInsideADatacenterUseTheLocalCompressionLevel()
    {
        var config = TopologyLoader.LoadFile(Sample("three-regions.yaml")).GetConfigOrThrow();
        config = config with { Defaults = config.Defaults with { CompressionLevel = 3, LocalCompressionLevel = 1 } };
        Assert.Multiple(() =>
        {
            Assert.That(config.CompressionLevelBetween("eu-p1", "eu-m1"), Is.EqualTo(1), "relay to a member of its DC");
            Assert.That(config.CompressionLevelBetween(config.LeaderId, "us-m1"), Is.EqualTo(1), "leader to its own DC");
            Assert.That(config.CompressionLevelBetween(config.LeaderId, "eu-p1"), Is.EqualTo(3), "across regions");
            Assert.That(config.CompressionLevelBetween(config.LeaderId, "some-publisher"), Is.EqualTo(3), "not a node: the cross-DC level");
        });
    }

    [Test]
    public void FailoverNotLongerThanHeartbeatIsReportedAtFailoverAfter() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  heartbeat: 100ms\n  failover-after: 100ms"), 5, 19,
            "defaults.failover-after (100ms) must be longer than defaults.heartbeat (100ms)");

    [Test]
    public void BatchLargerThanMaxFrameIsReportedAtTheBatchSize() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  batch: { max-bytes: 32MiB }"), 4, 23,
            "defaults.batch.max-bytes (32MiB) must not exceed defaults.max-frame (16MiB)");

    [Test]
    public void BatchLargerThanWindowIsReportedAtTheWindow() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ndefaults:\n  window: 512KiB"), 4, 11,
            "defaults.batch.max-bytes (1MiB) must not exceed defaults.window (512KiB)");

    [Test]
    public void DuplicateNodeIdIsReportedAtTheSecondDefinition() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051 }\n  a2: { dc: away, listen: 127.0.0.1:7061 }"),
            16, 3, "duplicate node id 'a2'; first defined at line 15");

    [Test]
    public void DuplicateDatacenterIsReportedAtTheSecondDefinition() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2]\n  home:\n    members: [h1]"),
            9, 3, "duplicate datacenter 'home'; first defined at line 4");

    [Test]
    public void DuplicateKeyInsideANodeIsReported() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051, dc: home }"),
            15, 43, "duplicate key 'dc' in node 'a2'; first at line 15");

    [Test]
    public void DuplicateTopLevelKeyIsReported() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\ncluster: again"), 3, 1, "duplicate key 'cluster' at the top level; first at line 1");

    [Test]
    public void ListNamingAnUnknownNode() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2, a3]"), 8, 23,
            "unknown node 'a3' in members of datacenter 'away'; define it under 'nodes'");

    [Test]
    public void RelayListNamingAnUnknownNode() =>
        AssertOnlyProblem(SmallWith("relays:", "    relays: [p1, p2, p9]"), 7, 22, "unknown node 'p9' in relays of datacenter 'away'");

    [Test]
    public void NodeInTwoRoles() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2, p1]"), 8, 23,
            "node 'p1' is listed as a member of datacenter 'away' but is already a relay of datacenter 'away' (line 7); a node has one role");

    [Test]
    public void LeaderListedInADatacenterIsInTwoRoles() =>
        AssertOnlyProblem(SmallWith("members: [h1]", "    members: [h1, ldr]"), 5, 19,
            "node 'ldr' is the leader and cannot also be a member of datacenter 'home'");

    [Test]
    public void NodeInTwoDatacenters()
    {
        var problems = Problems(SmallWith("members: [h1]", "    members: [h1, a1]"));
        Assert.That(problems, Has.Count.EqualTo(2), string.Join("\n", problems));
        AssertProblem(problems[0], 8, 15,
            "node 'a1' is listed in datacenter 'away' but is already a member of datacenter 'home' (line 5); a node belongs to one datacenter");
        AssertProblem(problems[1], 14, 13, "node 'a1' has dc 'away' but is listed in datacenter 'home' (line 5)");
    }

    [Test]
    public void NodeListedTwiceInTheSameList() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2, a1]"), 8, 23,
            "node 'a1' is listed twice in members of datacenter 'away' (first at line 8)");

    [Test]
    public void NodeListedNowhere() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051 }\n  x1: { dc: away, listen: 127.0.0.1:7099 }"), 16, 3,
            "node 'x1' is listed nowhere: it is not the leader and not in any datacenter's relays or members");

    [Test]
    public void DatacenterWithNoMembers() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2]\n  spare:\n    members: []"), 9, 3,
            "datacenter 'spare' has no members; list at least one under 'members'");

    [Test]
    public void DatacenterWithNothingAtAll() =>
        AssertOnlyProblem(SmallWith("members: [a1, a2]", "    members: [a1, a2]\n  spare:"), 9, 3, "datacenter 'spare' has no members");

    [Test]
    public void DuplicateAddressIsReportedAtTheSecondUse() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7041 }"), 15, 27,
            "address 127.0.0.1:7041 (listen of node 'a2') is already the listen address of node 'a1' (line 14)");

    [Test]
    public void DuplicateAddressAcrossKindsAndSpellingsIsDetected() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: '[::1]:7051', learners: '[0:0::1]:7051' }"), 15, 51,
            "address [::1]:7051 (learners of node 'a2') is already the listen address of node 'a2' (line 15)");

    [TestCase("127.0.0.1", "'127.0.0.1': missing ':port'")]
    [TestCase("127.0.0.300:7051", "'127.0.0.300' is not an IPv4 address")]
    [TestCase("127.0.0.1:70000", "port must be a number from 1 to 65535")]
    [TestCase("127.0.0.1:http", "port must be a number from 1 to 65535")]
    [TestCase("'::1:7051'", "an IPv6 address needs brackets, as in [::1]:7000")]
    [TestCase("bad_host!:7051", "'bad_host!' is not a valid host name")]
    public void UnparsableAddress(string address, string message) =>
        AssertOnlyProblem(SmallWith("a2:", $"  a2: {{ dc: away, listen: {address} }}"), 15, 27, "node 'a2' listen: ", message);

    [Test]
    public void QuorumLargerThanTheMembers() =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\nquorum: 4"), 3, 9, "quorum 4 is larger than the 3 members of the cluster");

    [Test]
    public void QuorumEqualToTheMembersIsFine() =>
        Assert.That(Valid(SmallWith("leader:", "leader: ldr\nquorum: 3")).RequiredAcks, Is.EqualTo(3));

    [TestCase("most", "quorum must be 'majority', 'all' or a number of members, not 'most'")]
    [TestCase("0", "quorum must be at least 1")]
    public void UnparsableQuorum(string quorum, string message) =>
        AssertOnlyProblem(SmallWith("leader:", "leader: ldr\nquorum: " + quorum), 3, 9, message);

    [Test]
    public void LeaderThatIsNotANode()
    {
        var problems = Problems(SmallWith("leader:", "leader: ldrr"));
        Assert.That(problems, Has.Count.EqualTo(2), string.Join("\n", problems));
        AssertProblem(problems[0], 2, 9, "leader 'ldrr' is not a node; define it under 'nodes'; did you mean 'ldr'?");
        AssertProblem(problems[1], 10, 3, "node 'ldr' is listed nowhere");
    }

    [Test]
    public void NodeDcNotMatchingTheDatacenterListingIt() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: home, listen: 127.0.0.1:7051 }"), 15, 13,
            "node 'a2' has dc 'home' but is listed in datacenter 'away' (line 8)");

    [Test]
    public void NodeWithUnknownDcNamesTheDatacenterListingIt() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: awya, listen: 127.0.0.1:7051 }"), 15, 13,
            "node 'a2': unknown datacenter 'awya'; it is listed in datacenter 'away'");

    [Test]
    public void LeaderWithUnknownDcGetsASuggestion() =>
        AssertOnlyProblem(SmallWith("ldr:", "  ldr: { dc: hom, listen: 127.0.0.1:7001, publish: 127.0.0.1:7000 }"), 10, 14,
            "node 'ldr': unknown datacenter 'hom'; did you mean 'home'?");

    [Test]
    public void NodeWithoutDc() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { listen: 127.0.0.1:7051 }"), 15, 3, "node 'a2' needs a 'dc' key naming its datacenter");

    [Test]
    public void LeaderWithoutPublish() =>
        AssertOnlyProblem(SmallWith("ldr:", "  ldr: { dc: home, listen: 127.0.0.1:7001 }"), 10, 3,
            "leader 'ldr' needs a 'publish' address (where publishers connect)");

    [Test]
    public void LeaderWithoutListen() =>
        AssertOnlyProblem(SmallWith("ldr:", "  ldr: { dc: home, publish: 127.0.0.1:7000 }"), 10, 3, "leader 'ldr' needs a 'listen' address");

    [Test]
    public void RelayWithoutListen() =>
        AssertOnlyProblem(SmallWith("p1:", "  p1: { dc: away, learners: 127.0.0.1:7022 }"), 12, 3, "relay 'p1' needs a 'listen' address");

    [Test]
    public void MemberWithoutListen() =>
        AssertOnlyProblem(SmallWith("h1:", "  h1: { dc: home, admin: 127.0.0.1:7019 }"), 11, 3, "member 'h1' needs a 'listen' address");

    [Test]
    public void PublishAddressOnARelay() =>
        AssertOnlyProblem(SmallWith("p2:", "  p2: { dc: away, listen: 127.0.0.1:7031, publish: 127.0.0.1:7033 }"), 13, 52,
            "relay 'p2' cannot have a 'publish' address; only voters (the leader and members) accept publishers");

    [Test]
    public void AMemberMayHaveAPublishAddressForWhenItLeads() =>
        Assert.That(Valid(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051, publish: 127.0.0.1:7052 }")).Nodes["a2"].Publish,
            Is.EqualTo(new NodeEndpoint("127.0.0.1", 7052)));

    [Test]
    public void LeaderDatacenterCannotHaveRelays()
    {
        string yaml = SmallWith("members: [h1]", "    relays: [hp]\n    members: [h1]")
            + "\n  hp: { dc: home, listen: 127.0.0.1:7061 }";
        AssertOnlyProblem(yaml, 5, 13, "datacenter 'home' holds the leader 'ldr', which serves it directly; it cannot have relays");
    }

    [Test]
    public void NodeWithoutSettings() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2:"), 15, 3, "node 'a2' has no settings; it needs at least 'dc' and 'listen'");

    [Test]
    public void InvalidNodeId() =>
        AssertOnlyProblem(SmallWith("a2:", "  a2: { dc: away, listen: 127.0.0.1:7051 }\n  'x y': { dc: away, listen: 127.0.0.1:7061 }"), 16, 3,
            "node id 'x y' must be 1 to 64 characters");

    [Test]
    public void MissingRequiredKeysAreReportedAtTheStart()
    {
        var problems = Problems("cluster: x\n");
        Assert.That(problems.Select(p => (p.Line, p.Column, p.Message)), Is.EqualTo(new[]
        {
            (1, 1, "missing required key 'leader' (the id of the leader node)"),
            (1, 1, "missing required key 'datacenters' (each datacenter's relays and members)"),
            (1, 1, "missing required key 'nodes' (every node's dc and addresses)"),
        }));
    }

    [Test]
    public void EmptyFileReportsEveryMissingKey() =>
        Assert.That(Problems("").Select(p => $"{p.Line}:{p.Column}: {p.Message}").ToList(),
            Has.Count.EqualTo(4).And.All.StartWith("1:1: missing required key"));

    [Test]
    public void RootThatIsNotAMapping() =>
        AssertOnlyProblem("- a\n- b\n", 1, 1, "expected a mapping with the keys cluster, leader, quorum, defaults, datacenters, nodes, tls, auth, insecure, leader-candidates; found a list");

    [Test]
    public void SecondDocumentIsRejected() =>
        AssertOnlyProblem(Small + "\n---\ncluster: other\n", 16, 1, "only one YAML document is allowed");

    [Test]
    public void EveryProblemIsReportedAtOnceInFileOrder()
    {
        string yaml = Small
            .Replace("leader: ldr", "leader: ldr\nquorum: 7")                                  // line 3
            .Replace("members: [a1, a2]", "members: [a1, a2, ghost]")                          // line 9
            .Replace("h1: { dc: home, listen: 127.0.0.1:7011 }", "h1: { dc: home, listne: 127.0.0.1:7011 }") // line 12
            .Replace("listen: 127.0.0.1:7051", "listen: 127.0.0.1:7041");                     // line 16
        var problems = Problems(yaml);
        Assert.That(problems.Select(p => $"{p.Line}:{p.Column}"), Is.EqualTo(new[] { "3:9", "9:23", "12:3", "12:19", "16:27" }),
            string.Join("\n", problems));
        Assert.That(problems[0].ToString(), Is.EqualTo("t.yaml:3:9: quorum 7 is larger than the 3 members of the cluster"));
    }

    [Test]
    public void AnchorsAndAliasesAreResolved()
    {
        string yaml = SmallWith("members: [a1, a2]", "    members: &away-members [a1, a2]")
            + "\n  a3: { dc: away, listen: 127.0.0.1:7061 }";
        // a3 is listed nowhere; the alias must not hide that nor duplicate a1/a2.
        AssertOnlyProblem(yaml, 16, 3, "node 'a3' is listed nowhere");
    }

    [Test]
    public void AllDefaultsCanBeSet()
    {
        string yaml = SmallWith("leader:", """
            leader: ldr
            quorum: all
            defaults:
              heartbeat: 50ms
              failover-after: 2s
              batch: { max-bytes: 256KiB, linger: 0 }
              window: 1GiB
              compression: { level: 0, local-level: 3 }
              retention: { max-bytes: 4096, max-age: 30m }
              max-frame: 2MiB
              learner-backlog: 1MiB
              handshake-timeout: 1m
              fsync: false
            """);
        var config = Valid(yaml);
        Assert.That(config.Quorum, Is.EqualTo(QuorumSpec.All));
        Assert.That(config.Defaults, Is.EqualTo(new ClusterDefaults
        {
            Heartbeat = TimeSpan.FromMilliseconds(50),
            FailoverAfter = TimeSpan.FromSeconds(2),
            BatchMaxBytes = 256 * 1024,
            BatchLinger = TimeSpan.Zero,
            Window = 1L << 30,
            CompressionLevel = 0,
            LocalCompressionLevel = 3,
            RetentionMaxBytes = 4096,
            RetentionMaxAge = TimeSpan.FromMinutes(30),
            MaxFrame = 2 << 20,
            LearnerBacklog = 1 << 20,
            HandshakeTimeout = TimeSpan.FromMinutes(1),
            Fsync = false,
        }));
    }

    [Test]
    public void GetConfigOrThrowListsEveryProblem()
    {
        var result = TopologyLoader.Parse(SmallWith("leader:", "leader: nobody"), "t.yaml");
        var e = Assert.Throws<TopologyException>(() => result.GetConfigOrThrow());
        Assert.That(e!.Problems, Has.Count.EqualTo(2));
        Assert.That(e.Message, Does.Contain("t.yaml:2:9: leader 'nobody' is not a node").And.Contain("t.yaml:10:3: node 'ldr' is listed nowhere"));
    }

    [Test]
    public void UnreadableFileIsAProblemWithoutPosition()
    {
        var result = TopologyLoader.LoadFile("/nonexistent/topology.yaml");
        Assert.That(result.Success, Is.False);
        Assert.That(result.Problems.Single().ToString(), Does.StartWith("/nonexistent/topology.yaml: cannot read the topology file"));
    }
}
