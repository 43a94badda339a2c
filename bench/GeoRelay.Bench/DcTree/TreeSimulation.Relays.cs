namespace GeoRelay.Bench.DcTree;

internal sealed partial class TreeSimulation
{
    /// <summary>Entries reach a relay (from the leader when <paramref name="from"/> is null): it keeps new ones and streams them on.</summary>
    private void Append(RelayNode r, ulong first, ulong last, RelayNode? from)
    {
        if (first > r.Last + 1) r.Violations++; // a hole: whoever fed this relay broke the invariant
        if (last <= r.Last) return; // receivers drop indexes they hold
        for (ulong i = Math.Max(first, r.Last + 1); i <= last; i++)
            r.Hops[i - 1] = (byte)(from is null ? 1 : from.Hops[i - 1] + 1);
        r.Last = last;
        foreach (var d in r.Receivers) Push(r, d);
    }

    /// <summary>
    /// Sends a receiver what it lacks of this relay's log, as Deliver frames (live, or catch-up from retention after it
    /// attached): learners receive them one in-DC one-way later, counted once per learner of the cohort.
    /// </summary>
    private void Push(RelayNode r, Downstream d)
    {
        if (d.SentThrough >= r.Last) return;
        long arrival = _now + _o.DcOneWay;
        foreach (var chunk in _wire.Deliver(d.SentThrough + 1, r.Last))
        {
            if (d is LearnerCohort c)
            {
                Account(r, ToLearners, (long)chunk.Bytes * c.Size);
                Receive(c, chunk, r, arrival);
            }
            else
            {
                var child = (RelayNode)d;
                Account(r, ToRelays, chunk.Bytes);
                Schedule(arrival, new Event(Kind.FeedArrives, child.Id, Target: r.Id, Token: child.FeedToken, First: chunk.First, Last: chunk.Last));
            }
        }
        d.SentThrough = r.Last;
        d.LastSentAt = _now;
    }

    private void OnFeedArrives(in Event e)
    {
        var r = _relays[e.Node];
        if (r.Dead || r.Hung || r.Feed != Feed.Relay || r.FeedToken != e.Token) return;
        Append(r, e.First, e.Last, _relays[e.Target]);
    }

    private void AttachFeed(RelayNode r, RelayNode parent)
    {
        r.Feed = Feed.Relay;
        r.Parent = parent;
        r.FeedToken++;
        r.SearchToken++;
        r.UnfedToken++;
        r.Backoff.Succeed();
        r.SentThrough = r.Last;
        parent.Receivers.Add(r);
        Push(parent, r);
    }

    /// <summary>
    /// The feed closed (or went silent for failover-after): as RelayEngine.Feed, try the other parents at once, and back
    /// off only once a whole round of them refused.
    /// </summary>
    private void OnFeedLost(in Event e)
    {
        var r = _relays[e.Node];
        if (r.Dead || r.Hung || r.Feed != Feed.Relay || r.FeedToken != e.Token) return;
        var lost = r.Parent!;
        lost.Receivers.Remove(r);
        r.Parent = null;
        r.Feed = Feed.None;
        r.FeedToken++;
        r.UnfedSince = _now;
        r.UnfedToken++;
        Schedule(_now + _o.FailoverAfter, new Event(Kind.UnfedCheck, r.Id, Token: r.UnfedToken));

        // Rounds go through the list in order, starting after the parent just lost (so it is tried last).
        int at = Array.IndexOf(r.Parents, lost.Id);
        r.SearchOrder = new int[r.Parents.Length];
        for (int k = 0; k < r.Parents.Length; k++) r.SearchOrder[k] = r.Parents[(at + 1 + k) % r.Parents.Length];
        r.SearchToken++;
        r.Backoff.Succeed();
        Schedule(_now, new Event(Kind.RelayRound, r.Id, Token: r.SearchToken));
    }

    private bool Searching(RelayNode r, int token) => !r.Dead && !r.Hung && r.Feed == Feed.None && r.SearchToken == token;

    private void OnRelayRound(in Event e)
    {
        var r = _relays[e.Node];
        if (!Searching(r, e.Token)) return;
        r.SearchPos = 0;
        RelayTryNext(r);
    }

    private void RelayTryNext(RelayNode r)
    {
        if (r.SearchPos >= r.SearchOrder.Length)
        {
            r.Backoff.Fail(_now, _o.FeedRetryInitial, _o.FeedRetryMax, _random);
            Schedule(r.Backoff.RetryAtMicros, new Event(Kind.RelayRound, r.Id, Token: r.SearchToken));
            return;
        }
        int target = r.SearchOrder[r.SearchPos++];
        Schedule(_now + _o.DcOneWay, new Event(Kind.RelayDialReaches, r.Id, Target: target, Token: r.SearchToken, Start: _now));
    }

    /// <summary>A dead parent resets the SYN and one that cannot serve refuses: one in-DC round trip; a hung one times the handshake out.</summary>
    private void OnRelayDialReaches(in Event e)
    {
        var r = _relays[e.Node];
        if (!Searching(r, e.Token)) return;
        var t = _relays[e.Target];
        if (t.Hung) Schedule(e.Start + _o.HandshakeTimeout, e with { Kind = Kind.RelayDialFailed });
        else if (!Serves(t, r)) Schedule(e.Start + _o.DcRtt, e with { Kind = Kind.RelayDialFailed });
        else Schedule(e.Start + 2 * _o.DcRtt + _o.DcOneWay, e with { Kind = Kind.RelayAttach });
    }

    private void OnRelayDialFailed(in Event e)
    {
        var r = _relays[e.Node];
        if (Searching(r, e.Token)) RelayTryNext(r);
    }

    /// <summary>Connected, handshake done, and the child's position has arrived: the parent streams from there.</summary>
    private void OnRelayAttach(in Event e)
    {
        var r = _relays[e.Node];
        if (!Searching(r, e.Token)) return;
        var t = _relays[e.Target];
        if (t.Hung || !Serves(t, r)) RelayTryNext(r);
        else AttachFeed(r, t);
    }

    /// <summary>
    /// A tier-1 standby feeds only from the active relay (the one the leader feeds); a tier-2 relay from any listed
    /// relay that is fed itself. A relay never feeds from its own subtree.
    /// </summary>
    private static bool Serves(RelayNode parent, RelayNode child)
    {
        if (parent.Dead || parent.Hung || parent == child) return false;
        if (child.Tier1 ? parent.Feed != Feed.Leader : parent.Feed == Feed.None) return false;
        for (var p = parent.Parent; p is not null; p = p.Parent)
            if (p == child) return false;
        return true;
    }

    /// <summary>
    /// A relay without a feed for failover-after sends its caught-up learners elsewhere and refuses new ones
    /// (RelayEngine.OnTick, CheckPeer); it checks again every heartbeat while it stays unfed.
    /// </summary>
    private void OnUnfedCheck(in Event e)
    {
        var r = _relays[e.Node];
        if (r.Dead || r.Hung || r.Feed != Feed.None || r.UnfedToken != e.Token) return;
        for (int i = r.Receivers.Count - 1; i >= 0; i--)
        {
            if (r.Receivers[i] is not LearnerCohort c || c.SentThrough < r.Last) continue;
            r.Receivers.RemoveAt(i);
            Schedule(_now + _o.DcOneWay, new Event(Kind.LearnerLost, c.Id, Token: c.Token));
        }
        Schedule(_now + _o.Heartbeat, e);
    }

    private bool RefusesLearners(RelayNode r) => r.Feed == Feed.None && _now - r.UnfedSince > _o.FailoverAfter;
}
