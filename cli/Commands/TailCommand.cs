using System.CommandLine;
using System.Text;

namespace GeoRelay.Cli;

// Inside the namespace: `LearnerClient` alone would name the GeoRelay.LearnerClient namespace here.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// <c>georelay tail --connect HOST:PORT[,HOST:PORT...] [--from N] [--count K] [--prefix P]</c>: subscribe as a
/// learner and print <c>&lt;index&gt;TAB&lt;payload as UTF-8&gt;</c> per entry.
/// </summary>
public static class TailCommand
{
    public static Command Create()
    {
        var connect = new Option<string>("--connect")
        {
            Description = "Learner endpoints of relays or members, HOST:PORT, comma-separated, preferred first",
            Required = true,
        };
        var from = new Option<ulong>("--from") { Description = "First index to print", DefaultValueFactory = _ => 1 };
        var count = new Option<ulong?>("--count") { Description = "Exit after printing this many entries" };
        var prefix = new Option<string?>("--prefix") { Description = "Only entries whose key starts with this prefix" };
        var command = new Command("tail", "Subscribe as a learner and print one line per entry: <index><TAB><payload as UTF-8>; "
            + "exit codes: 1 no endpoint answered, 3 snapshot required, " + ClientExitCodes.RefusalsHelp);
        command.Options.Add(connect);
        command.Options.Add(from);
        command.Options.Add(count);
        command.Options.Add(prefix);
        var security = new ClientSecurityOptions();
        security.AddTo(command);
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var endpoints = parseResult.GetValue(connect)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
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
                    Endpoints = endpoints,
                    KeyPrefix = parseResult.GetValue(prefix),
                    NodeId = $"tail-{Environment.MachineName}-{Environment.ProcessId}",
                    AuthToken = security.Token(parseResult),
                    TlsCaFile = parseResult.GetValue(security.Ca),
                };
                options.Validate();
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"--connect/--prefix: {e.Message}");
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
}
