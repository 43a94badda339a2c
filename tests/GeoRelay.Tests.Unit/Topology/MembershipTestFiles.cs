using GeoRelay.Topology;

namespace GeoRelay.Tests.Unit.Topology;

internal static class MembershipTestFiles
{
    /// <summary>One leader datacenter (ldr, h1, h2) and one with two relays and three members, one of them a non-voter.</summary>
    public const string WithNonVoter = """
        cluster: mtest
        leader: ldr
        insecure: true
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
        """;

    /// <summary>The top-level sections that are not membership, line by line, so a test can append <see cref="Membership.ToYaml"/>.</summary>
    public static string HeadWithoutMembership(string yaml)
    {
        string[] membershipKeys = ["leader:", "leader-candidates:", "datacenters:", "nodes:"];
        var head = new System.Text.StringBuilder();
        bool skipping = false;
        foreach (string line in yaml.Split('\n'))
        {
            bool topLevel = line.Length > 0 && !char.IsWhiteSpace(line[0]) && line[0] != '#';
            if (topLevel)
            {
                skipping = membershipKeys.Any(k => line.StartsWith(k, StringComparison.Ordinal));
            }
            if (!skipping)
            {
                head.Append(line).Append('\n');
            }
        }
        return head.ToString();
    }
}
