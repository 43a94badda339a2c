using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines.Consensus;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Consensus;

[TestFixture]
public sealed class ElectionTests
{
    private const long T = 1_000_000; // election timeout, µs
    private static readonly string[] Three = ["a", "b", "c"];

    /// <summary>Keeps every save, and what the election had already queued to send when each save happened.</summary>
    private sealed class RecordingStore : IElectionStore
    {
        public TermVote State;
        public readonly List<(TermVote State, int OutboxCount)> Saves = [];
        public Election? Election;

        public TermVote Load() => State;

        public void Save(TermVote state)
        {
            Saves.Add((state, Election?.Outbox.Count ?? 0));
            State = state;
        }
    }

    private static Election New(string self, RecordingStore store, out LogPosition[] log, ElectionOptions? options = null, string[]? voters = null, long now = 0)
    {
        var last = new LogPosition[1];
        log = last;
        var election = new Election(self, voters ?? Three, store, options ?? ElectionOptions.Default, () => last[0], new Random(1), now);
        store.Election = election;
        election.Events.Clear();
        return election;
    }

    private static ElectionMessage Request(string from, string to, ulong term, LogPosition last, bool preVote = false, bool transfer = false) =>
        new(ElectionMessageKind.VoteRequest, from, to, term, last, preVote, false, transfer, null);

    private static ElectionMessage Grant(string from, string to, ulong term, bool preVote = false) =>
        new(ElectionMessageKind.VoteResponse, from, to, term, default, preVote, true, false, null);

    private static ElectionMessage OnlyResponse(Election e)
    {
        Assert.That(e.Outbox, Has.Count.EqualTo(1));
        var m = e.Outbox[0];
        e.Outbox.Clear();
        Assert.That(m.Kind, Is.EqualTo(ElectionMessageKind.VoteResponse));
        return m;
    }

