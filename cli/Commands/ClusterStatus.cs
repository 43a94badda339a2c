using GeoRelay.Server.Admin;
using Spectre.Console;

namespace GeoRelay.Cli;

/// <summary>
/// <c>georelay status --config FILE</c>: prints <see cref="ClusterQuery"/>'s table by datacenter: role, where its entries come
/// from, learners connected against <c>max-learners</c>, and a total per datacenter.
/// </summary>
public static class ClusterStatus
{
    public static void Print(IAnsiConsole console, ClusterStatusReport report)
    {
        var table = new Table().Title($"cluster {report.Cluster}: learners per node")
            .AddColumns("datacenter", "node", "role", "state", "feed", "learners", "max-learners");
        foreach (var dc in report.Datacenters)
        {
            foreach (var n in dc.Nodes)
                table.AddRow(Cells(dc.Name, n.Node, n.Role, n.State, n.Feed ?? "-", n.Learners is { } c ? Units.Count(c) : "-",
                    Limit(n.ServesLearners, n.MaxLearners)));
            table.AddRow(Cells(dc.Name, "total", "", "", "", Units.Count(dc.Learners), Limit(dc.ServesLearners, dc.MaxLearners)));
        }
        console.Write(table);
        if (report.Down > 0)
            console.MarkupLine(Markup.Escape($"{report.Down} node(s) did not answer; their learners are not counted"));
    }

    private static string Limit(bool serves, long? max) => !serves ? "-" : max is { } m ? Units.Count(m) : "no limit";

    private static string[] Cells(params string[] values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = Markup.Escape(values[i]);
        return values;
    }
}
