using System.Globalization;
using GeoRelay.Server.Admin;
using GeoRelay.Topology;

namespace GeoRelay.Cli;

/// <summary>How <see cref="ConfigApplyDriver"/> waits.</summary>
public sealed record ConfigApplyOptions
{
    /// <summary>How long one step may take: finding the leader, a promotion's catch-up, the commit, a transfer. Default 60 s.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Between two polls of the cluster while waiting. Default 100 ms.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Between two catch-up progress lines of a promotion. Default 1 s.</summary>
    public TimeSpan ProgressEvery { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock deadlines are measured on. Default the system's.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Waits between polls; null for <see cref="Task.Delay(TimeSpan, CancellationToken)"/> (tests pass one that moves a fake clock).</summary>
    public Func<TimeSpan, CancellationToken, Task>? Delay { get; init; }

    public static ConfigApplyOptions Default { get; } = new();
}

/// <summary>The leader found through an admin endpoint: where its admin endpoint is, and its <c>/config</c>.</summary>
public readonly record struct LeaderView(string Admin, ConfigReport Report)
{
    public Membership Committed => Membership.Decode(Convert.FromBase64String(Report.Encoded));
}

/// <summary>What applying a file would do: the leader it was planned with, the committed membership, and the steps.</summary>
public sealed record ConfigPlan(LeaderView Leader, Membership Current, Membership Desired, IReadOnlyList<MembershipStep> Steps);

/// <summary>
/// <c>georelay config diff|apply</c>: plans the way from the cluster's committed membership to a file's
/// (<see cref="MembershipPlan"/>) and drives the steps against whichever voter leads, one at a time, each committed
/// before the next. The plan is recomputed from the committed membership on every run, so an apply that stopped halfway
/// continues where the cluster is.
/// </summary>
public sealed class ConfigApplyDriver(IConfigAdmin admin, ConfigApplyOptions options, TextWriter output, TextWriter error)
{
    private readonly Func<TimeSpan, CancellationToken, Task> _delay = options.Delay ?? ((d, ct) => Task.Delay(d, ct));
    private bool _midLine;

    /// <summary>Finds the leader from <paramref name="start"/> (any voter's admin endpoint), and plans from its committed membership; null having said why not.</summary>
    public async Task<ConfigPlan?> PlanAsync(string start, TopologyConfig file, CancellationToken ct)
    {
        var deadline = Deadline();
        var leader = await SettledLeaderAsync(start, deadline, ct).ConfigureAwait(false);
        if (leader.Value is not { } found)
        {
            error.WriteLine("config: " + leader.Error);
            return null;
        }
        var current = found.Committed;
        var desired = Membership.Of(file);
        try
        {
            return new ConfigPlan(found, current, desired, MembershipPlan.Steps(file, current, desired, found.Report.Leader!));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            error.WriteLine($"config: no plan from the committed membership (entry {found.Report.CommittedIndex}) to {file.SourcePath}: {e.Message}");
            return null;
        }
    }

    /// <summary>Applies <paramref name="file"/>'s membership; 0 once every step committed, 1 having said which step failed, 2 when there is no plan.</summary>
    public async Task<int> ApplyAsync(string start, TopologyConfig file, CancellationToken ct)
    {
        var plan = await PlanAsync(start, file, ct).ConfigureAwait(false);
        if (plan is null) return 2;
        var (leader, current, _, steps) = plan;
        if (steps.Count == 0)
        {
            output.WriteLine($"the committed membership (entry {leader.Report.CommittedIndex}) is already {file.SourcePath}'s; nothing to do");
            return 0;
        }
        output.WriteLine($"{steps.Count} step(s) from the committed membership (entry {leader.Report.CommittedIndex}; {leader.Report.Leader} leads term {leader.Report.Term}):");
        var before = current;
        for (int i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            string prefix = $"step {i + 1}/{steps.Count}: {step.Description} ...";
            output.Write(prefix);
            _midLine = true;
            long began = options.Time.GetTimestamp();
            var outcome = step.Kind switch
            {
                MembershipStepKind.TransferLeadership => await TransferAsync(step.Node!, before, ct).ConfigureAwait(false),
                _ => await CommitAsync(step, before, ct).ConfigureAwait(false),
            };
            if (!_midLine) output.Write(prefix);
            _midLine = false;
            string took = options.Time.GetElapsedTime(began).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture);
            if (outcome.Error is { } why)
            {
                output.WriteLine(" failed");
                error.WriteLine($"config apply: step {i + 1}/{steps.Count} ({step.Description}) failed after {took} s: {why}");
                error.WriteLine(i == 0
                    ? "config apply: nothing was changed"
                    : $"config apply: step(s) 1-{i} are committed; re-run `georelay config apply` to go on from there (the plan is recomputed from the committed membership)");
                return 1;
            }
            output.WriteLine($" {outcome.Done} ({took} s)");
            if (step.Next is not null) before = step.Next;
        }
        output.WriteLine($"the committed membership is {file.SourcePath}'s");
        return 0;
    }

