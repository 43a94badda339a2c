using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;
using Spectre.Console;

namespace GeoRelay.Cli;

/// <summary>`georelay status --admin HOST:PORT`: a node's peers with their states and statistics, and for the leader every datacenter's route.</summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var admin = new Option<string>("--admin") { Description = "The node's admin endpoint, HOST:PORT", Required = true };
        var json = new Option<bool>("--json") { Description = "Print the node's /status JSON as it is" };
        var command = new Command("status", "Show a running node's peers, states, traffic and lag") { admin, json };
        command.SetAction(async (parse, ct) =>
        {
            if (!NodeEndpoint.TryParse(parse.GetValue(admin), out var endpoint, out var error))
            {
                Console.Error.WriteLine($"--admin: {error}");
                return 2;
            }
            string body;
            using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
            {
                try
                {
                    body = await http.GetStringAsync($"http://{endpoint}/status", ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Console.Error.WriteLine($"status: cannot read http://{endpoint}/status: {e.Message}");
                    return 1;
                }
            }
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
                Console.Error.WriteLine($"status: http://{endpoint}/status did not answer with a node status: {e.Message}");
                return 1;
            }
            if (report is null) return 1;
            bool piped = Console.IsOutputRedirected;
            var console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = piped ? AnsiSupport.No : AnsiSupport.Detect,
                Interactive = piped ? InteractionSupport.No : InteractionSupport.Detect,
            });
            // Piped output has no terminal width: keep rows whole rather than wrapping them at 80.
            if (piped) console.Profile.Width = Math.Max(console.Profile.Width, 200);
            Print(console, report);
            return 0;
        });
        return command;
    }

    public static void Print(IAnsiConsole console, NodeStatusReport r)
    {
        console.MarkupLine(Markup.Escape($"{r.Node}: {r.Role} in {r.Datacenter}, epoch {r.Epoch}, {r.State}; " +
                                         $"last {N(r.Indexes.Last)}, durable {N(r.Indexes.Durable)}, commit {N(r.Indexes.Commit)}" +
                                         (r.Role == "relay" ? $", retained {N(r.Indexes.Retained)}" : "") +
                                         $"; lag {N(r.Lag)}; batches {N(r.Batches)}"));
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
            console.MarkupLine(Markup.Escape($"learners: {learners.Connected} connected, {N(learners.SlowConsumerCuts)} cut as slow consumers, {N(learners.FramesSent)} frames sent"));
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
