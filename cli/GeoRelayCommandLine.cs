using System.CommandLine;
using GeoRelay.Cli.Demo;

namespace GeoRelay.Cli;

/// <summary>Every georelay command; tests parse the command lines that docs and deploy files hand to it.</summary>
public static class GeoRelayCommandLine
{
    public static RootCommand Create()
    {
        var root = new RootCommand("GeoRelay: one ordered log, delivered once per datacenter to members and learners");
        foreach (var command in DaemonCommands.Create()) root.Subcommands.Add(command);
        root.Subcommands.Add(PublishCommand.Create());
        root.Subcommands.Add(TailCommand.Create());
        root.Subcommands.Add(StateCommand.Create());
        root.Subcommands.Add(CheckConfigCommand.Create());
        root.Subcommands.Add(StatusCommand.Create());
        foreach (var command in AdminCommands.Create()) root.Subcommands.Add(command);
        root.Subcommands.Add(ConfigCommand.Create());
        foreach (var command in SecurityCommands.Create()) root.Subcommands.Add(command);
        root.Subcommands.Add(DemoCommand.Create());
        return root;
    }
}
