using System.CommandLine;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary><c>georelay check-config FILE</c>: validate a topology file and print its routing plan.</summary>
public static class CheckConfigCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The topology YAML file to check" };
        var command = new Command("check-config",
            "Validate a topology file; print the routing plan and exit 0, or print every problem (FILE:LINE:COLUMN) and exit 2");
        command.Arguments.Add(file);
        command.SetAction(parseResult =>
            TopologyCheck.Run(parseResult.GetRequiredValue(file), parseResult.InvocationConfiguration.Output, parseResult.InvocationConfiguration.Error));
        return command;
    }
}
