using System.Collections.Concurrent;
using System.Diagnostics;
using GeoRelay.Engines.Consensus;
using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Consensus;

/// <summary>
/// Seeded runs of the election core (see <see cref="ElectionChaos"/>), and scenarios for the properties a user
/// would notice. <c>GEORELAY_SIM_SEEDS</c> sets the seeds per cluster size (default as in the cases below);
/// <c>GEORELAY_SEED=N</c> replays one seed and prints its trace.
/// </summary>
[TestFixture]
public sealed class ElectionSimulationTests
{
    private const long Second = 1_000_000;

    /// <summary>Seeds that once failed, run on top of the others so the bugs stay fixed.</summary>
    private static readonly Dictionary<int, int[]> Regressions = new()
    {
        // A voter whose log lagged kept campaigning, and each newer term restarted the up-to-date voter's election
        // timer: no leader for 20 timeouts after healing (2 voters, no pre-vote).
        [2] = [12377, 15758],
    };

    [TestCase(1, 200)]
    [TestCase(2, 300)]
    [TestCase(3, 1000)]
    [TestCase(5, 1000)]
    public void Every_seed_keeps_elections_safe_and_elects_a_leader_after_healing(int voters, int seeds)
    {
        if (Environment.GetEnvironmentVariable("GEORELAY_SEED") is { Length: > 0 } one)
        {
            int seed = int.Parse(one, System.Globalization.CultureInfo.InvariantCulture);
            var options = ElectionChaos.OptionsFor(seed, voters);
            var cluster = new ElectionCluster(options);
            try
            {
                ElectionChaos.Run(options, cluster);
            }
            finally
            {
                TestContext.Out.WriteLine($"seed {seed}: {ElectionChaos.Describe(options)}; {cluster.Steps} steps\n{cluster.Trace}");
            }
            return;
        }
        if (int.TryParse(Environment.GetEnvironmentVariable("GEORELAY_SIM_SEEDS"), out var n)) seeds = n;
        var failures = new ConcurrentBag<(int Seed, string Report)>();
        long steps = 0, leaders = 0;
        var clock = Stopwatch.StartNew();
        var all = Enumerable.Range(1, seeds).Concat(Regressions.GetValueOrDefault(voters, [])).Distinct().ToArray();
        Parallel.ForEach(all, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            var options = ElectionChaos.OptionsFor(seed, voters);
            var cluster = new ElectionCluster(options);
            try
            {
                ElectionChaos.Run(options, cluster);
                Interlocked.Add(ref steps, cluster.Steps);
                Interlocked.Add(ref leaders, cluster.Invariants.LeadersElected);
            }
            catch (Exception e)
            {
                failures.Add((seed, $"seed {seed} ({ElectionChaos.Describe(options)}) failed at {cluster.Now / 1e6:F6}s: {e.GetType().Name}: {e.Message}\n" +
                    $"replay: GEORELAY_SEED={seed} dotnet test tests/GeoRelay.Tests.Simulation -c Release --filter \"Name~Every_seed_keeps_elections_safe\"\n" +
                    $"last events:\n{cluster.Trace}"));
            }
        });
        TestContext.Out.WriteLine($"{all.Length} seeds of {voters} voters: {steps} steps, {leaders} leaders elected, {clock.Elapsed.TotalSeconds:F1} s");
        if (!failures.IsEmpty)
        {
            var first = failures.OrderBy(f => f.Seed).First();
            Assert.Fail($"{failures.Count} of {all.Length} seeds failed ({string.Join(", ", failures.Select(f => f.Seed).Order())}); the first:\n{first.Report}");
        }
        Assert.That(leaders, Is.GreaterThan(seeds), "the runs did elect leaders, and more than one each");
    }

    [Test]
    public void The_checker_catches_a_store_that_forgets_votes()
    {
        // Each run checks one invariant only, so the forgotten vote has to show up as that invariant's violation.
        int leaderSeed = FirstBreaking(ElectionChecks.OneLeaderPerTerm, "one leader per term");
        int voteSeed = FirstBreaking(ElectionChecks.OneVotePerTerm, "one vote per term");
        TestContext.Out.WriteLine($"two leaders in a term first at seed {leaderSeed}; two votes in a term first at seed {voteSeed}");
        Assert.That(leaderSeed, Is.GreaterThan(0), "two leaders of one term under a store that forgets votes, within 300 seeds");
        Assert.That(voteSeed, Is.GreaterThan(0), "a second vote in one term under a store that forgets votes, within 300 seeds");
        Assert.That(BreaksWithForgottenVotes(leaderSeed, ElectionChecks.All, "one leader per term", correctStore: true), Is.False,
            "the same seed with a correct store keeps one leader per term");
    }

    private static int FirstBreaking(ElectionChecks check, string invariant)
    {
        for (int seed = 1; seed <= 300; seed++)
            if (BreaksWithForgottenVotes(seed, check, invariant)) return seed;
        return 0;
    }

    /// <summary>Voters crash and come back within milliseconds, all through the run, while slow vote requests are in flight.</summary>
    private static bool BreaksWithForgottenVotes(int seed, ElectionChecks checks, string invariant, bool correctStore = false)
    {
        var c = new ElectionCluster(new ElectionSimOptions
        {
            Seed = seed,
            Voters = 3,
            Election = ElectionOptions.Default with { PreVote = false },
            MaxLatencyMicros = 400_000,
            NewStore = correctStore ? () => new CrashConsistentStore() : () => new VoteForgettingStore(),
            Checks = checks,
        });
        c.StartAll();
        for (long t = 0; t < 60 * Second; t += 50_000 + c.Random.NextInt64(150_000))
        {
            c.At(t, () =>
            {
                var voter = c.Voters[c.Ids[c.Random.Next(c.Ids.Count)]];
                if (voter.Election is null) return;
                c.Crash(voter);
                c.At(c.Now + 1_000 + c.Random.NextInt64(50_000), () => c.Restart(voter));
            });
        }
        try
        {
            c.RunUntil(60 * Second);
            return false;
        }
        catch (InvariantBrokenException e) when (e.Invariant == invariant)
        {
            return true;
        }
    }

    [Test]
    public void The_same_seed_replays_the_same_run()
    {
        var options = ElectionChaos.OptionsFor(17, 5);
        var a = ElectionChaos.Run(options);
        var b = ElectionChaos.Run(options);
        Assert.That(b.Steps, Is.EqualTo(a.Steps));
        Assert.That(b.Trace.ToString(), Is.EqualTo(a.Trace.ToString()));
    }

    private static ElectionCluster Stable(int voters, int seed, ElectionOptions? election = null, double appendRate = 0.5)
    {
        var c = new ElectionCluster(new ElectionSimOptions { Seed = seed, Voters = voters, Election = election ?? ElectionOptions.Default, AppendRate = appendRate });
        c.StartAll();
        Assert.That(c.RunUntil(20 * Second, c.Converged), Is.True, $"seed {seed}: no stable leader\n{c.Trace}");
        return c;
    }

    [Test]
    public void A_single_voter_leads_at_its_first_tick()
    {
        var c = new ElectionCluster(new ElectionSimOptions { Seed = 1, Voters = 1 });
        c.StartAll();
        c.RunUntil(0);
        Assert.That((c.Voters["n1"].Election!.Role, c.Voters["n1"].Election!.Term), Is.EqualTo((RaftRole.Leader, 1UL)));
    }

    [Test]
    public void Two_voters_need_each_other()
    {
        var c = Stable(2, 3);
        var leader = c.Leader()!;
        var other = c.Voters[c.Ids.First(id => id != leader.Id)];
        c.Crash(other);
        c.RunUntil(c.Now + 10 * Second);
        Assert.That(c.Leader(), Is.Null, "the leader alone is no majority: check-quorum steps it down and it cannot win again");
        c.Restart(other);
        Assert.That(c.RunUntil(c.Now + 20 * Second, c.Converged), Is.True, c.Trace.ToString());
    }

    /// <summary>
    /// No writes while the voter is away, so its log stays as up to date as the majority's: only pre-vote with
    /// leader stickiness keeps it from raising the term (with writes, the up-to-date check alone would).
    /// </summary>
    [TestCase(true)]
    [TestCase(false)]
    public void A_voter_cut_off_and_back_does_not_raise_the_term_of_a_healthy_majority_with_pre_vote(bool preVote)
    {
        int raised = 0;
        for (int seed = 1; seed <= 10; seed++)
        {
            var c = Stable(5, seed, ElectionOptions.Default with { PreVote = preVote }, appendRate: 0);
            var leader = c.Leader()!;
            ulong term = leader.Election!.Term;
            var cut = c.Voters[c.Ids.First(id => id != leader.Id)];
            c.Isolate(cut.Id);
            c.RunUntil(c.Now + 10 * Second);
            if (preVote) Assert.That(cut.Election!.Term, Is.EqualTo(term), "pre-vote keeps the cut-off voter's term");
            c.HealLinks();
            c.RunUntil(c.Now + 5 * Second);
            if (c.HighestTerm() > term) raised++;
            if (preVote)
            {
                Assert.That(c.Leader(), Is.SameAs(leader), $"seed {seed}: leadership moved\n{c.Trace}");
                Assert.That(c.Converged() && c.HighestTerm() == term, Is.True, $"seed {seed}: the term moved or the cluster split\n{c.Trace}");
            }
        }
        if (!preVote) Assert.That(raised, Is.EqualTo(10), "without pre-vote the returning voter's higher term deposes the leader: the scenario can tell");
    }

    [TestCase(true, TestName = "Check_quorum_a_leader_cut_off_from_the_majority_steps_down_within_two_timeouts")]
    [TestCase(false, TestName = "Check_quorum_a_leader_that_can_send_but_not_hear_steps_down_within_two_timeouts")]
    public void Check_quorum(bool bothWays)
    {
        for (int seed = 1; seed <= 10; seed++)
        {
            var c = Stable(5, seed);
            var old = c.Leader()!;
            ulong term = old.Election!.Term;
            long cut = c.Now;
            c.Isolate(old.Id, inbound: true, outbound: bothWays);
            Assert.That(c.RunUntil(cut + 2 * Second, () => old.Election!.Role != RaftRole.Leader), Is.True, $"seed {seed}: still leading\n{c.Trace}");
            Assert.That(c.RunUntil(cut + 12 * Second, () => c.Leader() is { } l && l != old && l.Election!.Term > term), Is.True,
                $"seed {seed}: no new leader on the majority side\n{c.Trace}");
            Assert.That(old.Election!.Role, Is.Not.EqualTo(RaftRole.Leader));
        }
    }

    [Test]
    public void A_voter_whose_log_lags_cannot_win_against_an_up_to_date_majority()
    {
        for (int seed = 1; seed <= 10; seed++)
        {
            var c = Stable(3, seed);
            var leader = c.Leader()!;
            var ids = c.Ids.Where(id => id != leader.Id).ToArray();
            var lagging = c.Voters[ids[0]];
            var current = c.Voters[ids[1]];
            c.Isolate(lagging.Id);
            Assert.That(c.RunUntil(c.Now + 10 * Second, () => current.Log.Count > lagging.Log.Count + 3 && leader.CommitIndex >= (ulong)current.Log.Count), Is.True,
                $"seed {seed}: entries did not commit without the lagging voter\n{c.Trace}");
            c.Crash(leader);
            c.HealLinks();
            Assert.That(c.RunUntil(c.Now + 20 * Second, () => c.Leader() is not null), Is.True, $"seed {seed}: no leader\n{c.Trace}");
            Assert.That(c.Leader(), Is.SameAs(current), $"seed {seed}: the voter with the longer log leads\n{c.Trace}");
            Assert.That(c.Events.Any(e => e.Event.Kind == ElectionEventKind.VoteRefused && e.Event.Node == current.Id && e.Event.Peer == lagging.Id
                && e.Event.Reason!.Contains("is behind ours")) || lagging.Election!.Role == RaftRole.Follower, Is.True);
        }
    }

    [Test]
    public void Leadership_moves_to_a_caught_up_voter_on_request()
    {
        for (int seed = 1; seed <= 10; seed++)
        {
            var c = Stable(5, seed);
            var old = c.Leader()!;
            var target = c.Voters[c.Ids.First(id => id != old.Id)];
            long start = c.Now;
            Assert.That(c.Do(old, e => Assert.That(e.TransferLeadership(target.Id, c.Now), Is.True)), Is.True);
            Assert.That(c.RunUntil(start + 1 * Second, () => c.Events.Any(e => e.Event.Kind == ElectionEventKind.TransferCompleted && e.Event.Node == old.Id)), Is.True,
                $"seed {seed}: transfer did not complete within an election timeout\n{c.Trace}");
            Assert.That(c.Leader(), Is.SameAs(target));
            Assert.That(c.RunUntil(c.Now + 5 * Second, c.Converged), Is.True);
        }
    }

    [Test]
    public void A_voter_outside_the_candidates_never_leads_and_the_cluster_waits_for_a_candidate()
    {
        var election = ElectionOptions.Default with { Candidates = new HashSet<string> { "n1" } };
        var c = Stable(3, 5, election);
        var n1 = c.Voters["n1"];
        Assert.That(c.Leader(), Is.SameAs(n1));
        c.Crash(n1);
        c.RunUntil(c.Now + 10 * Second);
        Assert.That(c.Leader(), Is.Null);
        Assert.That(c.Voters.Values.Where(v => v.Election is not null).Select(v => v.Election!.Role), Is.All.EqualTo(RaftRole.Follower));
        c.Restart(n1);
        Assert.That(c.RunUntil(c.Now + 20 * Second, c.Converged), Is.True, c.Trace.ToString());
        Assert.That(c.Leader(), Is.SameAs(n1));
    }
}