    /// <summary>Drives a to leader of term 1 with b's votes.</summary>
    private static Election Leader(RecordingStore store, out LogPosition[] log, ElectionOptions? options = null)
    {
        var a = New("a", store, out log, options);
        a.OnTick(a.NextTickMicros);
        a.OnMessage(Grant("b", "a", 1, preVote: true), a.NextTickMicros - T);
        a.OnMessage(Grant("b", "a", 1), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader));
        a.Outbox.Clear();
        a.Events.Clear();
        return a;
    }

    [Test]
    public void A_single_voter_leads_on_its_first_tick_after_saving_its_term()
    {
        var store = new RecordingStore();
        var solo = New("solo", store, out _, voters: ["solo"], now: 500);
        Assert.That(solo.NextTickMicros, Is.EqualTo(500));
        solo.OnTick(500);
        Assert.That((solo.Role, solo.Term, solo.Leader, solo.VotedFor), Is.EqualTo((RaftRole.Leader, 1UL, "solo", "solo")));
        Assert.That(store.Saves.Select(s => s.State), Is.EqualTo(new[] { new TermVote(1, "solo") }));
        Assert.That(solo.Outbox, Is.Empty);
        Assert.That(solo.NextTickMicros, Is.EqualTo(long.MaxValue), "alone, check-quorum has nothing to check");
    }

    [Test]
    public void The_election_timeout_is_randomized_between_one_and_two_timeouts()
    {
        var deadlines = new HashSet<long>();
        for (int seed = 0; seed < 50; seed++)
        {
            var e = new Election("a", Three, new RecordingStore(), ElectionOptions.Default, () => default, new Random(seed), 0);
            Assert.That(e.NextTickMicros, Is.InRange(T, 2 * T - 1));
            deadlines.Add(e.NextTickMicros);
        }
        Assert.That(deadlines.Count, Is.GreaterThan(40));
    }

    [Test]
    public void A_pre_candidate_asks_for_term_plus_one_without_changing_or_saving_its_term()
    {
        var store = new RecordingStore { State = new TermVote(4, "c") };
        var a = New("a", store, out var log);
        log[0] = new LogPosition(4, 10);
        a.OnTick(a.NextTickMicros - 1);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Follower), "not yet");
        a.OnTick(a.NextTickMicros);
        Assert.That((a.Role, a.Term, a.VotedFor), Is.EqualTo((RaftRole.PreCandidate, 4UL, "c")));
        Assert.That(store.Saves, Is.Empty);
        Assert.That(a.Outbox.Select(m => (m.To, m.Term, m.PreVote, m.LastLog)),
            Is.EqualTo(new[] { ("b", 5UL, true, new LogPosition(4, 10)), ("c", 5UL, true, new LogPosition(4, 10)) }));
    }

    [Test]
    public void A_candidate_saves_its_new_term_and_self_vote_before_any_request_of_that_term_is_queued()
    {
        var store = new RecordingStore();
        var a = New("a", store, out _);
        a.OnTick(a.NextTickMicros);
        a.Outbox.Clear();
        a.OnMessage(Grant("c", "a", 1, preVote: true), 0);
        Assert.That((a.Role, a.Term), Is.EqualTo((RaftRole.Candidate, 1UL)));
        Assert.That(store.Saves, Is.EqualTo(new[] { (new TermVote(1, "a"), 0) }), "saved while nothing of term 1 was queued");
        Assert.That(a.Outbox.Select(m => (m.To, m.Term, m.PreVote)), Is.EqualTo(new[] { ("b", 1UL, false), ("c", 1UL, false) }));
        a.OnMessage(Grant("b", "a", 1), 0);
        Assert.That((a.Role, a.Leader), Is.EqualTo((RaftRole.Leader, "a")));
    }

    [Test]
    public void A_vote_is_saved_before_it_is_answered_and_goes_to_one_candidate_per_term()
    {
        var store = new RecordingStore();
        var b = New("b", store, out var log);
        log[0] = new LogPosition(1, 5);
        b.OnMessage(Request("a", "b", 2, new LogPosition(1, 5)), 0);
        Assert.That(store.Saves, Is.EqualTo(new[] { (new TermVote(2, "a"), 0) }));
        var granted = OnlyResponse(b);
        Assert.That((granted.To, granted.Term, granted.Granted), Is.EqualTo(("a", 2UL, true)));

        b.OnMessage(Request("c", "b", 2, new LogPosition(9, 9)), 0);
        var refused = OnlyResponse(b);
        Assert.That((refused.Granted, refused.Reason), Is.EqualTo((false, "already voted for a in term 2")));
        Assert.That(b.Events.Last(), Is.EqualTo(new ElectionEvent(ElectionEventKind.VoteRefused, 2, "b", "c", "already voted for a in term 2")));

        b.OnMessage(Request("a", "b", 2, new LogPosition(1, 5)), 0);
        Assert.That(OnlyResponse(b).Granted, Is.True, "a duplicate request from the same candidate gets the same answer");
        Assert.That(store.Saves, Has.Count.EqualTo(1), "and no second save");
    }

    [Test]
    public void A_vote_goes_only_to_a_log_at_least_as_up_to_date()
    {
        var store = new RecordingStore();
        var b = New("b", store, out var log);
        log[0] = new LogPosition(3, 5);
        b.OnMessage(Request("a", "b", 4, new LogPosition(3, 4)), 0);
        var shorter = OnlyResponse(b);
        Assert.That((shorter.Granted, shorter.Reason), Is.EqualTo((false, "its log (term 3, index 4) is behind ours (term 3, index 5)")));
        Assert.That((b.Term, b.VotedFor), Is.EqualTo((4UL, (string?)null)), "the newer term is taken up even when the vote is refused");
        b.OnMessage(Request("c", "b", 5, new LogPosition(2, 100)), 0);
        Assert.That(OnlyResponse(b).Granted, Is.False, "an older last term loses whatever its length");
        b.OnMessage(Request("c", "b", 6, new LogPosition(4, 1)), 0);
        Assert.That(OnlyResponse(b).Granted, Is.True, "a newer last term wins whatever its length");
    }

    [Test]
    public void A_voter_that_hears_its_leader_refuses_to_help_depose_it_and_keeps_its_term()
    {
        var store = new RecordingStore();
        var b = New("b", store, out _);
        b.OnLeaderHeard("a", 3, 10 * T);
        store.Saves.Clear();
        b.Events.Clear();

        b.OnMessage(Request("c", "b", 4, new LogPosition(3, 50), preVote: true), 10 * T + T / 2);
        var pre = OnlyResponse(b);
        Assert.That((pre.Granted, pre.Term, pre.PreVote), Is.EqualTo((false, 3UL, true)));
        Assert.That(pre.Reason, Is.EqualTo("leader a was heard 500 ms ago, within the election timeout"));

        b.OnMessage(Request("c", "b", 4, new LogPosition(3, 50)), 10 * T + T / 2);
        Assert.That(OnlyResponse(b).Granted, Is.False);
        Assert.That((b.Term, b.Leader, store.Saves.Count), Is.EqualTo((3UL, "a", 0)), "the real request did not move the term either");

        b.OnMessage(Request("c", "b", 4, new LogPosition(3, 50), transfer: true), 10 * T + T / 2);
        Assert.That(OnlyResponse(b).Granted, Is.True, "the leader's own handover passes");
        Assert.That(store.Saves.Single().State, Is.EqualTo(new TermVote(4, "c")));
    }

    [Test]
    public void A_newer_term_from_a_candidate_it_refuses_does_not_push_back_a_voters_own_campaign()
    {
        var b = New("b", new RecordingStore(), out var log);
        log[0] = new LogPosition(2, 9);
        long deadline = b.NextTickMicros;
        b.OnMessage(Request("a", "b", 3, new LogPosition(1, 1)), deadline - 1);
        Assert.That((b.Term, OnlyResponse(b).Granted), Is.EqualTo((3UL, false)));
        Assert.That(b.NextTickMicros, Is.EqualTo(deadline), "else a voter that can never win could keep this one from campaigning");
        b.OnMessage(Request("c", "b", 4, new LogPosition(2, 9)), deadline - 1);
        Assert.That(OnlyResponse(b).Granted, Is.True);
        Assert.That(b.NextTickMicros, Is.GreaterThanOrEqualTo(deadline - 1 + T), "granting a vote restarts the timer");
    }

    [Test]
    public void Once_the_leader_is_silent_for_a_timeout_a_pre_vote_is_granted_and_nothing_is_saved()
    {
        var store = new RecordingStore();
        var b = New("b", store, out _);
        b.OnLeaderHeard("a", 3, 0);
        store.Saves.Clear();
        b.OnMessage(Request("c", "b", 4, new LogPosition(3, 0), preVote: true), T);
        var pre = OnlyResponse(b);
        Assert.That((pre.Granted, pre.Term, pre.PreVote), Is.EqualTo((true, 4UL, true)));
        Assert.That((b.Term, b.VotedFor, store.Saves.Count), Is.EqualTo((3UL, (string?)null, 0)));
    }

    [Test]
    public void When_the_leaders_link_closes_the_voters_back_it_no_longer_and_campaign_soon_in_rank_order()
    {
        string[] four = ["a", "b", "c", "d"];
        var b = New("b", new RecordingStore(), out _, voters: four);
        var c = New("c", new RecordingStore(), out _, voters: four);
        var d = New("d", new RecordingStore(), out _, voters: four);
        foreach (var voter in new[] { b, c, d }) { voter.OnLeaderHeard("a", 3, 10 * T); voter.Events.Clear(); }

        b.OnLeaderLinkLost("x", 10 * T + 1);
        Assert.That(b.Leader, Is.EqualTo("a"), "a link to someone else changes nothing");
        Assert.That(b.Events, Is.Empty);

        foreach (var voter in new[] { b, c, d }) voter.OnLeaderLinkLost("a", 10 * T + 1);
        Assert.That(b.NextTickMicros - (10 * T + 1), Is.InRange(0, T / 16), "the first candidate in file order asks at once");
        Assert.That(c.NextTickMicros - (10 * T + 1), Is.InRange(T / 4, T / 4 + T / 16), "the next one waits a quarter timeout");
        Assert.That(d.NextTickMicros - (10 * T + 1), Is.InRange(T / 2, T / 2 + T / 16));
        Assert.That((c.Leader, c.Events.Single().Kind, c.Events.Single().Peer), Is.EqualTo(((string?)null, ElectionEventKind.LeaderLost, "a")));

        // b asks well within what the lease would have been; c, no longer backing a, grants at once.
        b.OnTick(b.NextTickMicros);
        Assert.That(b.Role, Is.EqualTo(RaftRole.PreCandidate));
        c.OnMessage(b.Outbox.Single(m => m.To == "c"), 10 * T + T / 10);
        var pre = OnlyResponse(c);
        Assert.That((pre.Granted, pre.Term), Is.EqualTo((true, 4UL)));
        Assert.That(c.Term, Is.EqualTo(3UL), "a pre-vote changes nothing");
    }

    [Test]
    public void A_closed_link_does_not_hurry_a_voter_that_may_not_lead_nor_move_a_deadline_that_is_sooner()
    {
        var options = ElectionOptions.Default with { Candidates = new HashSet<string>(["a", "b"]) };
        var c = New("c", new RecordingStore(), out _, options: options);
        c.OnLeaderHeard("a", 3, 10 * T);
        long deadline = c.NextTickMicros;
        c.OnLeaderLinkLost("a", 10 * T + 1);
        Assert.That((c.Leader, c.NextTickMicros), Is.EqualTo(((string?)null, deadline)));
        c.OnMessage(Request("b", "c", 4, new LogPosition(3, 0), preVote: true), 10 * T + 2);
        Assert.That(OnlyResponse(c).Granted, Is.True, "it still votes, at once");

        var b = New("b", new RecordingStore(), out _, options: options);
        b.OnLeaderHeard("a", 3, 10 * T);
        b.OnLeaderLinkLost("a", 10 * T + 1);
        long soon = b.NextTickMicros;
        b.OnLeaderHeard("a", 3, 10 * T + 2);
        Assert.That(b.Leader, Is.EqualTo("a"), "a leader heard again (a new link) is followed again");
        Assert.That(b.NextTickMicros, Is.GreaterThan(soon));
    }

    [Test]
    public void Check_quorum_steps_a_leader_down_exactly_one_timeout_after_the_majority_was_last_heard()
    {
        var store = new RecordingStore();
        var a = Leader(store, out _);
        Assert.That(a.NextTickMicros, Is.EqualTo(T), "every voter starts with a full timeout");
        a.OnVoterActive("c", T / 2);
        Assert.That(a.NextTickMicros, Is.EqualTo(T / 2 + T), "c alone keeps the quorum of 2 until then");
        a.OnTick(T + T / 2 - 1);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader));
        a.OnTick(T + T / 2);
        Assert.That((a.Role, a.Leader, a.Term), Is.EqualTo((RaftRole.Follower, (string?)null, 1UL)));
        Assert.That(a.Events[0], Is.EqualTo(new ElectionEvent(ElectionEventKind.SteppedDown, 1, "a", null,
            "check-quorum: heard from 1 of 3 voters within the election timeout, 2 needed")));
    }

    [Test]
    public void Without_check_quorum_a_silent_majority_does_not_depose_the_leader()
    {
        var a = Leader(new RecordingStore(), out _, ElectionOptions.Default with { CheckQuorum = false });
        Assert.That(a.NextTickMicros, Is.EqualTo(long.MaxValue));
        a.OnTick(100 * T);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader));
    }

    [Test]
    public void A_candidate_that_meets_a_newer_term_in_an_answer_steps_down_and_adopts_it()
    {
        var store = new RecordingStore();
        var a = New("a", store, out _, ElectionOptions.Default with { PreVote = false });
        a.OnTick(a.NextTickMicros);
        Assert.That((a.Role, a.Term), Is.EqualTo((RaftRole.Candidate, 1UL)));
        a.OnMessage(new ElectionMessage(ElectionMessageKind.VoteResponse, "b", "a", 7, default, false, false, false, "term 1 is older than ours 7"), 0);
        Assert.That((a.Role, a.Term, a.VotedFor), Is.EqualTo((RaftRole.Follower, 7UL, (string?)null)));
        Assert.That(store.State, Is.EqualTo(new TermVote(7, null)));
    }

    [Test]
    public void A_majority_of_refusals_ends_the_round_early()
    {
        var a = New("a", new RecordingStore(), out _);
        a.OnTick(a.NextTickMicros);
        a.OnMessage(new ElectionMessage(ElectionMessageKind.VoteResponse, "b", "a", 0, default, true, false, false, "behind"), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.PreCandidate), "one refusal of two others: c may still grant");
        a.OnMessage(new ElectionMessage(ElectionMessageKind.VoteResponse, "c", "a", 0, default, true, false, false, "behind"), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Follower));
    }

    [Test]
    public void A_node_outside_the_candidates_votes_but_never_campaigns_not_even_on_TimeoutNow()
    {
        var options = ElectionOptions.Default with { Candidates = new HashSet<string> { "a", "b" } };
        var c = New("c", new RecordingStore(), out _, options);
        for (int i = 0; i < 10; i++) c.OnTick(c.NextTickMicros);
        Assert.That((c.Role, c.Term, c.Outbox.Count), Is.EqualTo((RaftRole.Follower, 0UL, 0)));
        c.OnMessage(new ElectionMessage(ElectionMessageKind.TimeoutNow, "a", "c", 2, default, false, false, true, null), c.NextTickMicros);
        Assert.That((c.Role, c.Term, c.Outbox.Count), Is.EqualTo((RaftRole.Follower, 2UL, 0)));
        Assert.That(c.Events.Last().Kind, Is.EqualTo(ElectionEventKind.TransferAborted));
        c.OnMessage(Request("a", "c", 3, default), c.NextTickMicros);
        Assert.That(OnlyResponse(c).Granted, Is.True, "it still votes");

        var b = New("b", new RecordingStore(), out _, options);
        b.OnMessage(Request("c", "b", 1, default), 0);
        Assert.That(OnlyResponse(b).Reason, Is.EqualTo("c is not a leader candidate"));
        Assert.That(b.TransferTarget, Is.Null);
    }

    [Test]
    public void A_transfer_sends_TimeoutNow_once_and_completes_when_the_target_leads()
    {
        var store = new RecordingStore();
        var a = Leader(store, out var log);
        log[0] = new LogPosition(1, 20);
        Assert.That(a.SendTimeoutNow("b", 0), Is.False, "no transfer open");
        Assert.That(a.TransferLeadership("b", 0), Is.True);
        Assert.That(a.TransferTarget, Is.EqualTo("b"));
        Assert.That(a.SendTimeoutNow("c", 0), Is.False, "not the target");
        Assert.That(a.SendTimeoutNow("b", 0), Is.True);
        Assert.That(a.SendTimeoutNow("b", 0), Is.False, "once per transfer");
        var timeoutNow = a.Outbox.Single();
        a.Outbox.Clear();
        Assert.That((timeoutNow.Kind, timeoutNow.To, timeoutNow.Term), Is.EqualTo((ElectionMessageKind.TimeoutNow, "b", 1UL)));

        // The target campaigns at once, skipping pre-vote, flagged as a transfer.
        var b = New("b", new RecordingStore(), out var bLog);
        bLog[0] = log[0];
        b.OnLeaderHeard("a", 1, 0);
        b.OnMessage(timeoutNow, 1);
        Assert.That((b.Role, b.Term), Is.EqualTo((RaftRole.Candidate, 2UL)));
        var request = b.Outbox.First(m => m.To == "a");
        Assert.That((request.Transfer, request.PreVote), Is.EqualTo((true, false)));

        a.OnMessage(request, 2);
        Assert.That((a.Role, a.Term, OnlyResponse(a).Granted), Is.EqualTo((RaftRole.Follower, 2UL, true)), "the leader itself votes for its target");
        Assert.That(a.TransferTarget, Is.EqualTo("b"), "open until b is heard leading");
        a.OnLeaderHeard("b", 2, 3);
        Assert.That(a.TransferTarget, Is.Null);
        Assert.That(a.Events.Last(), Is.EqualTo(new ElectionEvent(ElectionEventKind.TransferCompleted, 2, "a", "b", "b leads term 2")));
    }

    [Test]
    public void A_transfer_that_does_not_complete_within_a_timeout_is_aborted_and_the_leader_keeps_leading()
    {
        var a = Leader(new RecordingStore(), out _);
        Assert.That(a.TransferLeadership("b", 0), Is.True);
        a.OnVoterActive("b", T - 1);
        Assert.That(a.NextTickMicros, Is.EqualTo(T), "the transfer's deadline");
        a.OnTick(T);
        Assert.That((a.Role, a.TransferTarget), Is.EqualTo((RaftRole.Leader, (string?)null)));
        Assert.That(a.Events.Last().Kind, Is.EqualTo(ElectionEventKind.TransferAborted));
        Assert.That(a.TransferLeadership("zz", T), Is.False);
        Assert.That(a.Events.Last().Reason, Is.EqualTo("zz is not a voter"));
    }

    [Test]
    public void A_restarted_voter_remembers_its_vote_and_term()
    {
        var store = new RecordingStore();
        var b = New("b", store, out _);
        b.OnMessage(Request("a", "b", 5, default), 0);
        var again = New("b", store, out _);
        Assert.That((again.Term, again.VotedFor), Is.EqualTo((5UL, "a")));
        again.OnMessage(Request("c", "b", 5, default), 0);
        Assert.That(OnlyResponse(again).Reason, Is.EqualTo("already voted for a in term 5"));
    }

    [Test]
    public void A_disk_failure_while_saving_a_vote_sends_nothing()
    {
        var b = new Election("b", Three, new FailingStore(), ElectionOptions.Default, () => default, new Random(1), 0);
        Assert.Throws<GeoRelay.Storage.DiskFailedException>(() => b.OnMessage(Request("a", "b", 1, default), 0));
        Assert.That(b.Outbox, Is.Empty);
        Assert.That(b.Term, Is.EqualTo(0UL), "the state in memory did not run ahead of the disk");
    }

    private sealed class FailingStore : IElectionStore
    {
        public TermVote Load() => default;
        public void Save(TermVote state) => throw new GeoRelay.Storage.DiskFailedException("fsync", "term-vote.tmp", new IOException("EIO"));
    }

    [Test]
    public void Bad_configurations_are_refused_with_what_is_wrong()
    {
        var store = new RecordingStore();
        Assert.That(Assert.Throws<ArgumentException>(() => new Election("a", ["a", "b", "b"], store, ElectionOptions.Default, () => default, new Random(), 0))!.Message,
            Does.Contain("voter 'b' is listed twice"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Election("a", Three, store, ElectionOptions.Default with { Candidates = new HashSet<string> { "x" } }, () => default, new Random(), 0))!.Message,
            Does.Contain("no voter is among the leader candidates (x)"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Election("a", Three, store, ElectionOptions.Default with { Heartbeat = TimeSpan.FromMilliseconds(600) }, () => default, new Random(), 0))!.Message,
            Does.Contain("at most half the election timeout"));
    }

    [Test]
    public void Messages_survive_the_wire_and_a_request_must_come_from_its_candidate()
    {
        var messages = new[]
        {
            Request("a", "b", 9, new LogPosition(8, 77), preVote: true),
            Request("a", "b", 9, new LogPosition(8, 77), transfer: true),
            new ElectionMessage(ElectionMessageKind.VoteResponse, "a", "b", 9, default, true, false, false, "its log is behind"),
            new ElectionMessage(ElectionMessageKind.VoteResponse, "a", "b", 9, default, false, true, false, null),
            new ElectionMessage(ElectionMessageKind.TimeoutNow, "a", "b", 9, default, false, false, true, null),
        };
        foreach (var m in messages)
        {
            using var w = new PooledBufferWriter();
            ElectionMessageCodec.WritePayload(w, m);
            var read = ElectionMessageCodec.Read(ElectionMessageCodec.FrameTypeOf(m.Kind), new ReadOnlySequence<byte>(w.WrittenMemory), "a", "b");
            Assert.That(read, Is.EqualTo(m));
        }
        using var other = new PooledBufferWriter();
        ElectionMessageCodec.WritePayload(other, messages[0]);
        var e = Assert.Throws<CodecException>(() => ElectionMessageCodec.Read(FrameType.VoteRequest, new ReadOnlySequence<byte>(other.WrittenMemory), "c", "b"))!;
        Assert.That((e.Reason, e.Message), Is.EqualTo((CodecError.Protocol, "Protocol: VoteRequest for candidate a arrived from c")));
    }
}
