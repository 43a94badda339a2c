using System.CommandLine;
using GeoRelay.Cli;

var root = new RootCommand("GeoRelay: one ordered log, delivered once per datacenter to members and learners");
foreach (var command in DaemonCommands.Create()) root.Subcommands.Add(command);
root.Subcommands.Add(PublishCommand.Create());
root.Subcommands.Add(TailCommand.Create());
root.Subcommands.Add(CheckConfigCommand.Create());
root.Subcommands.Add(StatusCommand.Create());
foreach (var command in SecurityCommands.Create()) root.Subcommands.Add(command);
root.Subcommands.Add(GeoRelay.Cli.Demo.DemoCommand.Create());
return await root.Parse(args).InvokeAsync();
