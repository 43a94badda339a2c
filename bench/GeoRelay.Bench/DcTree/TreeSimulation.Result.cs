namespace GeoRelay.Bench.DcTree;

internal sealed partial class TreeSimulation
{
    private TreeRunResult Result(TimeSpan took)
    {
        double steadyEntries = (_o.KillAt - _o.SteadyFrom) * (double)_o.Rate / 1e6;
        double afterEntries = (_o.PublishEnd - _o.KillAt) * (double)_o.Rate / 1e6;
        RelayEgress busiestBefore = default, busiestAfter = default;
        long relayViolations = 0;
        foreach (var r in _relays)
        {
            relayViolations += r.Violations;
            var before = new RelayEgress(r.Name, r.Before[ToLearners] / steadyEntries, r.Before[ToRelays] / steadyEntries, r.Before[ToMembers] / steadyEntries);
            var after = new RelayEgress(r.Name, r.After[ToLearners] / afterEntries, r.After[ToRelays] / afterEntries, r.After[ToMembers] / afterEntries);
            if (before.Total > busiestBefore.Total) busiestBefore = before;
            if (after.Total > busiestAfter.Total) busiestAfter = after;
        }

        (string Relay, long Learners) crowded = ("-", 0);
        foreach (var r in _relays)
        {
            long attached = 0;
            foreach (var d in r.Receivers)
                if (d is LearnerCohort c) attached += c.Size;
            if (attached > crowded.Learners) crowded = (r.Name, attached);
        }

        var groups = new GroupStall[Enum.GetValues<StallGroup>().Length];
        for (int g = 0; g < groups.Length; g++) groups[g] = new GroupStall { Group = (StallGroup)g, IncompleteNext = ulong.MaxValue, IncompleteLastArrival = long.MinValue };
        foreach (var c in _cohorts)
        {
            ref var g = ref groups[(int)GroupOf(c)];
            bool complete = c.Next > (ulong)_entries;
            g = g with
            {
                Learners = g.Learners + c.Size,
                LearnersWithViolations = g.LearnersWithViolations + (c.Violations > 0 ? c.Size : 0),
                Incomplete = g.Incomplete + (complete ? 0 : c.Size),
                IncompleteLastArrival = complete ? g.IncompleteLastArrival : Math.Max(g.IncompleteLastArrival, c.LastArrival - _o.KillAt),
                IncompleteNext = complete ? g.IncompleteNext : Math.Min(g.IncompleteNext, c.Next),
            };
            if (c.MaxGap > g.MaxGap) g = g with { MaxGap = c.MaxGap, MaxGapFrom = c.MaxGapFrom - _o.KillAt };
        }

        return new TreeRunResult
        {
            Shape = _shape,
            Kill = _kill,
            Entries = _entries,
            LeaderBytes = _leaderBytes,
            LeaderSteadyPerEntry = _leaderSteadyBytes / steadyEntries,
            BusiestBefore = busiestBefore,
            BusiestAfter = busiestAfter,
            DepthBefore = DepthOf(_depth[0]),
            DepthAfter = DepthOf(_depth[1]),
            KilledRelay = _killed?.Name ?? "-",
            TakeoverRelay = _takeover?.Name ?? "-",
            LeaderLostAfter = Since(_leaderLostAt),
            TakeoverFedAfter = Since(_takeoverFedAt),
            FirstBatchAfter = Since(_takeoverFirstBatchAt),
            Groups = groups,
            MostLearnersAtEnd = crowded,
            RelayViolations = relayViolations,
            Learners = (long)_o.LearnersPerDc * _o.Datacenters,
            Cohorts = _cohorts.Count,
            LearnerReconnects = _learnerReconnects,
            Events = _events,
            Took = took,
        };
    }

    private long Since(long at) => at < 0 ? -1 : at - _o.KillAt;

    private static Depth DepthOf(DepthTally t) => new(t.Max, t.Deliveries == 0 ? 0 : t.Hops / (double)t.Deliveries, t.Deliveries);

    private StallGroup GroupOf(LearnerCohort c)
    {
        var home = _relays[c.Home];
        if (_killed is null || c.Dc != _killed.Dc) return StallGroup.OtherDatacenters;
        if (home == _killed) return StallGroup.KilledRelay;
        if (home == _takeover) return StallGroup.TakeoverRelay;
        if (home.Tier1) return StallGroup.OtherStandbys;
        return home.ParentAtKill == _killed ? StallGroup.Tier2ParentKilled : StallGroup.Tier2ParentLived;
    }
}
