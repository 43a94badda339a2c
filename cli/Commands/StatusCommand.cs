using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using Spectre.Console;

namespace GeoRelay.Cli;

/// <summary>
/// `georelay status --admin HOST:PORT`: a node's peers and learners with their states and statistics, and for the leader
/// every datacenter's route. `georelay status --config FILE`: every node of the topology, learners per node and datacenter.
/// </summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var client = new AdminClient(adminRequired: false);
        var json = new Option<bool>("--json") { Description = "Print the node's /status JSON as it is (with --config: the table as JSON)" };
        var config = new Option<string?>("--config")
        {
            Description = "Topology file: ask every node with an admin address, and show learners per node and datacenter (instead of --admin)",
        };
        var timeout = DurationOption.Create("--timeout", "With --config: how long to wait for each node's answer", TimeSpan.FromSeconds(2));
        var command = new Command("status", "Show a running node's peers, learners, states, traffic and lag; with --config, learners on every node") { json, config, timeout };
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(config) is { } path)
            {
                if (parse.GetValue(client.Admin) is not null)
                {
                    Console.Error.WriteLine("status: give --admin HOST:PORT (one node) or --config FILE (every node), not both");
                    return 2;
                }
                return await ClusterAsync(parse, client, path, parse.GetValue(timeout), parse.GetValue(json), ct).ConfigureAwait(false);
            }
            if (parse.GetValue(client.Admin) is null)
            {
                Console.Error.WriteLine("status: give --admin HOST:PORT (one node's admin endpoint) or --config FILE (every node of the topology)");
                return 2;
            }
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

    private static async Task<int> ClusterAsync(ParseResult parse, AdminClient client, string path, TimeSpan timeout, bool json, CancellationToken ct)
    {
        if (timeout <= TimeSpan.Zero)
        {
            Console.Error.WriteLine("--timeout must be longer than 0");
            return 2;
        }
        var loaded = TopologyLoader.LoadFile(path);
        if (!loaded.Success)
        {
            Console.Error.Write(PlanPrinter.FormatProblems(loaded.Problems));
            return 2;
        }
        var topology = loaded.Config;
        if (!client.TryCredentials(parse, "status", topology.Tls?.CaFile, out var token, out var tls)) return 2;
        ClusterStatusReport report;
        using (tls) report = await ClusterQuery.QueryAsync(topology, token, tls, timeout, ct).ConfigureAwait(false);
        if (json) Console.WriteLine(ClusterQuery.Json(report));
        else ClusterStatus.Print(Terminal(), report);
        // Some nodes down is what the table is for; none answering is more likely a wrong file, port or credential.
        return report.Asked > 0 && report.Down == report.Asked ? 1 : 0;
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
                                         $"oldest {N(r.Indexes.Oldest)}, last {N(r.Indexes.Last)}, durable {N(r.Indexes.Durable)}, commit {N(r.Indexes.Commit)}" +
                                         (r.Role == "relay" ? $", retained {N(r.Indexes.Retained)}" : "") +
                                         $"; lag {N(r.Lag)}; batches {N(r.Batches)}" +
                                         (r.Role == "leader" ? "" : $"; feed {r.Feed ?? "none"}")));
        if (r.Keyed is { } k)
            console.MarkupLine(Markup.Escape($"keyed state: through {N(k.Through)} (persisted through {N(k.PersistedThrough)}), {N(k.LiveKeys)} live keys, " +
                                             $"{N(k.Tombstones)} tombstones, {Bytes(k.Bytes)}" +
                                             (k.Complete ? "" : $"; INCOMPLETE: the writes through {N(k.MissingThrough)} are missing (asking another node for its state)") +
                                             (k.ImagesInstalled > 0 ? $"; {N(k.ImagesInstalled)} state(s) taken from another node" : "")));
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
            console.MarkupLine(Markup.Escape($"learners: {learners.Connected} connected" +
                                             (learners.Max is { } max ? $" of max-learners {N(max)}" : "") + $", {N(learners.SlowConsumerCuts)} cut as slow consumers, {N(learners.FramesSent)} frames sent"));
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
