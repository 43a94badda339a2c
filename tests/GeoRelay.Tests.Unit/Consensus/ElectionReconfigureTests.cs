using GeoRelay.Engines.Consensus;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Consensus;

/// <summary>Membership changes as the election sees them: the voter set replaced while it runs.</summary>
[TestFixture]
public sealed class ElectionReconfigureTests
{
    private const long T = 1_000_000;

    private sealed class Store : IElectionStore
    {
        public TermVote State;
        public TermVote Load() => State;
        public void Save(TermVote state) => State = state;
    }

    private static Election New(string self, string[] voters, bool selfVotes = true) =>
        new(self, voters, new Store(), ElectionOptions.Default, () => default, new Random(1), 0, selfVotes);

    private static ElectionMessage Grant(string from, string to, ulong term, bool preVote = false) =>
        new(ElectionMessageKind.VoteResponse, from, to, term, default, preVote, true, false, null);

    private static Election LeaderOfThree()
    {
        var a = New("a", ["a", "b", "c"]);
        a.OnTick(a.NextTickMicros);
        a.OnMessage(Grant("b", "a", 1, preVote: true), 0);
        a.OnMessage(Grant("b", "a", 1), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader));
        a.Outbox.Clear();
        return a;
    }

    [Test]
    public void Adding_two_voters_raises_the_quorum_and_check_quorum_counts_them()
    {
        var a = LeaderOfThree();
        long now = 10;
        a.OnVoterActive("b", now);
        a.Reconfigure(["a", "b", "c", "d", "e"], null, now);
        Assert.That(a.Quorum, Is.EqualTo(3));
        Assert.That(a.Events.Any(e => e.Kind == ElectionEventKind.Reconfigured), Is.True);
        // b keeps its report; d and e get a whole timeout from now.
        a.OnTick(now + T - 1);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader));
        a.OnVoterActive("b", now + T / 2);
        a.OnVoterActive("d", now + T / 2);
        a.OnTick(now + T + 1);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Leader), "a, b and d make three of five");
        a.OnTick(now + T / 2 + T + 1);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Follower), "nobody else was heard within the timeout: 1 of 5");
    }

    [Test]
    public void A_non_voter_never_campaigns_and_a_vote_from_one_does_not_count()
    {
        var d = New("d", ["a", "b", "c"], selfVotes: false);
        Assert.That((d.SelfVotes, d.Quorum, d.CanLead("d")), Is.EqualTo((false, 2, false)));
        for (int i = 0; i < 5; i++) d.OnTick(d.NextTickMicros);
        Assert.That((d.Role, d.Term), Is.EqualTo((RaftRole.Follower, 0UL)));
        Assert.That(d.Outbox, Is.Empty);

        var a = New("a", ["a", "b", "c"]);
        a.OnTick(a.NextTickMicros);
        a.OnMessage(Grant("d", "a", 1, preVote: true), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.PreCandidate), "d is not a voter of a's configuration");
        Assert.That(a.Events.Any(e => e.Kind == ElectionEventKind.Ignored && e.Peer == "d"), Is.True);
    }

    [Test]
    public void Promotion_lets_a_node_campaign_and_removal_makes_a_candidate_give_up()
    {
        var d = New("d", ["a", "b", "c"], selfVotes: false);
        d.Reconfigure(["a", "b", "c", "d"], null, 0);
        Assert.That((d.SelfVotes, d.Quorum), Is.EqualTo((true, 3)));
        d.OnTick(d.NextTickMicros);
        Assert.That(d.Role, Is.EqualTo(RaftRole.PreCandidate));
        Assert.That(d.Outbox.Select(m => m.To), Is.EquivalentTo(new[] { "a", "b", "c" }));
        d.Reconfigure(["a", "b", "c"], null, 0);
        Assert.That((d.Role, d.SelfVotes, d.Quorum), Is.EqualTo((RaftRole.Follower, false, 2)));
    }

    [Test]
    public void A_round_keeps_the_answers_of_voters_that_stay()
    {
        var a = New("a", ["a", "b", "c", "d", "e"]);
        a.OnTick(a.NextTickMicros);
        a.OnMessage(Grant("e", "a", 1, preVote: true), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.PreCandidate), "2 of 5");
        // e leaves: the voters are now a, b, c, d (quorum 3); a's own vote stays, e's goes.
        a.Reconfigure(["a", "b", "c", "d"], null, 0);
        a.OnMessage(Grant("b", "a", 1, preVote: true), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.PreCandidate), "a and b are 2 of the 3 needed");
        a.OnMessage(Grant("c", "a", 1, preVote: true), 0);
        Assert.That(a.Role, Is.EqualTo(RaftRole.Candidate));
    }

    [Test]
    public void A_transfer_to_a_removed_voter_is_aborted()
    {
        var a = LeaderOfThree();
        Assert.That(a.TransferLeadership("c", 0), Is.True);
        a.Reconfigure(["a", "b"], null, 0);
        Assert.That(a.TransferTarget, Is.Null);
        Assert.That(a.Events.Any(e => e.Kind == ElectionEventKind.TransferAborted && e.Peer == "c"), Is.True);
    }

    [Test]
    public void A_configuration_without_a_leader_candidate_is_refused()
    {
        var a = New("a", ["a", "b", "c"]);
        Assert.Throws<ArgumentException>(() => a.Reconfigure(["a", "b"], new HashSet<string> { "c" }, 0));
        Assert.That(a.Quorum, Is.EqualTo(2), "unchanged");
    }
}
