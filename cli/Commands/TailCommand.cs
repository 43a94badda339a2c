using System.CommandLine;
using System.Text;

namespace GeoRelay.Cli;

// Inside the namespace: `LearnerClient` alone would name the GeoRelay.LearnerClient namespace here.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// <c>georelay tail --connect HOST:PORT[,HOST:PORT...] [--local HOST:PORT[,...]] [--config FILE --dc NAME]
/// [--from N | --from-snapshot] [--count K] [--prefix P] [--keys]</c>: subscribe as a learner and print
/// <c>&lt;index&gt;TAB&lt;payload as UTF-8&gt;</c> per entry (<see cref="TailLine"/>).
/// </summary>
public static class TailCommand
{
    public static Command Create()
    {
        var endpoints = new LearnerEndpointOptions();
        var from = new Option<ulong>("--from") { Description = "First index to print", DefaultValueFactory = _ => 1 };
        var fromSnapshot = new Option<bool>("--from-snapshot")
        {
            Description = "Start with a snapshot of the keyed state (each live key's latest entry), then the stream after it; "
                + "'snapshot at N: K keys' goes to stderr when it is complete",
        };
        var count = new Option<ulong?>("--count") { Description = "Exit after printing this many entries" };
        var keys = new Option<bool>("--keys")
        {
            Description = "Print <index><TAB><key><TAB><payload>, and <index><TAB><key> for a tombstone; key and payload escaped as `georelay state` does",
        };
        var command = new Command("tail", "Subscribe as a learner and print one line per entry: <index><TAB><payload as UTF-8>; "
            + "exit codes: 1 no endpoint answered, 3 snapshot required, " + ClientExitCodes.RefusalsHelp);
        endpoints.AddTo(command);
        command.Options.Add(from);
        command.Options.Add(fromSnapshot);
        command.Options.Add(count);
        command.Options.Add(keys);
        endpoints.AddSecurityTo(command);
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!endpoints.TryCreate(parseResult, "tail", error, out var options)) return 2;
            ulong fromIndex = parseResult.GetValue(from);
            ulong? limit = parseResult.GetValue(count);
            bool withKeys = parseResult.GetValue(keys);
            if (parseResult.GetValue(fromSnapshot))
            {
                if (parseResult.GetResult(from) is { Implicit: false })
                {
                    error.WriteLine("--from-snapshot and --from: give one (--from-snapshot starts with the keyed state, then the stream after it)");
                    return 2;
                }
                fromIndex = SubscribeFrom.Snapshot;
            }
            else if (fromIndex == 0)
            {
                error.WriteLine("--from must be at least 1 (indexes start at 1)");
                return 2;
            }
            if (limit == 0) return 0;
            ulong printed = 0;
            var line = new StringBuilder();
            try
            {
                await using var learner = await LearnerClient.ConnectAsync(options, ct);
                ulong next = fromIndex;
                // Live keys the snapshot being received brought, for the note at its end marker. A keyed cluster sends
                // a snapshot without --from-snapshot too, when it no longer holds --from: the note says where the stream jumped.
                ulong snapshotKeys = 0, snapshotPrinted = 0;
                while (true)
                {
                    try
                    {
                        await foreach (var entry in learner.SubscribeAsync(next, ct))
                        {
                            if (entry.IsSnapshotBegin)
                            {
                                if (snapshotPrinted > 0)
                                    error.WriteLine($"snapshot restarted at {entry.Index}: the {snapshotPrinted} snapshot entries printed before are superseded");
                                snapshotKeys = snapshotPrinted = 0;
                                continue;
                            }
                            if (entry.IsSnapshotEnd)
                            {
                                error.WriteLine($"snapshot at {entry.Index}: {snapshotKeys} keys");
                                snapshotKeys = snapshotPrinted = 0;
                                continue;
                            }
                            if (entry.IsSnapshot)
                            {
                                snapshotPrinted++;
                                if (!entry.IsTombstone) snapshotKeys++;
                            }
                            if (!TailLine.TryFormat(entry, withKeys, line)) continue;
                            output.WriteLine(line);
                            if (limit is { } k && ++printed >= k) return 0;
                        }
                        break;
                    }
                    catch (LogTruncatedException e)
                    {
                        // delivery: durable, and a leader change took back lines printed above: say so, print the new ones.
                        error.WriteLine($"truncated: {e.Message}");
                        next = e.ResumeFrom;
                    }
                }
            }
            catch (Exception e) when (e is LearnerConnectException or ClientRefusedException or SnapshotRequiredException)
            {
                return ClientExitCodes.ReportSubscriptionFailure(e, error);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
            return 0;
        });
        return command;
    }
}
