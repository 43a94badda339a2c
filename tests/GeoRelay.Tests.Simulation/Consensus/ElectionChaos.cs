using GeoRelay.Engines.Consensus;

namespace GeoRelay.Tests.Simulation.Consensus;

/// <summary>
/// One seeded run: random options, faults for 15 election timeouts (crashes and restarts, partitions, one-way
/// links, an isolated leader, leadership transfers, lost, late, reordered and duplicated messages, failed term/vote
/// saves), then every link healed and every voter restarted; a leader followed by every voter must exist within
/// 20 election timeouts. Throws <see cref="InvariantBrokenException"/> (or whatever the election threw).
/// </summary>
internal static class ElectionChaos
{
    public const int ChaosTimeouts = 15;
    public const int RecoveryTimeouts = 20;

    public static ElectionSimOptions OptionsFor(int seed, int voters)
    {
        var pick = new Random(seed * 7919 + voters);
        IReadOnlySet<string>? candidates = null;
        if (voters >= 3 && pick.NextDouble() < 0.25)
        {
            var some = new HashSet<string>();
            int count = pick.Next(1, voters + 1);
            while (some.Count < count) some.Add($"n{pick.Next(1, voters + 1)}");
            candidates = some;
        }
        long[] latencies = [20_000, 100_000, 400_000];
        return new ElectionSimOptions
        {
            Seed = seed,
            Voters = voters,
            Election = ElectionOptions.Default with
            {
                PreVote = pick.NextDouble() < 0.8,
                CheckQuorum = pick.NextDouble() < 0.8,
                Candidates = candidates,
            },
            Drop = pick.NextDouble() * 0.15,
            Duplicate = pick.NextDouble() * 0.1,
            MaxLatencyMicros = latencies[pick.Next(latencies.Length)],
            SaveFailureRate = 0.002,
        };
    }

    public static string Describe(ElectionSimOptions o) =>
        $"{o.Voters} voters, pre-vote {o.Election.PreVote}, check-quorum {o.Election.CheckQuorum}, " +
        $"candidates {(o.Election.Candidates is null ? "all" : string.Join(",", o.Election.Candidates.Order()))}, " +
        $"drop {o.Drop:P0}, duplicate {o.Duplicate:P0}, latency up to {o.MaxLatencyMicros / 1000} ms";

    /// <summary>Runs the seed; returns the cluster (for statistics) or throws.</summary>
    public static ElectionCluster Run(ElectionSimOptions options, ElectionCluster? cluster = null)
    {
        var c = cluster ?? new ElectionCluster(options);
        long timeout = c.TimeoutMicros;
        c.StartAll();
        for (long t = Gap(c); t < ChaosTimeouts * timeout; t += Gap(c))
            c.At(t, () => Fault(c));
        c.RunUntil(ChaosTimeouts * timeout);

        c.HealLinks();
        c.Drop = 0;
        foreach (var v in c.Voters.Values) c.Restart(v);
        long healed = c.Now;
        if (!c.RunUntil(healed + RecoveryTimeouts * timeout, c.Converged))
            throw new InvariantBrokenException("liveness", $"no leader followed by every voter within {RecoveryTimeouts} election timeouts of healing (healed at {healed / 1e6:F3}s)");
        return c;
    }

    /// <summary>Faults arrive about every half election timeout.</summary>
    private static long Gap(ElectionCluster c) => 1 + (long)(-Math.Log(1 - c.Random.NextDouble()) * c.TimeoutMicros / 2);

    private static void Fault(ElectionCluster c)
    {
        var ids = c.Ids;
        var any = c.Voters[ids[c.Random.Next(ids.Count)]];
        var leader = c.Leader();
        switch (c.Random.Next(9))
        {
            case 0:
                CrashForAWhile(c, any);
                break;
            case 1:
                if (leader is not null) CrashForAWhile(c, leader);
                break;
            case 2:
                var side = new HashSet<string>();
                int size = c.Random.Next(1, Math.Max(2, ids.Count / 2 + 1));
                while (side.Count < size) side.Add(ids[c.Random.Next(ids.Count)]);
                c.Partition(side);
                break;
            case 3:
                c.Isolate(any.Id, inbound: true, outbound: false); // hears nothing, still talks
                break;
            case 4:
                c.Isolate(any.Id, inbound: false, outbound: true); // hears everything, cannot answer
                break;
            case 5:
                if (leader is not null) c.Isolate(leader.Id, inbound: c.Random.Next(2) == 0, outbound: true);
                break;
            case 6:
            case 7:
                c.HealLinks();
                break;
            case 8:
                if (leader is not null)
                {
                    var target = ids[c.Random.Next(ids.Count)];
                    c.Trace.Add(c.Now, $"FAULT transfer {leader.Id} -> {target}");
                    c.Do(leader, e => e.TransferLeadership(target, c.Now));
                }
                break;
        }
    }

    private static void CrashForAWhile(ElectionCluster c, SimVoter voter)
    {
        if (voter.Election is null) return;
        c.Crash(voter);
        int incarnation = voter.Incarnation;
        long downFor = c.TimeoutMicros / 10 + c.Random.NextInt64(3 * c.TimeoutMicros);
        c.At(c.Now + downFor, () => { if (voter.Incarnation == incarnation) c.Restart(voter); });
    }
}
