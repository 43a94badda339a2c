using GeoRelay.Topology;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Topology;

/// <summary>
/// MembershipPlan over random pairs of small clusters (seeded, so a failure names its seed): every step valid, at most one
/// voter in or out per step, nobody joins as a voter, the leader handed on before it stops voting, and the end is the
/// desired membership.
/// </summary>
[TestFixture]
public sealed class MembershipPlanPropertyTests
{
    private const int Cases = 300;

    [Test]
    public void RandomPlansAreSafeAndReachTheDesiredMembership()
    {
        int planned = 0, withTransfer = 0, withPromote = 0, totalSteps = 0;
        for (int seed = 1; planned < Cases; seed++)
        {
            Assert.That(seed, Is.LessThan(Cases * 20), "the generator makes too few valid pairs");
            var random = new Random(seed);
            var generator = new ClusterGenerator(random);
            var current = generator.Cluster();
            var loaded = TopologyLoader.Parse("cluster: prop\ninsecure: true\n" + current.ToYaml(), $"seed-{seed}.yaml");
            if (!loaded.Success)
            {
                continue; // e.g. every member drawn as a non-voter
            }
            var file = loaded.Config;
            var desired = generator.Mutate(current);
            if (desired.Problems(file).Count > 0)
            {
                continue;
            }
            var leaders = file.Voters.Where(file.CanLead).ToList();
            string leader = leaders[random.Next(leaders.Count)];
            var steps = MembershipPlan.Steps(file, current, desired, leader);
            CheckPlan(seed, file, current, desired, leader, steps);
            planned++;
            totalSteps += steps.Count;
            withTransfer += steps.Any(s => s.Kind == MembershipStepKind.TransferLeadership) ? 1 : 0;
            withPromote += steps.Any(s => s.Kind == MembershipStepKind.Promote) ? 1 : 0;
        }
        // The generator must reach the interesting cases, or the checks above prove little.
        Assert.That(withTransfer, Is.GreaterThan(Cases / 20), "plans with a leadership transfer");
        Assert.That(withPromote, Is.GreaterThan(Cases / 5), "plans with a promotion");
        Assert.That(totalSteps, Is.GreaterThan(Cases * 2));
    }

    private static void CheckPlan(int seed, TopologyConfig file, Membership current, Membership desired, string leader, IReadOnlyList<MembershipStep> steps)
    {
        string context = $"seed {seed}, leader {leader}\ncurrent:\n{current.ToYaml()}\ndesired:\n{desired.ToYaml()}\nsteps:\n{string.Join("\n", steps)}";
        Assert.That(steps.Count == 0, Is.EqualTo(current.Equals(desired)), context);
        var now = current;
        foreach (var step in steps)
        {
            var voters = now.Voters.ToHashSet();
            if (step.Kind == MembershipStepKind.TransferLeadership)
            {
                Assert.That(step.Next, Is.Null, context);
                Assert.That(voters, Does.Contain(step.Node), $"transfer to a non-voter: {step}\n{context}");
                Assert.That(now.ApplyTo(file).CanLead(step.Node!), Is.True, $"transfer to a node that cannot lead: {step}\n{context}");
                leader = step.Node!;
                continue;
            }
            var next = step.Next!;
            Assert.That(next.Problems(file), Is.Empty, $"invalid step: {step}\n{context}");
            var nextVoters = next.Voters.ToHashSet();
            int changed = nextVoters.Count(v => !voters.Contains(v)) + voters.Count(v => !nextVoters.Contains(v));
            Assert.That(changed, Is.LessThanOrEqualTo(1), $"more than one voter changes in: {step}\n{context}");
            Assert.That(nextVoters, Does.Contain(leader), $"the leader {leader} stops voting while leading in: {step}\n{context}");
            foreach (string joined in next.Nodes.Keys.Where(id => !now.Nodes.ContainsKey(id)))
            {
                Assert.That(nextVoters, Does.Not.Contain(joined), $"{joined} joins as a voter in: {step}\n{context}");
            }
            if (step.Kind == MembershipStepKind.Promote)
            {
                Assert.That((voters.Contains(step.Node!), nextVoters.Contains(step.Node!)), Is.EqualTo((false, true)), $"{step}\n{context}");
            }
            now = next;
        }
        Assert.That(now, Is.EqualTo(desired), context);
    }

    /// <summary>Small random clusters (1 to 3 datacenters, a few relays and members) and random edits of them.</summary>
    private sealed class ClusterGenerator(Random random)
    {
        private int _nextId;
        private int _nextPort = 10_000;

        public Membership Cluster()
        {
            var nodes = new List<MembershipNode>();
            var datacenters = new List<MembershipDatacenter>();
            string leader = NewId();
            nodes.Add(Node(leader, "dc0", voter: true, publish: true));
            int dcCount = random.Next(1, 4);
            for (int d = 0; d < dcCount; d++)
            {
                var (dc, dcNodes) = Datacenter("dc" + d, relays: d == 0 ? 0 : random.Next(0, 3), members: random.Next(1, 4));
                datacenters.Add(dc);
                nodes.AddRange(dcNodes);
            }
            var membership = new Membership(leader, null, datacenters, nodes);
            if (random.Next(5) == 0)
            {
                var canLead = membership.Voters.Where(v => membership.Nodes[v].Publish is not null && v != leader).ToList();
                membership = new Membership(leader, [leader, .. canLead.Where(_ => random.Next(2) == 0)], datacenters, nodes);
            }
            return membership;
        }

