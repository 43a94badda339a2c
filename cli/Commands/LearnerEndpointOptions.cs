using System.CommandLine;

namespace GeoRelay.Cli;

using GeoRelay.LearnerClient;

/// <summary>
/// Where a learner command (<c>tail</c>, <c>state</c>) subscribes: <c>--connect</c>, <c>--local</c>,
/// <c>--config FILE --dc NAME</c>, with <c>--prefix</c>, <c>--token-file</c> and <c>--ca</c>, mapped onto
/// <see cref="LearnerClientOptions"/>.
/// </summary>
public sealed class LearnerEndpointOptions
{
    public Option<string?> Connect { get; } = new("--connect")
    {
        Description = "Learner endpoints of relays or members, HOST:PORT, comma-separated, tried in this order (after --local)",
    };

    public Option<string?> Local { get; } = new("--local")
    {
        Description = "Learner endpoints of this datacenter, HOST:PORT, comma-separated, tried first in a random order",
    };

    public Option<string?> Config { get; } = new("--config") { Description = "Topology file: with --dc, where the endpoints come from" };

    public Option<string?> Dc { get; } = new("--dc")
    {
        Description = "With --config: this datacenter's relays and members are the local endpoints and, unless --connect is given, the other datacenters' follow",
    };

    public Option<string?> Prefix { get; } = new("--prefix") { Description = "Only entries whose key starts with this prefix" };

    internal ClientSecurityOptions Security { get; } = new();

    /// <summary>Adds the endpoint options and <c>--prefix</c>; <see cref="AddSecurityTo"/> adds the token and CA after the command's own.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Connect);
        command.Options.Add(Local);
        command.Options.Add(Config);
        command.Options.Add(Dc);
        command.Options.Add(Prefix);
    }

    public void AddSecurityTo(Command command) => Security.AddTo(command);

    /// <summary>
    /// The client's options from the command line, with node id <c>NAME-MACHINE-PID</c>; false, having said why on
    /// <paramref name="error"/> (exit code 2), when the endpoints are missing or wrong.
    /// </summary>
    public bool TryCreate(ParseResult parse, string name, TextWriter error, out LearnerClientOptions options)
    {
        options = LearnerClientOptions.Default;
        var endpoints = List(parse.GetValue(Connect));
        var localEndpoints = List(parse.GetValue(Local));
        string cluster = "";
        string? ca = parse.GetValue(Security.Ca);
        if (parse.GetValue(Config) is { } configPath)
        {
            if (!TryFromTopology(configPath, parse.GetValue(Dc), error, out var fromTopology)) return false;
            localEndpoints ??= fromTopology.Local;
            endpoints ??= fromTopology.Others;
            cluster = fromTopology.Cluster;
            ca ??= fromTopology.Ca;
        }
        else if (parse.GetValue(Dc) is not null)
        {
            error.WriteLine("--dc needs --config FILE (the topology that lists the datacenter's nodes)");
            return false;
        }
        if (endpoints is null && localEndpoints is null)
        {
            error.WriteLine("give the learner endpoints: --connect HOST:PORT[,...], --local HOST:PORT[,...], or --config FILE --dc NAME");
            return false;
        }
        try
        {
            options = LearnerClientOptions.Default with
            {
                Endpoints = endpoints ?? [],
                LocalEndpoints = localEndpoints ?? [],
                Cluster = cluster,
                KeyPrefix = parse.GetValue(Prefix),
                NodeId = $"{name}-{Environment.MachineName}-{Environment.ProcessId}",
                AuthToken = Security.Token(parse),
                TlsCaFile = ca,
            };
            options.Validate();
            return true;
        }
        catch (ArgumentException e)
        {
            string flag = e.ParamName switch
            {
                nameof(LearnerClientOptions.LocalEndpoints) => "--local",
                nameof(LearnerClientOptions.KeyPrefix) => "--prefix",
                _ => "--connect",
            };
            error.WriteLine($"{flag}: {e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal)}");
            return false;
        }
    }

    private static string[]? List(string? text) =>
        text?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The learner addresses of <paramref name="dcName"/>'s relays and members (and of the leader when it is there, since
    /// a voter serves learners while it follows), and those of every other datacenter in file order, as check-config
    /// lists them, with the cluster's name and its CA when learner ports speak TLS; false, having said why on
    /// <paramref name="error"/>, for a file with problems or an unknown datacenter.
    /// </summary>
    public static bool TryFromTopology(string path, string? dcName, TextWriter error,
        out (string[] Local, string[] Others, string Cluster, string? Ca) endpoints)
    {
        endpoints = default;
        var loaded = Topology.TopologyLoader.LoadFile(path);
        if (!loaded.Success)
        {
            error.Write(Topology.PlanPrinter.FormatProblems(loaded.Problems));
            return false;
        }
        var topology = loaded.Config;
        var names = string.Join(", ", topology.Datacenters.Select(d => d.Name));
        if (dcName is null)
        {
            error.WriteLine($"--config needs --dc NAME, the datacenter this learner runs in: one of {names}");
            return false;
        }
        if (!topology.TryGetDatacenter(dcName, out _))
        {
            error.WriteLine($"--dc: {path} has no datacenter '{dcName}'; it has {names}");
            return false;
        }
        var local = new List<string>();
        var others = new List<string>();
        foreach (var route in Topology.RoutePlanner.Plan(topology, static _ => true))
            foreach (var endpoint in route.LearnerEndpoints)
                (route.Datacenter == dcName ? local : others).Add(endpoint.ToString());
        if (local.Count == 0)
        {
            error.WriteLine($"--dc: no node of datacenter '{dcName}' in {path} has a learners address");
            return false;
        }
        endpoints = (local.ToArray(), others.ToArray(), topology.Cluster, topology.Tls is { Learners: true } tls ? tls.CaFile : null);
        return true;
    }
}
