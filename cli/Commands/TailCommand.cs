using System.CommandLine;
using System.Text;

namespace GeoRelay.Cli;

// Inside the namespace: `LearnerClient` alone would name the GeoRelay.LearnerClient namespace here.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// <c>georelay tail --connect HOST:PORT[,HOST:PORT...] [--local HOST:PORT[,...]] [--config FILE --dc NAME] [--from N]
/// [--count K] [--prefix P]</c>: subscribe as a learner and print <c>&lt;index&gt;TAB&lt;payload as UTF-8&gt;</c> per entry.
/// </summary>
public static class TailCommand
{
    public static Command Create()
    {
        var connect = new Option<string?>("--connect")
        {
            Description = "Learner endpoints of relays or members, HOST:PORT, comma-separated, tried in this order (after --local)",
        };
        var local = new Option<string?>("--local")
        {
            Description = "Learner endpoints of this datacenter, HOST:PORT, comma-separated, tried first in a random order",
        };
        var config = new Option<string?>("--config") { Description = "Topology file: with --dc, where the endpoints come from" };
        var dc = new Option<string?>("--dc")
        {
            Description = "With --config: this datacenter's relays and members are the local endpoints and, unless --connect is given, the other datacenters' follow",
        };
        var from = new Option<ulong>("--from") { Description = "First index to print", DefaultValueFactory = _ => 1 };
        var count = new Option<ulong?>("--count") { Description = "Exit after printing this many entries" };
        var prefix = new Option<string?>("--prefix") { Description = "Only entries whose key starts with this prefix" };
        var command = new Command("tail", "Subscribe as a learner and print one line per entry: <index><TAB><payload as UTF-8>; "
            + "exit codes: 1 no endpoint answered, 3 snapshot required, " + ClientExitCodes.RefusalsHelp);
        command.Options.Add(connect);
        command.Options.Add(local);
        command.Options.Add(config);
        command.Options.Add(dc);
        command.Options.Add(from);
        command.Options.Add(count);
        command.Options.Add(prefix);
        var security = new ClientSecurityOptions();
        security.AddTo(command);
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var endpoints = List(parseResult.GetValue(connect));
            var localEndpoints = List(parseResult.GetValue(local));
            string cluster = "";
            string? ca = parseResult.GetValue(security.Ca);
            if (parseResult.GetValue(config) is { } configPath)
            {
                if (!TryFromTopology(configPath, parseResult.GetValue(dc), error, out var fromTopology)) return 2;
                localEndpoints ??= fromTopology.Local;
                endpoints ??= fromTopology.Others;
                cluster = fromTopology.Cluster;
                ca ??= fromTopology.Ca;
            }
            else if (parseResult.GetValue(dc) is not null)
            {
                error.WriteLine("--dc needs --config FILE (the topology that lists the datacenter's nodes)");
                return 2;
            }
            if (endpoints is null && localEndpoints is null)
            {
                error.WriteLine("give the learner endpoints: --connect HOST:PORT[,...], --local HOST:PORT[,...], or --config FILE --dc NAME");
                return 2;
            }
            ulong fromIndex = parseResult.GetValue(from);
            ulong? limit = parseResult.GetValue(count);
            if (fromIndex == 0)
            {
                error.WriteLine("--from must be at least 1 (indexes start at 1)");
                return 2;
            }
            if (limit == 0) return 0;
            LearnerClientOptions options;
            try
            {
                options = LearnerClientOptions.Default with
                {
                    Endpoints = endpoints ?? [],
                    LocalEndpoints = localEndpoints ?? [],
                    Cluster = cluster,
                    KeyPrefix = parseResult.GetValue(prefix),
                    NodeId = $"tail-{Environment.MachineName}-{Environment.ProcessId}",
                    AuthToken = security.Token(parseResult),
                    TlsCaFile = ca,
                };
                options.Validate();
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
                return 2;
            }
            ulong printed = 0;
            var line = new StringBuilder();
            try
            {
                await using var learner = await LearnerClient.ConnectAsync(options, ct);
                ulong from = fromIndex;
                while (true)
                {
                    try
                    {
                        await foreach (var entry in learner.SubscribeAsync(from, ct))
                        {
                            line.Clear().Append(entry.Index).Append('\t').Append(Encoding.UTF8.GetString(entry.Payload.Span));
                            output.WriteLine(line);
                            if (limit is { } k && ++printed >= k) return 0;
                        }
                        break;
                    }
                    catch (LogTruncatedException e)
                    {
                        // delivery: durable, and a leader change took back lines printed above: say so, print the new ones.
                        error.WriteLine($"truncated: {e.Message}");
                        from = e.ResumeFrom;
                    }
                }
            }
            catch (LearnerConnectException e)
            {
                error.WriteLine(e.Message);
                return ClientExitCodes.Unreachable;
            }
            catch (ClientRefusedException e)
            {
                return ClientExitCodes.Report(e, error);
            }
            catch (SnapshotRequiredException e)
            {
                error.WriteLine($"snapshot required: {e.Message}");
                return ClientExitCodes.SnapshotRequired;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
            return 0;
        });
        return command;
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
