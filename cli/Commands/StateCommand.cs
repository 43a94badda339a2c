using System.CommandLine;

namespace GeoRelay.Cli;

// Inside the namespace: `LearnerClient` alone would name the GeoRelay.LearnerClient namespace here.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

/// <summary>
/// <c>georelay state --connect HOST:PORT[,...] [--local ...] [--config FILE --dc NAME] [--prefix P]</c>: subscribe from
/// a snapshot of the keyed state and, once it is complete, print it as <c>KEY&lt;TAB&gt;VALUE</c> lines, keys in byte
/// order (<see cref="KeyedStateBuilder"/>), then exit. The state is the log's as of the snapshot's index: on a keyed
/// cluster that lags the head by at most what the nodes have not folded into their snapshot yet; on a cluster that
/// keeps every entry and sends an empty snapshot at 0, it is empty.
/// </summary>
public static class StateCommand
{
    /// <summary>Interrupted (SIGINT) before the snapshot was complete: nothing was printed. 128 + SIGINT, as shells report it.</summary>
    public const int Interrupted = 130;

    public static Command Create()
    {
        var endpoints = new LearnerEndpointOptions();
        var command = new Command("state", "Print the keyed state of the log's snapshot as <key><TAB><value> lines, keys in byte order, "
            + "escaped (\\t, \\n, \\r, \\\\); exit codes: 1 no endpoint answered, 3 snapshot required (entries were dropped without keyed compaction), "
            + ClientExitCodes.RefusalsHelp + $", {Interrupted} interrupted before the snapshot was complete");
        endpoints.AddTo(command);
        endpoints.AddSecurityTo(command);
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (!endpoints.TryCreate(parseResult, "state", error, out var options)) return 2;
            var state = new KeyedStateBuilder();
            try
            {
                await using var learner = await LearnerClient.ConnectAsync(options, ct);
                await foreach (var entry in learner.SubscribeAsync(SubscribeFrom.Snapshot, ct))
                    if (state.Apply(entry)) break;
            }
            catch (Exception e) when (e is LearnerConnectException or ClientRefusedException or SnapshotRequiredException)
            {
                return ClientExitCodes.ReportSubscriptionFailure(e, error);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                error.WriteLine("interrupted before the snapshot was complete: nothing printed");
                return Interrupted;
            }
            if (!state.Complete)
            {
                error.WriteLine("the subscription ended before the snapshot was complete: nothing printed");
                return ClientExitCodes.Unreachable;
            }
            state.WriteTo(output);
            error.WriteLine($"state at {state.Index}: {state.Count} keys");
            return 0;
        });
        return command;
    }
}
