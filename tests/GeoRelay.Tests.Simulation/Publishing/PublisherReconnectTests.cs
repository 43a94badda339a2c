using System.Text;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.LearnerClient.Internal;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Publishing;

/// <summary>
/// The publisher SDK following the leader between scripted leaders: reconnects, the leader a refusing node names,
/// requests sent again in order with their producer sequences, and what ends the client.
/// </summary>
[TestFixture]
public sealed class PublisherReconnectTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly byte[] Key = "test"u8.ToArray();

    private static PublisherClientOptions Options(params string[] endpoints) => PublisherClientOptions.Default with
    {
        Endpoints = endpoints,
        NodeId = "test-publisher",
        ReconnectInitial = TimeSpan.FromMilliseconds(10),
        ReconnectMax = TimeSpan.FromMilliseconds(50),
    };

    private static byte[] Payload(int n) => Encoding.UTF8.GetBytes("entry-" + n);

    private static string PayloadOf(ScriptedLeader.Request request) => Encoding.UTF8.GetString(request.Entries[0].Payload);

    private static string NotLeader(string leader) => $"a does not lead; b leads term 2, publish at {leader}";

    [Test, CancelAfter(60_000)]
    public async Task A_lost_leader_is_followed_to_the_one_named_and_unacknowledged_requests_go_again_first_in_order_with_their_sequences(CancellationToken ct)
    {
        await using var first = new ScriptedLeader { AutoAck = false };
        // Not in Endpoints: only the refusals' hint leads the client there. Not leading yet, at first.
        await using var second = new ScriptedLeader { AutoAck = false, RefuseHandshakeWith = CodecError.NotLeader, RefusalMessage = "b does not lead, and no leader is known in term 2; retry shortly" };
        var log = new LineCollector();
        await using var publisher = await PublisherClient.ConnectAsync(Options(first.Endpoint), log.Factory.CreateLogger("publisher"), ct);
        Assert.That(publisher.ProducerId, Is.Not.Zero, "exactly-once is the default");

        var before = Enumerable.Range(1, 3).Select(i => publisher.PublishAsync(Key, Payload(i)).AsTask()).ToList();
        await Poll.UntilAsync(() => first.ReceivedCount == 3, "three publishes at the first leader", Patience);
        first.Ack();
        Assert.That((await before[0].WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));

        // Deposed: it closes the publisher naming the new leader, and refuses it from now on.
        first.RefuseHandshakeWith = CodecError.NotLeader;
        first.RefusalMessage = NotLeader(second.Endpoint);
        first.CloseWithError(CodecError.NotLeader, NotLeader(second.Endpoint));
        await Poll.UntilAsync(() => publisher.Reconnecting && log.Text.Contains($"{first.Endpoint} does not lead and names {second.Endpoint}"),
            "the client looking for the leader, sent to the one named", Patience);
        var during = Enumerable.Range(4, 2).Select(i => publisher.PublishAsync(Key, Payload(i)).AsTask()).ToList();
        Assert.That(before[1].IsCompleted || during[0].IsCompleted, Is.False, "publishes wait while the client reconnects");

        second.RefuseHandshakeWith = null; // elected
        await Poll.UntilAsync(() => second.ReceivedCount == 4, "four requests at the new leader", Patience);
        second.Ack(4);
        var acks = await Task.WhenAll(before.Skip(1).Concat(during)).WaitAsync(Patience, ct);

        var sentFirst = first.Received;
        var sentSecond = second.Received;
        Assert.That(sentSecond.Select(PayloadOf), Is.EqualTo(new[] { "entry-2", "entry-3", "entry-4", "entry-5" }),
            "the unacknowledged requests again, in their order, before the publishes made meanwhile");
        Assert.That(sentSecond.Take(2).Select(r => (r.Id, r.Producer)), Is.EqualTo(sentFirst.Skip(1).Select(r => (r.Id, r.Producer))),
            "sent again as they were: same request ids, producer id and sequences");
        Assert.That(sentSecond.Select(r => r.Producer), Is.EqualTo(Enumerable.Range(2, 4).Select(s => new ProducerSequence(publisher.ProducerId, (ulong)s))),
            "one producer, sequences following on without a gap");
        Assert.That(acks.Select(a => a.FirstIndex), Is.EqualTo(new ulong[] { 1, 2, 3, 4 }), "each publish reports where the leader that acknowledged it put it");
        Assert.That(publisher.Endpoint, Is.EqualTo(second.Endpoint));
        Assert.That(log.Text, Does.Contain($"Connection to {first.Endpoint} lost: NotLeader").And.Contain("holding 2 unacknowledged and 0 waiting publishes"));
        Assert.That(log.Text, Does.Contain($"Reconnected to {second.Endpoint}").And.Contain("2 unacknowledged requests sent again"));
    }

    [Test, CancelAfter(60_000)]
    public async Task ConnectAsync_goes_to_the_leader_a_refusing_node_names(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader();
        await using var follower = new ScriptedLeader { RefuseHandshakeWith = CodecError.NotLeader, RefusalMessage = NotLeader(leader.Endpoint) };
        string nobody = $"127.0.0.1:{LocalCluster.FreeLoopbackPorts(1)[0]}";

        await using var publisher = await PublisherClient.ConnectAsync(Options(follower.Endpoint, nobody), ct);

        Assert.That(publisher.Endpoint, Is.EqualTo(leader.Endpoint), "straight to the leader named, before the other endpoints");
        Assert.That((await publisher.PublishAsync(Key, Payload(1)).AsTask().WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
    }

    [Test, CancelAfter(60_000)]
    public async Task While_nodes_answer_NotLeader_the_client_asks_again_soon_instead_of_backing_off_past_the_election(CancellationToken ct)
    {
        // Mid-election every node answers "no leader yet": they are up, and a leader comes within about a second.
        await using var node = new ScriptedLeader { RefuseHandshakeWith = CodecError.NotLeader, RefusalMessage = "a does not lead, and no leader is known in term 2; retry shortly", RefuseOnly = 8 };
        var log = new LineCollector();

        await using var publisher = await PublisherClient.ConnectAsync(Options(node.Endpoint), log.Factory.CreateLogger("publisher"), ct);

        var waits = System.Text.RegularExpressions.Regex.Matches(log.Text, @"retrying in (\S+)").Select(m => TimeSpan.Parse(m.Groups[1].Value)).ToList();
        Assert.That(node.Refused, Is.EqualTo(8));
        Assert.That(waits, Has.Count.EqualTo(8));
        // Initial 10 ms, doubled twice at most (+20% jitter); unreachable endpoints would have grown to the 50 ms maximum.
        Assert.That(waits, Has.All.LessThanOrEqualTo(TimeSpan.FromMilliseconds(48)));
        Assert.That((await publisher.PublishAsync(Key, Payload(1)).AsTask().WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_dead_leader_is_replaced_by_the_next_endpoint_that_takes_publishes(CancellationToken ct)
    {
        var first = new ScriptedLeader { AutoAck = false };
        await using var second = new ScriptedLeader { AutoAck = false };
        await using var publisher = await PublisherClient.ConnectAsync(Options(first.Endpoint, second.Endpoint), ct);
        var pending = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => first.ReceivedCount == 1, "the publish at the first leader", Patience);

        await first.DisposeAsync(); // killed: the connection drops, the port refuses

        await Poll.UntilAsync(() => second.ReceivedCount == 1, "the publish sent again to the next endpoint", Patience);
        second.Ack();
        Assert.That((await pending.WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
        Assert.That(second.Received[0].Producer, Is.EqualTo(first.Received[0].Producer));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_leader_gone_silent_with_publishes_waiting_is_dropped_after_the_answer_timeout_and_they_go_to_the_next(CancellationToken ct)
    {
        // A silent partition: the connection stays open and nothing comes back (no close, no NotLeader).
        await using var first = new ScriptedLeader { AutoAck = false };
        await using var second = new ScriptedLeader { AutoAck = false };
        var log = new LineCollector();
        await using var publisher = await PublisherClient.ConnectAsync(Options(first.Endpoint, second.Endpoint) with { AnswerTimeout = TimeSpan.FromMilliseconds(400) },
            log.Factory.CreateLogger("publisher"), ct);
        var pending = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => first.ReceivedCount == 1, "the publish at the first leader", Patience);
        first.RefuseHandshakeWith = CodecError.NotLeader; // unreachable from here on, as a partitioned node is

        await Poll.UntilAsync(() => second.ReceivedCount == 1, "the publish sent again to the next endpoint after the silence", Patience);
        second.Ack();
        Assert.That((await pending.WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
        Assert.That(second.Received[0].Producer, Is.EqualTo(first.Received[0].Producer), "the same sequence: no second copy");
        Assert.That(log.Text, Does.Contain("no answer for 0.4 s while publishes wait"));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_idle_connection_is_not_taken_for_dead(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader();
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { AnswerTimeout = TimeSpan.FromMilliseconds(200) }, ct);
        Assert.That((await publisher.PublishAsync(Key, Payload(1)).AsTask().WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
        // Quiet for several timeouts with nothing waiting: the same connection takes the next publish.
        using var quiet = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        for (int i = 0; i < 8; i++) await quiet.WaitForNextTickAsync(ct);
        Assert.That((await publisher.PublishAsync(Key, Payload(2)).AsTask().WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(2UL));
        Assert.That(publisher.Reconnecting, Is.False);
        Assert.That(leader.Accepted, Is.EqualTo(1), "one connection all along");
    }

    [Test, CancelAfter(60_000)]
    public async Task Without_exactly_once_a_request_sent_and_not_acknowledged_fails_and_later_publishes_go_to_the_new_leader(CancellationToken ct)
    {
        var first = new ScriptedLeader { AutoAck = false };
        await using var second = new ScriptedLeader();
        var log = new LineCollector();
        await using var publisher = await PublisherClient.ConnectAsync(Options(first.Endpoint, second.Endpoint) with { ExactlyOnce = false },
            log.Factory.CreateLogger("publisher"), ct);
        Assert.That(publisher.ProducerId, Is.Zero);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => first.ReceivedCount == 1, "the publish at the first leader", Patience);

        first.Drop();
        await first.DisposeAsync();

        var failure = Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!;
        Assert.That(failure.WasSent, Is.True);
        Assert.That(failure.Message, Does.Contain("without ExactlyOnce it is not sent again").And.Contain(first.Endpoint));
        var later = await publisher.PublishAsync(Key, Payload(2)).AsTask().WaitAsync(Patience, ct);
        Assert.That(later.FirstIndex, Is.EqualTo(1UL));
        Assert.That(second.Received.Select(PayloadOf), Is.EqualTo(new[] { "entry-2" }), "the failed request was not sent again");
        Assert.That(second.Received[0].Producer, Is.EqualTo(default(ProducerSequence)));
        Assert.That(log.Text, Does.Contain("1 failed (sent without ExactlyOnce, so not sent again)"));
    }

    [Test, CancelAfter(60_000)]
    public async Task When_no_node_takes_the_client_within_the_reconnect_timeout_everything_pending_fails(CancellationToken ct)
    {
        var leader = new ScriptedLeader { AutoAck = false };
        var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxInFlightEntries = 1, ReconnectTimeout = TimeSpan.FromMilliseconds(300) }, ct);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        var waiting = publisher.PublishAsync(Key, Payload(2)).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the first publish at the leader", Patience);

        await leader.DisposeAsync();

        var unacknowledged = Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!;
        Assert.That(unacknowledged.WasSent, Is.True);
        Assert.That(unacknowledged.Message, Does.Contain("gave up reconnecting").And.Contain("ReconnectTimeout (0.3 s)").And.Contain(leader.Endpoint));
        var unsent = Assert.ThrowsAsync<PublishFailedException>(async () => await waiting.WaitAsync(Patience, ct))!;
        Assert.That(unsent.WasSent, Is.False);
        Assert.That(unsent.Message, Does.Contain("was not sent").And.Contain("gave up reconnecting"));
        var later = Assert.ThrowsAsync<PublishFailedException>(async () => await publisher.PublishAsync(Key, Payload(3)))!;
        Assert.That(later.WasSent, Is.False);
        Assert.That(publisher.Reconnecting, Is.False);
        await publisher.DisposeAsync();
    }

    [Test, CancelAfter(60_000)]
    public async Task A_token_refused_while_reconnecting_ends_the_client_at_once(CancellationToken ct)
    {
        var leader = new ScriptedLeader { AutoAck = false };
        await using var refusing = new ScriptedLeader { RefuseHandshakeWith = CodecError.Unauthorized, RefusalMessage = "token for 'app' was revoked" };
        // A reconnect timeout the test would never outlast: only the refusal can end the wait below.
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint, refusing.Endpoint) with { ReconnectTimeout = TimeSpan.FromHours(1) }, ct);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the publish at the leader", Patience);

        await leader.DisposeAsync();

        var failure = Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!;
        var refusal = failure.InnerException as ClientRefusedException;
        Assert.That((refusal?.Endpoint, refusal?.Code), Is.EqualTo(((string?)refusing.Endpoint, (CodecError?)CodecError.Unauthorized)));
        Assert.That(failure.Message, Does.Contain("token for 'app' was revoked"));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_zero_reconnect_timeout_keeps_one_connection(CancellationToken ct)
    {
        var first = new ScriptedLeader { AutoAck = false };
        await using var second = new ScriptedLeader();
        await using var publisher = await PublisherClient.ConnectAsync(Options(first.Endpoint, second.Endpoint) with { ReconnectTimeout = TimeSpan.Zero }, ct);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => first.ReceivedCount == 1, "the publish at the leader", Patience);

        await first.DisposeAsync();

        Assert.That(Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!.WasSent, Is.True);
        Assert.That(Assert.ThrowsAsync<PublishFailedException>(async () => await publisher.PublishAsync(Key, Payload(2)))!.WasSent, Is.False);
        Assert.That(second.Accepted, Is.Zero, "no reconnect");
    }

    [Test, CancelAfter(60_000)]
    public async Task Disposing_while_reconnecting_fails_what_is_pending_and_stops(CancellationToken ct)
    {
        var leader = new ScriptedLeader { AutoAck = false };
        var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { ReconnectTimeout = TimeSpan.FromHours(1) }, ct);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the publish at the leader", Patience);
        await leader.DisposeAsync();
        await Poll.UntilAsync(() => publisher.Reconnecting, "the client reconnecting", Patience);

        await publisher.DisposeAsync().AsTask().WaitAsync(Patience, ct);

        var failure = Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!;
        Assert.That((failure.WasSent, failure.Message.Contains("disposed")), Is.EqualTo((true, true)));
    }

    [TestCase("m1 does not lead; leader leads term 3, publish at 127.0.0.1:7000", "127.0.0.1:7000")]
    [TestCase("m1 does not lead; leader leads term 3, publish at [::1]:7000", "[::1]:7000")]
    [TestCase("m1 does not lead; leader leads term 3, publish at eu-1.example:7000.", "eu-1.example:7000")]
    [TestCase("m1 does not lead; leader leads term 3", null)]
    [TestCase("m1 does not lead, and no leader is known in term 3; retry shortly", null)]
    [TestCase("publish at nowhere", null)]
    [TestCase("", null)]
    public void The_leader_a_NotLeader_refusal_names(string message, string? expected) =>
        Assert.That(LeaderHint.Find(message), Is.EqualTo(expected));
}
