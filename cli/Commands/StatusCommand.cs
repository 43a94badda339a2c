using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using Spectre.Console;

namespace GeoRelay.Cli;

/// <summary>`georelay status --admin HOST:PORT`: a node's peers and learners with their states and statistics, and for the leader every datacenter's route.</summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var client = new AdminClient();
        var json = new Option<bool>("--json") { Description = "Print the node's /status JSON as it is" };
        var command = new Command("status", "Show a running node's peers, learners, states, traffic and lag") { json };
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (body, exit) = await client.SendAsync(parse, "status", HttpMethod.Get, "/status", null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            if (parse.GetValue(json))
            {
                Console.WriteLine(body);
                return 0;
            }
            NodeStatusReport? report;
            try
            {
                report = JsonSerializer.Deserialize(body, AdminJson.Default.NodeStatusReport);
            }
            catch (JsonException e)
            {
                Console.Error.WriteLine($"status: {parse.GetValue(client.Admin)} did not answer /status with a node status: {e.Message}");
                return 1;
            }
            if (report is null) return 1;
            Print(Terminal(), report);
            return 0;
        });
        return command;
    }

    /// <summary>A console for tables: no escapes into a pipe, and rows kept whole there rather than wrapped at 80.</summary>
    internal static IAnsiConsole Terminal()
    {
        bool piped = Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = piped ? AnsiSupport.No : AnsiSupport.Detect,
            Interactive = piped ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (piped) console.Profile.Width = Math.Max(console.Profile.Width, 200);
        return console;
    }

    public static void Print(IAnsiConsole console, NodeStatusReport r)
    {
        console.MarkupLine(Markup.Escape($"{r.Node}: {r.Role} in {r.Datacenter}, epoch {r.Epoch}, {r.State}; " +
                                         $"last {N(r.Indexes.Last)}, durable {N(r.Indexes.Durable)}, commit {N(r.Indexes.Commit)}" +
                                         (r.Role == "relay" ? $", retained {N(r.Indexes.Retained)}" : "") +
                                         $"; lag {N(r.Lag)}; batches {N(r.Batches)}"));
        if (r.Election is { } e)
            console.MarkupLine(Markup.Escape($"election: term {N(e.Term)}, {e.Role}" + (e.Leader is null ? ", no leader known" : $", leader {e.Leader}") +
                                             (e.VotedFor is null ? "" : $", voted for {e.VotedFor}") + $"; {N(e.RoleChanges)} role change(s) since start"));
        if (r.Datacenters.Count > 0)
        {
            var routes = new Table().Title("datacenters").AddColumns("datacenter", "route", "connected", "acked index", "lag",
                "batches", "bytes sent", "entry bytes", "ratio", "failovers", "in flight", "direct time");
            foreach (var d in r.Datacenters)
                routes.AddRow(Cells(d.Name, d.Route, d.Connected ? "yes" : "no", N(d.Acked), N(d.Lag), N(d.Batches), Bytes(d.BytesSent),
                    Bytes(d.EntryBytesSent), d.CompressionRatio > 0 ? d.CompressionRatio.ToString("0.0", CultureInfo.InvariantCulture) + "x" : "-",
                    N(d.Failovers), Bytes(d.InflightBytes), d.DirectSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"));
            console.Write(routes);
        }
        var peers = new Table().Title("peers").AddColumns("peer", "role", "datacenter", "state", "connections", "bytes sent", "bytes received", "index", "lag");
        foreach (var p in r.Peers)
            peers.AddRow(Cells(p.Id, p.Role, p.Datacenter, p.State, N(p.Connections), Bytes(p.BytesSent), Bytes(p.BytesReceived),
                p.Index is { } i ? N(i) : "-", p.Lag is { } l ? N(l) : "-"));
        console.Write(peers);
        if (r.Learners is { } learners)
        {
            console.MarkupLine(Markup.Escape($"learners: {learners.Connected} connected, {N(learners.SlowConsumerCuts)} cut as slow consumers, {N(learners.FramesSent)} frames sent"));
            if (learners.Connections is { Count: > 0 } connections) console.Write(LearnerTable(connections));
        }
    }

    /// <summary>One row per learner connection: received is what was sent to it, delivered what its application confirmed.</summary>
    public static Table LearnerTable(IReadOnlyList<LearnerConnectionReport> learners)
    {
        var table = new Table().Title("learners").AddColumns("connection", "learner", "remote", "prefix", "state", "from", "received", "delivered", "queued");
        foreach (var l in learners)
            table.AddRow(Cells(l.Connection.ToString(CultureInfo.InvariantCulture), l.Id, l.Remote ?? "-", l.Prefix ?? "(all)", l.State,
                N(l.From), N(l.ReceivedIndex), N(l.DeliveredIndex), Bytes(l.QueuedBytes)));
        return table;
    }

    private static string[] Cells(params string[] values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = Markup.Escape(values[i]);
        return values;
    }

    private static string N(long n) => Units.Count(n);
    private static string N(ulong n) => Units.Count(n);
    private static string Bytes(long n) => Units.Bytes(n);
}
