namespace GeoRelay.Bench.DcTree;

internal sealed partial class TreeSimulation
{
    private long _learnerReconnects;
    private readonly DepthTally[] _depth = [new(), new()];
    /// <summary>Entries published from here on show the tree as the failover left it.</summary>
    private long LateFrom => Math.Max(_o.KillAt, _o.PublishEnd - 1_000_000);

    /// <summary>Learner-entry deliveries and their hops from the leader: [0] of entries published before the kill, [1] in the killed relay's DC in the last second of publishing.</summary>
    private sealed class DepthTally
    {
        public long Deliveries, Hops;
        public int Max;
    }

    private void AttachLearners(LearnerCohort c, RelayNode r)
    {
        c.Relay = r;
        c.Token++;
        c.Progressed = false;
        c.SentThrough = c.Next - 1; // Subscribe says: from last + 1
        r.Receivers.Add(c);
        Push(r, c);
    }

    /// <summary>A Deliver frame reaches every learner of the cohort; each must get each index once, in order.</summary>
    private void Receive(LearnerCohort c, DeliverChunk chunk, RelayNode from, long at)
    {
        if (chunk.First != c.Next) c.Violations++;
        if (chunk.Last < c.Next) return;
        if (c.LastArrival >= 0 && at - c.LastArrival > c.MaxGap)
        {
            c.MaxGap = at - c.LastArrival;
            c.MaxGapFrom = c.LastArrival;
        }
        c.LastArrival = at;
        for (ulong i = Math.Max(chunk.First, c.Next); i <= chunk.Last; i++)
        {
            long published = _o.PublishedAt((long)i);
            var tally = published < _o.KillAt ? _depth[0] : published >= LateFrom && c.Dc == KilledDc ? _depth[1] : null;
            if (tally is null) continue;
            int hops = from.Hops[i - 1] + 1;
            tally.Deliveries += c.Size;
            tally.Hops += (long)hops * c.Size;
            if (hops > tally.Max) tally.Max = hops;
        }
        c.Next = chunk.Last + 1;
        c.Progressed = true;
    }

    /// <summary>
    /// The connection closed (or the relay sent the learners away). As LearnerClient does: after a connection that
    /// delivered something it redials at once, else after a back-off step; each round tries the endpoints in order.
    /// </summary>
    private void OnLearnerLost(in Event e)
    {
        var c = _cohorts[e.Node];
        if (c.Token != e.Token) return;
        c.Relay?.Receivers.Remove(c);
        c.Relay = null;
        c.Token++;
        _learnerReconnects += c.Size;
        long delay = 0;
        if (c.Progressed) c.IdleRounds = 0;
        else delay = LearnerBackoff(++c.IdleRounds);
        Schedule(_now + delay, new Event(Kind.LearnerRound, c.Id, Token: c.Token, First: 1));
    }

    private void OnLearnerRound(in Event e)
    {
        var c = _cohorts[e.Node];
        if (c.Token != e.Token) return;
        c.Round = (int)e.First;
        c.EndpointPos = 0;
        LearnerTryNext(c);
    }

    private void LearnerTryNext(LearnerCohort c)
    {
        if (c.EndpointPos >= c.Endpoints.Length)
        {
            Schedule(_now + LearnerBackoff(c.Round), new Event(Kind.LearnerRound, c.Id, Token: c.Token, First: (ulong)c.Round + 1));
            return;
        }
        int target = c.Endpoints[c.EndpointPos++];
        if (c.Round == 1 && target == c.HungTarget)
        {
            c.HungTarget = -1;
            LearnerTryNext(c);
            return;
        }
        Schedule(_now + _o.DcOneWay, new Event(Kind.LearnerDialReaches, c.Id, Target: target, Token: c.Token, Start: _now));
    }

    /// <summary>A dead relay resets the SYN, an unfed one refuses in the handshake, a hung one runs out the connect timeout.</summary>
    private void OnLearnerDialReaches(in Event e)
    {
        var c = _cohorts[e.Node];
        if (c.Token != e.Token) return;
        var t = _relays[e.Target];
        if (t.Hung) Schedule(e.Start + _o.LearnerConnectTimeout, e with { Kind = Kind.LearnerDialFailed });
        else if (t.Dead || RefusesLearners(t)) Schedule(e.Start + _o.DcRtt, e with { Kind = Kind.LearnerDialFailed });
        else Schedule(e.Start + 2 * _o.DcRtt + _o.DcOneWay, e with { Kind = Kind.LearnerAttach });
    }

    private void OnLearnerDialFailed(in Event e)
    {
        var c = _cohorts[e.Node];
        if (c.Token == e.Token) LearnerTryNext(c);
    }

    private void OnLearnerAttach(in Event e)
    {
        var c = _cohorts[e.Node];
        if (c.Token != e.Token) return;
        var t = _relays[e.Target];
        if (t.Dead || t.Hung || RefusesLearners(t)) LearnerTryNext(c);
        else AttachLearners(c, t);
    }

    /// <summary>GeoRelayClientOptions.ReconnectDelay: doubling from the initial delay up to the cap, plus up to 20% jitter.</summary>
    private long LearnerBackoff(int failures)
    {
        double delay = Math.Min(_o.LearnerReconnectInitial * Math.Pow(2, Math.Min(failures - 1, 20)), _o.LearnerReconnectMax);
        return (long)(delay * (1 + _random.NextDouble() * 0.2));
    }
}
