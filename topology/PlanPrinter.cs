using System.Text;

namespace GeoRelay.Topology;

/// <summary>Renders a topology and its routing plan for people (<c>georelay check-config</c>).</summary>
public static class PlanPrinter
{
    /// <summary>
    /// The cluster, leader, quorum and defaults, then per datacenter: its route, relays in priority
    /// order (marked active, standby, or down when the plan skipped them), members with their listen
    /// addresses, and learner endpoints.
    /// </summary>
    public static string Format(TopologyConfig topology, IReadOnlyList<DatacenterRoute> plan)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(plan);
        var text = new StringBuilder();
        var leader = topology.Leader;
        var d = topology.Defaults;
        int members = topology.VotingMemberCount;
        int nonVoters = topology.MemberCount - members;

        text.Append("cluster   ").Append(topology.Cluster).Append('\n');
        text.Append("leader    ").Append(leader.Id).Append(" in ").Append(leader.Datacenter)
            .Append(": publish ").Append(leader.Publish?.ToString() ?? "-")
            .Append(", listen ").Append(leader.Listen?.ToString() ?? "-").Append('\n');
        text.Append("quorum    ").Append(topology.Quorum).Append(": ").Append(topology.RequiredAcks)
            .Append(" of ").Append(members).Append(members == 1 ? " member ack" : " member acks").Append(" commit an entry")
            .Append(nonVoters == 0 ? "" : nonVoters == 1 ? " (1 non-voting member)" : $" ({nonVoters} non-voting members)").Append('\n');
        text.Append("defaults  heartbeat ").Append(ConfigUnits.FormatDuration(d.Heartbeat))
            .Append(", failover-after ").Append(ConfigUnits.FormatDuration(d.FailoverAfter))
            .Append(", failback-after ").Append(ConfigUnits.FormatDuration(d.FailbackAfter))
            .Append(", batch ").Append(ConfigUnits.FormatSize(d.BatchMaxBytes))
            .Append(d.BatchLinger == TimeSpan.Zero ? " (natural batching)" : " or linger " + ConfigUnits.FormatDuration(d.BatchLinger))
            .Append(", window ").Append(ConfigUnits.FormatSize(d.Window))
            .Append(", compression ").Append(d.CompressionLevel == 0 ? "off" : "zstd " + d.CompressionLevel)
            .Append(d.LocalCompressionLevel == d.CompressionLevel ? "" : d.LocalCompressionLevel == 0 ? " (off inside a DC)" : $" (zstd {d.LocalCompressionLevel} inside a DC)")
            .Append('\n')
            .Append("          retention ").Append(ConfigUnits.FormatSize(d.RetentionMaxBytes)).Append(" or ").Append(ConfigUnits.FormatDuration(d.RetentionMaxAge))
            .Append(d.Compaction == LogCompaction.Keyed ? $", compaction keyed (tombstones kept {ConfigUnits.FormatDuration(d.TombstoneRetention)})" : "")
            .Append(", max-frame ").Append(ConfigUnits.FormatSize(d.MaxFrame))
            .Append(", learner-backlog ").Append(ConfigUnits.FormatSize(d.LearnerBacklog))
            .Append(d.MaxLearners is { } maxLearners ? $", max-learners {maxLearners}" : "")
            .Append(", delivery ").Append(d.Delivery == LearnerDelivery.Durable ? "durable" : "committed")
            .Append(", handshake-timeout ").Append(ConfigUnits.FormatDuration(d.HandshakeTimeout))
            .Append(", fsync ").Append(d.Fsync ? "on" : "off").Append('\n');