    private readonly record struct Outcome(string? Done, string? Error);

    /// <summary>A change or a promotion: (for a promotion, the node caught up first) proposed to the leader and waited for until committed.</summary>
    private async Task<Outcome> CommitAsync(MembershipStep step, Membership before, CancellationToken ct)
    {
        var deadline = Deadline();
        var next = step.Next!;
        if (step.Kind == MembershipStepKind.Promote)
        {
            string? behind = await CatchUpAsync(step.Node!, deadline, ct).ConfigureAwait(false);
            if (behind is not null) return new(null, behind);
        }
        string? last = null;
        while (true)
        {
            var found = await SettledLeaderAsync(null, deadline, ct).ConfigureAwait(false);
            if (found.Value is not { } leader) return new(null, found.Error);
            var committed = leader.Committed;
            if (committed.Equals(next)) return new($"committed at entry {leader.Report.CommittedIndex}", null);
            if (!committed.Equals(before))
                return new(null, $"the committed membership (entry {leader.Report.CommittedIndex}) is neither the one this step starts from nor the one it makes: " +
                                 "someone else changed it; re-run `georelay config diff` and `apply`");
            var proposed = await admin.ProposeAsync(leader.Admin, next, ct).ConfigureAwait(false);
            if (proposed.Value is { } entry) return await CommittedAsync(leader.Admin, entry.Index, next, deadline, ct).ConfigureAwait(false);
            last = proposed.Error;
            // 421: leadership moved since /config; 503: the leader cannot take a change yet (that passes); null: no answer.
            if (proposed.Status is not (421 or 503 or null)) return new(null, proposed.Error);
            if (Expired(deadline)) return new(null, $"not proposed within {Seconds(options.StepTimeout)} s; last: {last}");
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Polls until the configuration entry at <paramref name="index"/> is committed, holding <paramref name="next"/>.</summary>
    private async Task<Outcome> CommittedAsync(string proposedTo, ulong index, Membership next, long deadline, CancellationToken ct)
    {
        string ask = proposedTo;
        string last = "no answer yet";
        while (true)
        {
            var answer = await admin.ConfigAsync(ask, ct).ConfigureAwait(false);
            if (answer.Value is { } report)
            {
                if (report.CommittedIndex >= index)
                {
                    var committed = Membership.Decode(Convert.FromBase64String(report.Encoded));
                    if (committed.Equals(next)) return new($"committed at entry {report.CommittedIndex}", null);
                    if (report.LatestIndex == report.CommittedIndex)
                        return new(null, $"entry {index} was not committed: {report.Node} holds entry {report.CommittedIndex}, another membership " +
                                         "(leadership moved before it committed?); re-run `georelay config apply`");
                }
                last = $"{report.Node}: committed configuration entry {report.CommittedIndex}, latest {report.LatestIndex}";
                // A leader that stepped down may not hear the commit; the new leader's view decides.
                if (report.Leader is { } leader && leader != report.Node && report.LeaderAdmin is { } leaderAdmin) ask = leaderAdmin;
            }
            else
            {
                last = answer.Error ?? "no answer";
                ask = proposedTo;
            }
            if (Expired(deadline)) return new(null, $"entry {index} not committed within {Seconds(options.StepTimeout)} s ({last})");
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until the leader reaches <paramref name="node"/> and it holds what was committed when the wait began; null once it does, else why not.</summary>
    private async Task<string?> CatchUpAsync(string node, long deadline, CancellationToken ct)
    {
        ulong? target = null;
        long? lastNote = null;
        string last = "no answer yet";
        while (true)
        {
            var found = await LeaderAsync(null, deadline, ct).ConfigureAwait(false);
            if (found.Value is not { } leader) return found.Error;
            var answer = await admin.ProgressAsync(leader.Admin, node, ct).ConfigureAwait(false);
            if (answer.Value is { } p)
            {
                target ??= p.Commit;
                if (p.Reachable && p.Durable >= target) return null;
                last = $"{node} is {(p.Reachable ? "reachable" : "not reachable")} from {leader.Report.Leader}, durable to {p.Durable} of {target}";
                if (lastNote is not { } noted || options.Time.GetElapsedTime(noted) >= options.ProgressEvery)
                {
                    Note("catching up: " + last);
                    lastNote = options.Time.GetTimestamp();
                }
            }
            else
            {
                if (answer.Status == 404) return answer.Error;
                last = answer.Error ?? "no answer";
            }
            if (Expired(deadline)) return $"{node} did not catch up within {Seconds(options.StepTimeout)} s: {last}";
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Asks the leader to hand over to <paramref name="to"/>, and waits until <paramref name="to"/> says it leads.</summary>
    private async Task<Outcome> TransferAsync(string to, Membership current, CancellationToken ct)
    {
        var deadline = Deadline();
        if (current.Nodes.GetValueOrDefault(to)?.Admin is not { } target)
            return new(null, $"{to} has no admin endpoint in the membership, so this command cannot see it lead; move leadership with `georelay transfer-leader` and re-run");
        bool asked = false;
        string last = "no answer yet";
        while (true)
        {
            var answer = await admin.ConfigAsync(target.ToString(), ct).ConfigureAwait(false);
            if (answer.Value is { Leader: { } leading } report && leading == to && report.Node == to)
                return new($"{to} leads term {report.Term}", null);
            last = answer.Value is { } r ? $"{to} says {r.Leader ?? "no one"} leads term {r.Term}" : answer.Error ?? "no answer";
            if (!asked)
            {
                var found = await LeaderAsync(null, deadline, ct).ConfigureAwait(false);
                if (found.Value is not { } leader) return new(null, found.Error);
                if (leader.Report.Leader == to) return new($"{to} leads term {leader.Report.Term}", null);
                var started = await admin.TransferLeadershipAsync(leader.Admin, to, ct).ConfigureAwait(false);
                if (started.Value is not null) asked = true;
                else if (started.Status is not (409 or null) || Expired(deadline)) return new(null, started.Error);
                else last = started.Error ?? last;
            }
            if (Expired(deadline)) return new(null, $"{to} did not take over within {Seconds(options.StepTimeout)} s ({last})");
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
        }
    }

    private string? _lastAdmin;

    /// <summary>The leader, found from <paramref name="start"/> (else from the last leader or endpoint asked), once it holds no uncommitted configuration entry.</summary>
    private async Task<(LeaderView? Value, string? Error)> SettledLeaderAsync(string? start, long deadline, CancellationToken ct)
    {
        while (true)
        {
            var found = await LeaderAsync(start, deadline, ct).ConfigureAwait(false);
            if (found.Value is not { } leader || leader.Report.LatestIndex == leader.Report.CommittedIndex) return found;
            if (Expired(deadline))
                return (null, $"{leader.Report.Leader} still holds configuration entry {leader.Report.LatestIndex} uncommitted (committed: {leader.Report.CommittedIndex}) " +
                              $"after {Seconds(options.StepTimeout)} s; is a quorum of the voters up?");
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
            start = null;
        }
    }

    /// <summary>Asks <paramref name="start"/> (else the endpoint that last answered) who leads and follows it, until a voter that says it leads answers.</summary>
    private async Task<(LeaderView? Value, string? Error)> LeaderAsync(string? start, long deadline, CancellationToken ct)
    {
        string origin = start ?? _lastAdmin ?? throw new InvalidOperationException("no admin endpoint to start from");
        string ask = origin;
        string last = "no answer yet";
        int hops = 0;
        while (true)
        {
            var answer = await admin.ConfigAsync(ask, ct).ConfigureAwait(false);
            if (answer.Value is { } report)
            {
                if (report.Leader is { } leader && leader == report.Node)
                {
                    _lastAdmin = ask;
                    return (new LeaderView(ask, report), null);
                }
                if (report.LeaderAdmin is { } next && next != ask && hops++ < 3)
                {
                    ask = next; // follow without waiting: the answer named the leader
                    continue;
                }
                last = report.Leader is null ? $"{report.Node} knows no leader in term {report.Term}" : $"{report.Node} says {report.Leader} leads, and knows no admin endpoint of it";
            }
            else
            {
                last = $"{ask}: {answer.Error}";
            }
            if (Expired(deadline)) return (null, $"no leader found from {origin} within {Seconds(options.StepTimeout)} s ({last})");
            await _delay(options.PollInterval, ct).ConfigureAwait(false);
            ask = origin;
            hops = 0;
        }
    }

    /// <summary>A line of its own while a step's line is open: the step's line is written again after it.</summary>
    private void Note(string text)
    {
        if (_midLine) output.WriteLine();
        _midLine = false;
        output.WriteLine("  " + text);
    }

    private long Deadline() => options.Time.GetTimestamp() + (long)(options.StepTimeout.TotalSeconds * options.Time.TimestampFrequency);

    private bool Expired(long deadline) => options.Time.GetTimestamp() >= deadline;

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture);
}