        public Membership Mutate(Membership current)
        {
            var plTo = current.PreferredLeader;
            var candidates = current.LeaderCandidates?.ToList();
            var datacenters = current.Datacenters.Select(d => (d.Name, Relays: d.Relays.ToList(), Members: d.Members.ToList())).ToList();
            var nodes = current.Nodes.ToDictionary(p => p.Key, p => p.Value);
            int edits = random.Next(1, 5);
            for (int e = 0; e < edits; e++)
            {
                var dc = datacenters[random.Next(datacenters.Count)];
                switch (random.Next(11))
                {
                    case 0 or 1:
                        var added = Node(NewId(), dc.Name, voter: random.Next(5) > 0, publish: random.Next(4) > 0);
                        nodes[added.Id] = added;
                        dc.Members.Add(added.Id);
                        break;
                    case 2:
                        var (newDc, newNodes) = Datacenter("dc" + NewId(), relays: random.Next(0, 2), members: random.Next(1, 3));
                        datacenters.Add((newDc.Name, newDc.Relays.ToList(), newDc.Members.ToList()));
                        foreach (var n in newNodes) nodes[n.Id] = n;
                        break;
                    case 3 when dc.Members.Count > 1:
                        Remove(dc.Members[random.Next(dc.Members.Count)]);
                        break;
                    case 4 when dc.Relays.Count > 0:
                        Remove(dc.Relays[random.Next(dc.Relays.Count)]);
                        break;
                    case 5 when dc.Members.Count > 0:
                        string toggled = dc.Members[random.Next(dc.Members.Count)];
                        nodes[toggled] = nodes[toggled] with { Voter = !nodes[toggled].Voter };
                        break;
                    case 6:
                        var anyNode = nodes.Values.ElementAt(random.Next(nodes.Count));
                        nodes[anyNode.Id] = anyNode with { Listen = Endpoint(), MaxLearners = random.Next(2) == 0 ? null : random.Next(1, 100) };
                        break;
                    case 7 or 8:
                        // A new preferred leader among the voting members; the old one stays a member (7) or goes (8).
                        var successors = datacenters.SelectMany(d => d.Members).Where(m => nodes[m].Voter && nodes[m].Publish is not null).ToList();
                        if (successors.Count == 0) break;
                        string successor = successors[random.Next(successors.Count)];
                        string old = plTo;
                        foreach (var d in datacenters) d.Members.Remove(successor);
                        datacenters.First(d => d.Name == nodes[old].Datacenter).Members.Add(old);
                        plTo = successor;
                        if (candidates is not null && !candidates.Contains(successor)) candidates.Add(successor);
                        if (random.Next(7, 9) == 8) Remove(old);
                        break;
                    case 9:
                        dc.Relays.Reverse();
                        if (random.Next(2) == 0) dc.Members.Reverse();
                        break;
                    case 10:
                        candidates = candidates is null ? [plTo] : null;
                        break;
                }
            }
            return new Membership(plTo, candidates,
                datacenters.Where(d => d.Members.Count > 0).Select(d => new MembershipDatacenter(d.Name, d.Relays, d.Members)).ToList(), nodes.Values);

            void Remove(string id)
            {
                nodes.Remove(id);
                candidates?.Remove(id);
                foreach (var d in datacenters)
                {
                    d.Relays.Remove(id);
                    d.Members.Remove(id);
                }
                foreach (var (otherId, other) in nodes.ToList())
                {
                    if (other.FeedFrom.Contains(id)) nodes[otherId] = other with { FeedFrom = other.FeedFrom.Where(f => f != id).ToArray() };
                }
                foreach (var d in datacenters.Where(d => d.Members.Count == 0 && d.Name != nodes.GetValueOrDefault(plTo)?.Datacenter).ToList())
                {
                    foreach (string relay in d.Relays) nodes.Remove(relay);
                    d.Relays.Clear();
                }
            }
        }

        private (MembershipDatacenter, List<MembershipNode>) Datacenter(string name, int relays, int members)
        {
            var nodes = new List<MembershipNode>();
            var relayIds = new List<string>();
            for (int r = 0; r < relays; r++)
            {
                string id = NewId();
                relayIds.Add(id);
                var relay = Node(id, name, voter: true, publish: false);
                nodes.Add(r > 0 && random.Next(2) == 0 ? relay with { FeedFrom = [relayIds[0]] } : relay);
            }
            var memberIds = new List<string>();
            for (int m = 0; m < members; m++)
            {
                string id = NewId();
                memberIds.Add(id);
                nodes.Add(Node(id, name, voter: random.Next(5) > 0, publish: random.Next(4) > 0));
            }
            return (new MembershipDatacenter(name, relayIds, memberIds), nodes);
        }

        private MembershipNode Node(string id, string dc, bool voter, bool publish) => new()
        {
            Id = id,
            Datacenter = dc,
            Voter = voter,
            Listen = Endpoint(),
            Publish = publish ? Endpoint() : null,
            Learners = random.Next(2) == 0 ? Endpoint() : null,
        };

        private NodeEndpoint Endpoint() => new("127.0.0.1", _nextPort++);

        private string NewId() => "n" + _nextId++;
    }
}
