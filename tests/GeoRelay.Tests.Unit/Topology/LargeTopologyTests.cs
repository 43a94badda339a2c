using System.Text;
using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Topology;

[TestFixture]
public sealed class LargeTopologyTests
{
    private const int Datacenters = 100;
    private const int Nodes = 10_000;

    /// <summary>
    /// 100 datacenters and 10,000 nodes: the leader's datacenter has only members; every other one
    /// has two relays. Node k listens on 10.x.y.z:7000 (z, y, x from k) and serves learners on :7001.
    /// </summary>
    private static string Generate(out int members, out int lineOfLastNode)
    {
        var dcs = new StringBuilder("datacenters:\n");
        var nodes = new StringBuilder("nodes:\n");
        nodes.Append("  leader: { dc: dc000, listen: 10.255.255.1:7000, publish: 10.255.255.1:7100 }\n");
        int perDc = (Nodes - 1) / Datacenters; // 99, plus the leader
        int next = 0;
        members = 0;
        for (int d = 0; d < Datacenters; d++)
        {
            string dc = $"dc{d:D3}";
            int count = d == Datacenters - 1 ? Nodes - 1 - next : perDc;
            int relays = d == 0 ? 0 : 2;
            var relayIds = new List<string>();
            var memberIds = new List<string>();
            for (int i = 0; i < count; i++, next++)
            {
                string id = i < relays ? $"{dc}-p{i}" : $"{dc}-m{i}";
                (i < relays ? relayIds : memberIds).Add(id);
                nodes.Append($"  {id}: {{ dc: {dc}, listen: 10.{next >> 16}.{(next >> 8) & 255}.{next & 255}:7000, learners: 10.{next >> 16}.{(next >> 8) & 255}.{next & 255}:7001 }}\n");
            }
            members += memberIds.Count;
            dcs.Append($"  {dc}:\n    relays: [{string.Join(", ", relayIds)}]\n    members: [{string.Join(", ", memberIds)}]\n");
        }
        string header = "cluster: big\nleader: leader\nquorum: majority\n";
        string yaml = header + dcs + nodes;
        lineOfLastNode = yaml.Count(c => c == '\n');
        return yaml;
    }

    [Test]
    public void TenThousandNodesLoadAndValidate()
    {
        string yaml = Generate(out int members, out _);
        var config = TopologyLoader.Parse(yaml, "big.yaml").GetConfigOrThrow();

        Assert.Multiple(() =>
        {
            Assert.That(config.Datacenters, Has.Count.EqualTo(Datacenters));
            Assert.That(config.Nodes, Has.Count.EqualTo(Nodes));
            Assert.That(config.MemberCount, Is.EqualTo(members));
            Assert.That(config.RequiredAcks, Is.EqualTo(members / 2 + 1));
            Assert.That(config.GetDatacenter("dc057").Relays, Is.EqualTo(new[] { "dc057-p0", "dc057-p1" }));
        });

        var plan = RoutePlanner.Plan(config, id => !id.EndsWith("-p0", StringComparison.Ordinal));
        Assert.That(plan.Skip(1).Select(r => r.RelayId), Has.All.EndsWith("-p1"));
    }

    [Test]
    public void ProblemsInATenThousandNodeFileAreAllFound()
    {
        string yaml = Generate(out _, out int lastLine)
            .Replace("dc042-m5: { dc: dc042,", "dc042-m5: { dc: dc043,")
            + "  extra: { dc: dc099, listen: 10.0.0.0:7000 }\n";
        var result = TopologyLoader.Parse(yaml, "big.yaml");
        // Lines: 3 header lines, "datacenters:", 3 per datacenter (dc042's members on 7 + 3 * 42),
        // "nodes:" on 304 + 1, the leader, then dc000-m0 on 307.
        Assert.That(result.Problems.Select(p => p.Message).ToArray(), Is.EqualTo(new[]
        {
            "node 'dc042-m5' has dc 'dc043' but is listed in datacenter 'dc042' (line 133)",
            "node 'extra' is listed nowhere: it is not the leader and not in any datacenter's relays or members",
            "address 10.0.0.0:7000 (listen of node 'extra') is already the listen address of node 'dc000-m0' (line 307)",
        }));
        Assert.That(result.Problems[1].Line, Is.EqualTo(lastLine + 1));
    }
}
