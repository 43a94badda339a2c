using System.Buffers.Binary;
using GeoRelay.Topology;
using NUnit.Framework;
using static GeoRelay.Tests.Unit.Topology.MembershipTestFiles;
using static GeoRelay.Tests.Unit.Topology.TopologyTestFiles;

namespace GeoRelay.Tests.Unit.Topology;

// Membership: the runtime-changeable part of a topology, its validation, binary encoding and YAML.
[TestFixture]
public sealed class MembershipTests
{
    private static readonly string[] Samples = ["local.yaml", "three-regions.yaml", "three-regions-tls.yaml", "tiers.yaml"];

    private static TopologyConfig LoadSample(string name) => TopologyLoader.LoadFile(Sample(name)).GetConfigOrThrow();

    [Test]
    public void EverySampleIsCovered() =>
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(Sample("local.yaml"))!, "*.yaml").Select(Path.GetFileName), Is.EquivalentTo(Samples));

    [TestCaseSource(nameof(Samples))]
    public void ToYamlPastedUnderTheSamplesHeadLoadsTheSameMembership(string sample)
    {
        string path = Sample(sample);
        var file = LoadSample(sample);
        var membership = Membership.Of(file);
        string yaml = HeadWithoutMembership(File.ReadAllText(path)) + membership.ToYaml();
        var reloaded = TopologyLoader.Parse(yaml, path);
        Assert.That(reloaded.Problems, Is.Empty, yaml);
        Assert.That(Membership.Of(reloaded.Config!), Is.EqualTo(membership), yaml);
        Assert.That(reloaded.Config!.Defaults, Is.EqualTo(file.Defaults));
    }

    [Test]
    public void ToYamlLooksLikeTheSamples()
    {
        string yaml = Membership.Of(Valid(WithNonVoter.Replace("leader: ldr", "leader: ldr\nleader-candidates: [ldr, h1]"))).ToYaml();
        Assert.That(yaml, Is.EqualTo("""
            leader: ldr
            leader-candidates: [ldr, h1]

            datacenters:
              home:
                relays: []
                members: [h1, h2]
              away:
                relays: [p1, p2]
                members: [a1, a2, a3]

            nodes:
              ldr: { dc: home, publish: 127.0.0.1:7000, listen: 127.0.0.1:7001 }
              h1:  { dc: home, publish: 127.0.0.1:7010, listen: 127.0.0.1:7011 }
              h2:  { dc: home, listen: 127.0.0.1:7021 }

              p1:  { dc: away, listen: 127.0.0.1:7101, learners: 127.0.0.1:7102 }
              p2:  { dc: away, listen: 127.0.0.1:7111, learners: 127.0.0.1:7112, feed-from: [p1] }
              a1:  { dc: away, publish: 127.0.0.1:7120, listen: 127.0.0.1:7121 }
              a2:  { dc: away, listen: 127.0.0.1:7131 }
              a3:  { dc: away, publish: 127.0.0.1:7140, listen: 127.0.0.1:7141, voter: false }

            """.Replace("\r\n", "\n")));
    }

    [Test]
    public void IPv6AddressesSurviveTheYaml()
    {
        var file = Valid(WithNonVoter.Replace("127.0.0.1:7101", "\"[::1]:7101\""));
        var membership = Membership.Of(file);
        Assert.That(membership.Problems(file), Is.Empty);
        Assert.That(Membership.Of(membership.ApplyTo(file)).Nodes["p1"].Listen, Is.EqualTo(NodeEndpoint.Parse("[::1]:7101")));
    }

    [TestCaseSource(nameof(Samples))]
    public void ApplyingASamplesOwnMembershipGivesBackTheSample(string sample)
    {
        var file = LoadSample(sample);
        var membership = Membership.Of(file);
        Assert.That(membership.Problems(file), Is.Empty);
        var applied = membership.ApplyTo(file);
        Assert.Multiple(() =>
        {
            Assert.That(Membership.Of(applied), Is.EqualTo(membership));
            Assert.That(applied.Cluster, Is.EqualTo(file.Cluster));
            Assert.That(applied.Quorum, Is.EqualTo(file.Quorum));
            Assert.That(applied.Defaults, Is.EqualTo(file.Defaults));
            Assert.That(applied.Tls, Is.EqualTo(file.Tls));
            Assert.That(applied.Auth, Is.EqualTo(file.Auth));
            Assert.That(applied.Insecure, Is.EqualTo(file.Insecure));
            Assert.That(applied.SourcePath, Is.EqualTo(file.SourcePath));
            Assert.That(applied.Voters, Is.EqualTo(file.Voters));
            Assert.That(applied.RequiredAcks, Is.EqualTo(file.RequiredAcks));
        });
    }

    [Test]
    public void OfAViewIsTheMembershipAsWritten()
    {
        var file = Valid(WithNonVoter);
        Assert.That(Membership.Of(file.LedBy("a1")), Is.EqualTo(Membership.Of(file)));
    }

    [Test]
    public void ApplyToTakesTheNewMembershipAndKeepsTheFilesQuorumAndDefaults()
    {
        var file = Valid(WithNonVoter.Replace("insecure: true", "insecure: true\nquorum: 2\ndefaults: { heartbeat: 50ms }"));
        var promoted = With(Membership.Of(file), file.Nodes["a3"] with { Voter = true } is var a3 ? MembershipNode.From(a3) : null!);
        var applied = promoted.ApplyTo(file);
        Assert.Multiple(() =>
        {
            Assert.That(applied.IsVoter("a3"), Is.True);
            Assert.That(applied.VotingMemberCount, Is.EqualTo(5));
            Assert.That(applied.Quorum, Is.EqualTo(QuorumSpec.Fixed(2)));
            Assert.That(applied.Defaults.Heartbeat, Is.EqualTo(TimeSpan.FromMilliseconds(50)));
        });
    }

    [Test]
    public void ProblemsUseTheLoadersMessages()
    {
        var file = Valid(WithNonVoter);
        var membership = Membership.Of(file);
        var reused = With(membership, membership.Nodes["a2"] with { Listen = NodeEndpoint.Parse("127.0.0.1:7121") });
        Assert.That(reused.Problems(file), Is.EqualTo(new[] { "address 127.0.0.1:7121 (listen of node 'a2') is already the listen address of node 'a1'" }));

        var unknown = new Membership("ldr", null,
            [membership.Datacenters[0], membership.Datacenters[1] with { Members = ["a1", "a2", "a3", "a9"] }], membership.Nodes.Values);
        Assert.That(unknown.Problems(file), Has.Some.Contains("unknown node 'a9' in members of datacenter 'away'"));

        var relayInLeadersDc = new Membership("a1", null, membership.Datacenters, membership.Nodes.Values);
        Assert.That(relayInLeadersDc.Problems(file), Has.Some.Contains("holds the leader 'a1', which serves it directly; it cannot have relays"));
    }

    [Test]
    public void ProblemsCatchAQuorumLargerThanTheVotersOfTheNewMembership()
    {
        var file = Valid(WithNonVoter.Replace("insecure: true", "insecure: true\nquorum: 4"));
        var membership = Membership.Of(file);
        var demoted = With(membership, membership.Nodes["a2"] with { Voter = false });
        Assert.That(demoted.Problems(file), Has.Some.Contains("quorum 4 is larger than the 3 voting members"));
        Assert.That(() => demoted.ApplyTo(file), Throws.ArgumentException.With.Message.Contains("quorum 4 is larger"));
    }

    [Test]
    public void NamesThatAreNotNodeIdsAreRefusedBeforeTheyReachTheYaml()
    {
        var file = Valid(WithNonVoter);
        var membership = Membership.Of(file);
        var injected = new Membership("ldr\nquorum: 1", null, membership.Datacenters, membership.Nodes.Values);
        Assert.That(injected.Problems(file), Is.EqualTo(new[] { "leader 'ldr\nquorum: 1' must be 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit" }));
        var badHost = With(membership, membership.Nodes["a2"] with { Listen = new NodeEndpoint("x y", 7000) });
        Assert.That(badHost.Problems(file), Is.EqualTo(new[] { "node 'a2' listen: 'x y:7000' is not a canonical host:port address" }));
    }

    [TestCaseSource(nameof(Samples))]
    public void EncodeDecodeRoundTrips(string sample)
    {
        var membership = Membership.Of(LoadSample(sample));
        byte[] bytes = membership.Encode();
        var decoded = Membership.Decode(bytes);
        Assert.That(decoded, Is.EqualTo(membership));
        Assert.That(decoded.Encode(), Is.EqualTo(bytes));
        Assert.That(decoded.Hash, Is.EqualTo(membership.Hash));
        Assert.That(bytes.AsSpan(0, 4).ToArray(), Is.EqualTo("GRMB"u8.ToArray()));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(4)), Is.EqualTo(1));
    }

    [Test]
    public void EqualMembershipsEncodeIdenticallyWhateverTheOrderTheirNodesWereGiven()
    {
        var membership = Membership.Of(Valid(WithNonVoter));
        var reversed = new Membership(membership.PreferredLeader, membership.LeaderCandidates, membership.Datacenters, membership.Nodes.Values.Reverse());
        Assert.That(reversed, Is.EqualTo(membership));
        Assert.That(reversed.Encode(), Is.EqualTo(membership.Encode()));
        Assert.That(reversed.Hash, Is.EqualTo(membership.Hash));
    }

    [Test]
    public void AnyDifferenceChangesEqualityAndHash()
    {
        var membership = Membership.Of(Valid(WithNonVoter));
        Membership[] different =
        [
            With(membership, membership.Nodes["a3"] with { Voter = true }),
            With(membership, membership.Nodes["a2"] with { MaxLearners = 5 }),
            With(membership, membership.Nodes["p2"] with { FeedFrom = [] }),
            With(membership, membership.Nodes["a2"] with { Web = NodeEndpoint.Parse("127.0.0.1:9999") }),
            new(membership.PreferredLeader, ["ldr"], membership.Datacenters, membership.Nodes.Values),
            new(membership.PreferredLeader, null, [membership.Datacenters[0], membership.Datacenters[1] with { Relays = ["p2", "p1"] }], membership.Nodes.Values),
            new(membership.PreferredLeader, null, [membership.Datacenters[0], membership.Datacenters[1] with { Members = ["a2", "a1", "a3"] }], membership.Nodes.Values),
        ];
        foreach (var other in different)
        {
            Assert.That(other, Is.Not.EqualTo(membership), other.ToYaml());
            Assert.That(other.Hash, Is.Not.EqualTo(membership.Hash), other.ToYaml());
            Assert.That(Membership.Decode(other.Encode()), Is.EqualTo(other));
        }
    }

    [Test]
    public void EveryTruncationIsInvalidData()
    {
        byte[] bytes = Membership.Of(LoadSample("tiers.yaml")).Encode();
        for (int length = 0; length < bytes.Length; length++)
        {
            Assert.That(() => Membership.Decode(bytes.AsSpan(0, length)), Throws.TypeOf<InvalidDataException>(), $"cut at {length}");
        }
    }

    [Test]
    public void EveryFlippedBitIsCaught()
    {
        byte[] bytes = Membership.Of(Valid(WithNonVoter)).Encode();
        for (int i = 0; i < bytes.Length; i++)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[i] ^= 0x10;
            Assert.That(() => Membership.Decode(damaged), Throws.TypeOf<InvalidDataException>(), $"bit flipped at {i}");
        }
    }

    [Test]
    public void ErrorsSayWhatIsWrongAndWhere()
    {
        byte[] bytes = Membership.Of(Valid(WithNonVoter)).Encode();
        var badMagic = (byte[])bytes.Clone();
        badMagic[0] = (byte)'X';
        Assert.That(() => Membership.Decode(badMagic), Throws.TypeOf<InvalidDataException>().With.Message.Contains("at offset 0").And.Message.Contains("GRMB"));
        var badVersion = Resealed(bytes, b => b[5] = 2);
        Assert.That(() => Membership.Decode(badVersion), Throws.TypeOf<InvalidDataException>().With.Message.Contains("version 2 at offset 4"));
        var damaged = (byte[])bytes.Clone();
        damaged[10] ^= 1;
        Assert.That(() => Membership.Decode(damaged), Throws.TypeOf<InvalidDataException>().With.Message.Contains($"checksum at offset {bytes.Length - 4}"));
        Assert.That(() => Membership.Decode(new byte[(1 << 20) + 1]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("larger than the maximum"));
    }

    [Test]
    public void AHugeCountWithAValidChecksumIsRefusedBeforeAnythingIsAllocated()
    {
        // "GRMB" v1, leader "l", no candidates, then a datacenter count of 2^31-1 and nothing behind it.
        var body = new List<byte>("GRMB"u8.ToArray()) { 0, 1, 1, (byte)'l', 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
        var sealedBytes = Resealed([.. body, 0, 0, 0, 0], _ => { });
        Assert.That(() => Membership.Decode(sealedBytes), Throws.TypeOf<InvalidDataException>().With.Message.EqualTo("datacenter count at offset 9 is 2147483647; at most 10000"));
        var tooManyForTheBytes = Resealed([.. "GRMB"u8.ToArray(), 0, 1, 1, (byte)'l', 0, 0, 0, 0x27, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], _ => { });
        Assert.That(() => Membership.Decode(tooManyForTheBytes), Throws.TypeOf<InvalidDataException>().With.Message.Contains("datacenter count at offset 9 is 10000, but only 8 bytes follow"));
    }

    [Test]
    public void TrailingBytesAndNonCanonicalAddressesAreRefused()
    {
        byte[] bytes = Membership.Of(Valid(WithNonVoter)).Encode();
        var trailing = Resealed([.. bytes[..^4], 7, 0, 0, 0, 0], _ => { });
        Assert.That(() => Membership.Decode(trailing), Throws.TypeOf<InvalidDataException>().With.Message.Contains($"1 unexpected bytes at offset {bytes.Length - 4}"));

        var upperCaseHost = Membership.Of(Valid(WithNonVoter.Replace("127.0.0.1:7021", "localhost:7021")));
        byte[] encoded = upperCaseHost.Encode();
        int at = IndexOf(encoded, "localhost"u8);
        var shouting = Resealed(encoded, b => b[at] = (byte)'L');
        Assert.That(() => Membership.Decode(shouting), Throws.TypeOf<InvalidDataException>().With.Message.Contains("node 'h2' listen at offset").And.Message.Contains("not a canonical"));
    }

    [Test]
    public void EncodingRefusesWhatDecodingWouldRefuse()
    {
        var membership = Membership.Of(Valid(WithNonVoter));
        var longName = new Membership(new string('x', 256), null, membership.Datacenters, membership.Nodes.Values);
        Assert.That(() => longName.Encode(), Throws.InvalidOperationException.With.Message.Contains("1 to 255"));
    }

    internal static Membership With(Membership membership, MembershipNode node) =>
        new(membership.PreferredLeader, membership.LeaderCandidates, membership.Datacenters,
            membership.Nodes.Values.Select(n => n.Id == node.Id ? node : n));

    /// <summary>Applies the change and recomputes the CRC-32C, so the decoder gets past the checksum to the field.</summary>
    private static byte[] Resealed(byte[] bytes, Action<byte[]> change)
    {
        var copy = (byte[])bytes.Clone();
        change(copy);
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(copy.Length - 4), Crc32C(copy.AsSpan(0, copy.Length - 4)));
        return copy;
    }

    /// <summary>A plain bitwise CRC-32C, independent of the product's, so the format's checksum is pinned to the standard.</summary>
    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);
}
