using System.CommandLine;
using System.Text.Json;
using GeoRelay.Server.Admin;
using GeoRelay.Server.Security;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>
/// <c>georelay learners [disconnect ID]</c> and <c>georelay blacklist list|add|remove</c>: a relay's or member's learner
/// connections, and the addresses it refuses, through its admin endpoint. The peers are in <c>georelay status</c>.
/// </summary>
public static class AdminCommands
{
    public static IEnumerable<Command> Create() => [Learners(), Blacklist(), TransferLeader()];

    /// <summary>
    /// <c>georelay transfer-leader --admin HOST:PORT --to NODE</c>: asks the leader (whose admin endpoint this is) to hand
    /// leadership to a caught-up voter, as etcd's move-leader does, and waits until that node leads.
    /// </summary>
    private static Command TransferLeader()
    {
        var client = new AdminClient();
        var to = new Option<string>("--to") { Description = "The voter to lead next (a member, or the preferred leader to bring leadership home)", Required = true };
        var timeout = DurationOption.Create("--timeout", "How long to wait for the new leader", TimeSpan.FromSeconds(10));
        var command = new Command("transfer-leader",
            "Move leadership to another voter (clusters with `elections: true`), for maintenance; a member that leads gives it back to the preferred leader once that one is caught up") { to, timeout };
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            string target = parse.GetValue(to)!;
            var (body, exit) = await client.SendAsync(parse, "transfer-leader", HttpMethod.Post, $"/transfer-leader/{Uri.EscapeDataString(target)}", null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            var started = JsonSerializer.Deserialize(body, AdminJson.Default.TransferStarted)!;
            var deadline = DateTime.UtcNow + parse.GetValue(timeout);
            while (DateTime.UtcNow < deadline)
            {
                // The old leader hears the new one within a heartbeat of its election; its /status says so.
                var (status, _) = await client.SendAsync(parse, "transfer-leader", HttpMethod.Get, "/status", null, ct).ConfigureAwait(false);
                var election = status is null ? null : JsonSerializer.Deserialize(status, AdminJson.Default.NodeStatusReport)?.Election;
                if (election is { Role: not "leader" } && election.Leader == target)
                {
                    Console.WriteLine($"{target} leads term {election.Term} (was {started.From}, term {started.Term})");
                    return 0;
                }
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            Console.Error.WriteLine($"transfer-leader: {target} did not take over from {started.From} within {parse.GetValue(timeout).TotalSeconds:0.#} s " +
                                    "(a transfer waits until the target holds all of the leader's log, and is given up after one election timeout); see both nodes' logs");
            return 1;
        });
        return command;
    }

    private static Command Learners()
    {
        var list = new AdminClient();
        var json = new Option<bool>("--json") { Description = "Print the node's /learners JSON as it is" };
        var command = new Command("learners", "List a relay's or member's learner connections: what each was sent (received) and confirmed (delivered)") { json };
        list.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (body, exit) = await list.SendAsync(parse, "learners", HttpMethod.Get, "/learners", null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            if (parse.GetValue(json))
            {
                Console.WriteLine(body);
                return 0;
            }
            var learners = JsonSerializer.Deserialize(body, AdminJson.Default.IReadOnlyListLearnerConnectionReport) ?? [];
            if (learners.Count == 0) Console.WriteLine("no learner connections");
            else StatusCommand.Terminal().Write(StatusCommand.LearnerTable(learners));
            return 0;
        });

        var cut = new AdminClient();
        var id = new Argument<int>("connection") { Description = "The learner's connection id (the first column of `georelay learners`)" };
        var disconnect = new Command("disconnect", "Cut one learner connection; the learner is told why, and the SDK reconnects and resumes at its next index") { id };
        cut.AddTo(disconnect);
        disconnect.SetAction(async (parse, ct) =>
        {
            int connection = parse.GetValue(id);
            var (body, exit) = await cut.SendAsync(parse, "learners disconnect", HttpMethod.Post, $"/learners/{connection}/disconnect", null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            Console.WriteLine($"disconnected learner connection {connection}");
            return 0;
        });
        command.Subcommands.Add(disconnect);
        return command;
    }

    private static Command Blacklist()
    {
        var command = new Command("blacklist", "Refuse learners and publishers from an address or range (and cut those connected); list or remove entries. Kept in memory: a restart clears it");

        var listClient = new AdminClient();
        var list = new Command("list", "List the blacklist of a node");
        listClient.AddTo(list);
        list.SetAction(async (parse, ct) =>
        {
            var (body, exit) = await listClient.SendAsync(parse, "blacklist list", HttpMethod.Get, "/blacklist", null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            var entries = JsonSerializer.Deserialize(body, AdminJson.Default.IReadOnlyListBlacklistReport) ?? [];
            if (entries.Count == 0) Console.WriteLine("the blacklist is empty");
            foreach (var e in entries)
                Console.WriteLine($"{e.Range}\tadded {e.Added:u}\t{(e.Until is { } until ? $"until {until:u}" : "until removed")}");
            return 0;
        });

        var addClient = new AdminClient();
        var address = new Argument<string>("address") { Description = "An address (10.1.2.3, ::1) or a CIDR range (10.0.0.0/8)" };
        var duration = new Option<string?>("--duration") { HelpName = "duration", Description = "How long the entry lasts (90, 30m, 12h); without it, until removed" };
        var add = new Command("add", "Refuse new learner and publish connections from an address or range, and cut those open now") { address, duration };
        addClient.AddTo(add);
        add.SetAction(async (parse, ct) =>
        {
            string text = parse.GetValue(address)!;
            if (!AddressBlacklist.TryParseRange(text, out var range, out var error))
            {
                Console.Error.WriteLine($"blacklist add: {error}");
                return 2;
            }
            var lasting = parse.GetValue(duration);
            if (lasting is not null && !ConfigUnits.TryParseDuration(lasting, out _, out var durationError))
            {
                Console.Error.WriteLine($"blacklist add: --duration: {durationError}");
                return 2;
            }
            var request = new BlacklistRequest(range.ToString(), lasting);
            var (body, exit) = await addClient.SendAsync(parse, "blacklist add", HttpMethod.Post, "/blacklist",
                JsonSerializer.Serialize(request, AdminJson.Default.BlacklistRequest), ct).ConfigureAwait(false);
            if (body is null) return exit;
            var added = JsonSerializer.Deserialize(body, AdminJson.Default.BlacklistAdded)!;
            Console.WriteLine($"blacklisted {added.Entry.Range} {(added.Entry.Until is { } until ? $"until {until:u}" : "until removed")}; cut {added.Cut} connection(s)");
            return 0;
        });

        var removeClient = new AdminClient();
        var removed = new Argument<string>("address") { Description = "The address or range, as `blacklist list` shows it" };
        var remove = new Command("remove", "Remove an entry: connections from it are accepted again") { removed };
        removeClient.AddTo(remove);
        remove.SetAction(async (parse, ct) =>
        {
            string text = parse.GetValue(removed)!;
            if (!AddressBlacklist.TryParseRange(text, out var range, out var error))
            {
                Console.Error.WriteLine($"blacklist remove: {error}");
                return 2;
            }
            var (body, exit) = await removeClient.SendAsync(parse, "blacklist remove", HttpMethod.Delete, "/blacklist/" + range, null, ct).ConfigureAwait(false);
            if (body is null) return exit;
            Console.WriteLine($"removed {range} from the blacklist");
            return 0;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(add);
        command.Subcommands.Add(remove);
        return command;
    }
}
