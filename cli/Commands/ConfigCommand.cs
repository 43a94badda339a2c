using System.CommandLine;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>
/// <c>georelay config show|diff|apply</c>: the cluster's membership (voters, non-voters, relays, datacenters,
/// addresses), which lives in the replicated log, read and changed through a voter's admin endpoint. docs/operations.md,
/// "Changing the membership", has the runbook.
/// </summary>
public static class ConfigCommand
{
    public static Command Create()
    {
        var command = new Command("config",
            "Show or change the cluster's membership (clusters with `elections: true`): the committed configuration, what a file would change, and applying it step by step");
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Diff());
        command.Subcommands.Add(Apply());
        return command;
    }

    private static Command Show()
    {
        var client = new AdminClient();
        var command = new Command("show", "Print the committed membership (as topology sections), the latest when a change is not committed yet, and who leads");
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (http, exit) = Connect(client, parse, "config show");
            if (http is null) return exit;
            using var owned = http;
            var answer = await http.ConfigAsync(parse.GetValue(client.Admin)!, ct).ConfigureAwait(false);
            if (answer.Value is not { } report)
            {
                Console.Error.WriteLine("config show: " + answer.Error);
                return 1;
            }
            Console.WriteLine($"# asked {report.Node}: {(report.Leader is null ? "no leader known" : $"{report.Leader} leads")} term {report.Term}");
            Console.WriteLine(report.CommittedIndex == 0
                ? "# committed: the topology file's membership (no configuration entry in the log yet)"
                : $"# committed: configuration entry {report.CommittedIndex}");
            Console.WriteLine($"# voters: {string.Join(", ", report.Voters)}");
            Console.WriteLine($"# non-voters: {(report.NonVoters.Count == 0 ? "none" : string.Join(", ", report.NonVoters))}");
            Console.WriteLine(report.Membership);
            if (report.Latest is { } latest)
            {
                Console.WriteLine($"# latest, not committed yet: configuration entry {report.LatestIndex}");
                Console.WriteLine(latest);
            }
            return 0;
        });
        return command;
    }

    private static Command Diff()
    {
        var client = new AdminClient();
        var config = ConfigOption("The topology file whose membership to compare with the cluster's");
        var command = new Command("diff", "Print what applying a topology file's membership would change, and the steps `config apply` would take; changes nothing") { config };
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (http, exit) = Connect(client, parse, "config diff");
            if (http is null) return exit;
            using var owned = http;
            if (Load(parse.GetValue(config)!) is not { } file) return 2;
            var driver = new ConfigApplyDriver(http, ConfigApplyOptions.Default, Console.Out, Console.Error);
            var plan = await driver.PlanAsync(parse.GetValue(client.Admin)!, file, ct).ConfigureAwait(false);
            if (plan is null) return 2;
            var report = plan.Leader.Report;
            Console.WriteLine($"# from the committed membership (entry {report.CommittedIndex}; {report.Leader} leads term {report.Term}) to {file.SourcePath}'s");
            var changes = MembershipDiff.Between(plan.Current, plan.Desired);
            if (changes.Count == 0)
            {
                Console.WriteLine("no changes");
                return 0;
            }
            Console.WriteLine("changes:");
            foreach (var change in changes) Console.WriteLine("  " + change);
            Console.WriteLine("steps (`georelay config apply` commits each before the next):");
            for (int i = 0; i < plan.Steps.Count; i++) Console.WriteLine($"  {i + 1}. {plan.Steps[i].Description}");
            return 0;
        });
        return command;
    }

    private static Command Apply()
    {
        var client = new AdminClient();
        var config = ConfigOption("The topology file whose membership the cluster should have");
        var timeout = DurationOption.Create("--timeout", "How long each step may take (a new voter's catch-up included)", ConfigApplyOptions.Default.StepTimeout);
        var command = new Command("apply",
            "Change the cluster's membership to a topology file's, one safe step at a time against the leader (followed as it moves); each step commits before the next. " +
            "Exit 0 when done, 1 when a step failed (the steps before it stay committed: re-run to go on), 2 for a file or plan problem") { config, timeout };
        client.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (http, exit) = Connect(client, parse, "config apply");
            if (http is null) return exit;
            using var owned = http;
            if (Load(parse.GetValue(config)!) is not { } file) return 2;
            var options = ConfigApplyOptions.Default with { StepTimeout = parse.GetValue(timeout) };
            return await new ConfigApplyDriver(http, options, Console.Out, Console.Error).ApplyAsync(parse.GetValue(client.Admin)!, file, ct).ConfigureAwait(false);
        });
        return command;
    }

    private static Option<string> ConfigOption(string description) => new("--config") { Description = description, Required = true, HelpName = "file" };

    private static (HttpConfigAdmin? Admin, int ExitCode) Connect(AdminClient client, ParseResult parse, string command)
    {
        if (!NodeEndpoint.TryParseAdmin(parse.GetValue(client.Admin), out _, out var error))
        {
            Console.Error.WriteLine($"--admin: {error}");
            return (null, 2);
        }
        return client.TryCredentials(parse, command, caFromTopology: null, out var token, out var tls) ? (new HttpConfigAdmin(token, tls), 0) : (null, 2);
    }

    private static TopologyConfig? Load(string path)
    {
        var loaded = TopologyLoader.LoadFile(path);
        if (loaded.Config is { } config) return config;
        foreach (var problem in loaded.Problems) Console.Error.WriteLine(problem);
        return null;
    }
}