        foreach (var route in plan)
        {
            var dc = topology.GetDatacenter(route.Datacenter);
            text.Append('\n').Append("datacenter ").Append(dc.Name).Append(dc.IsLeaderDatacenter ? " (leader's)" : "").Append('\n');

            text.Append("  route     ");
            if (route.Kind == RouteKind.Relay)
            {
                text.Append("via relay ").Append(route.RelayId);
            }
            else if (dc.IsLeaderDatacenter)
            {
                text.Append("direct: the leader serves its own datacenter");
            }
            else
            {
                text.Append("direct: no healthy relay, the leader sends to each member");
            }
            text.Append('\n');

            text.Append("  relays   ");
            if (dc.Relays.Count == 0)
            {
                text.Append("none");
            }
            bool passedActive = false;
            for (int i = 0; i < dc.Relays.Count; i++)
            {
                string id = dc.Relays[i];
                string state;
                if (id == route.RelayId)
                {
                    state = "active";
                    passedActive = true;
                }
                else if (topology.Nodes[id].FeedFrom is { Count: > 0 } parents)
                {
                    state = "tier 2, feeds from " + string.Join(" or ", parents);
                }
                else
                {
                    state = passedActive ? "standby" : "down";
                }
                text.Append(i == 0 ? "" : ", ").Append(i + 1).Append(". ").Append(id)
                    .Append(' ').Append(topology.Nodes[id].Listen?.ToString() ?? "-").Append(" (").Append(state).Append(')');
            }
            text.Append('\n');

            text.Append("  members   ");
            for (int i = 0; i < route.Members.Count; i++)
            {
                string id = route.Members[i];
                text.Append(i == 0 ? "" : ", ").Append(id).Append(' ').Append(topology.Nodes[id].Listen?.ToString() ?? "-")
                    .Append(topology.Nodes[id].Voter ? "" : " (non-voter)");
            }
            text.Append('\n');

            text.Append("  learners  ");
            if (route.LearnerEndpoints.Count == 0)
            {
                text.Append("none");
            }
            for (int i = 0; i < route.LearnerEndpoints.Count; i++)
            {
                text.Append(i == 0 ? "" : ", ").Append(route.LearnerEndpoints[i]);
            }
            text.Append('\n');
            AppendWeb(text, topology, dc);
        }
        return text.ToString();
    }

    /// <summary>The datacenter's web learner endpoints (docs/web.md), when it has any; files without them print as before.</summary>
    private static void AppendWeb(StringBuilder text, TopologyConfig topology, DatacenterConfig dc)
    {
        bool any = false;
        foreach (var node in topology.Nodes.Values)
        {
            if (node.Datacenter != dc.Name || node.Web is not { } web)
            {
                continue;
            }
            text.Append(any ? ", " : "  web       ").Append(node.Id).Append(' ').Append(web);
            any = true;
        }
        if (any)
        {
            text.Append('\n');
        }
    }

    /// <summary>Every problem on its own line, then a count.</summary>
    public static string FormatProblems(IReadOnlyList<ConfigProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        var text = new StringBuilder();
        foreach (var problem in problems)
        {
            text.Append(problem).Append('\n');
        }
        text.Append(problems.Count == 1 ? "1 problem" : $"{problems.Count} problems").Append("\n");
        return text.ToString();
    }
}

/// <summary>The logic of <c>georelay check-config FILE</c>, apart from the command line.</summary>
public static class TopologyCheck
{
    public const int ExitOk = 0;
    public const int ExitInvalid = 2;

    /// <summary>
    /// Loads <paramref name="path"/>; prints the plan (every relay assumed healthy) to
    /// <paramref name="output"/>, any warnings to <paramref name="error"/>, and returns 0; or prints every
    /// problem, or what would stop a node from starting with the file, to <paramref name="error"/> and returns 2.
    /// </summary>
    public static int Run(string path, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var result = TopologyLoader.LoadFile(path);
        if (!result.Success)
        {
            error.Write(PlanPrinter.FormatProblems(result.Problems));
            return ExitInvalid;
        }
        if (result.StartProblems.Count > 0)
        {
            error.Write(PlanPrinter.FormatProblems(result.StartProblems));
            return ExitInvalid;
        }
        var plan = RoutePlanner.Plan(result.Config, static _ => true);
        output.Write(PlanPrinter.Format(result.Config, plan));
        output.Write("\nRoutes assume every relay is healthy; at run time a datacenter fails over to its next relay, then to direct sends.\n");
        foreach (var warning in result.Warnings)
            error.WriteLine(warning.Line > 0 ? $"{warning.File}:{warning.Line}:{warning.Column}: warning: {warning.Message}" : $"{warning.File}: warning: {warning.Message}");
        return ExitOk;
    }
}
