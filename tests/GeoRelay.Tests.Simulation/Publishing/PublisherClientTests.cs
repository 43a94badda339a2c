using System.Text;
using GeoRelay.Cli.Demo;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Publishing;

/// <summary>The publisher SDK against a scripted leader that acknowledges when the test says.</summary>
[TestFixture]
public sealed class PublisherClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private static readonly byte[] Key = "test"u8.ToArray();

    private static PublisherClientOptions Options(params string[] endpoints) =>
        PublisherClientOptions.Default with { Endpoints = endpoints, NodeId = "test-publisher" };

    private static byte[] Payload(int n) => Encoding.UTF8.GetBytes("entry-" + n);

    private static string PayloadOf(ScriptedLeader.Request request) => Encoding.UTF8.GetString(request.Entries[0].Payload);

    [Test, CancelAfter(60_000)]
    public async Task Publishes_past_the_in_flight_limit_wait_for_acks_and_go_out_in_call_order(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader { AutoAck = false };
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxInFlightEntries = 2 }, ct);

        var publishes = new Task<PublishResult>[5];
        for (int i = 0; i < publishes.Length; i++) publishes[i] = publisher.PublishAsync(Key, Payload(i)).AsTask();

        Assert.That(publisher.InFlightEntries, Is.EqualTo(2), "two sent");
        Assert.That(publisher.WaitingPublishes, Is.EqualTo(3), "three wait for room");
        await Poll.UntilAsync(() => leader.ReceivedCount == 2, "the first two publishes at the leader", Patience);
        Assert.That(publishes.Count(p => p.IsCompleted), Is.Zero, "nothing is acknowledged yet");

        leader.Ack();
        Assert.That((await publishes[0].WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
        Assert.That(publisher.WaitingPublishes, Is.EqualTo(2), "one ack made room for exactly one more");
        await Poll.UntilAsync(() => leader.ReceivedCount == 3, "the third publish at the leader", Patience);
        Assert.That(publishes[3].IsCompleted || publishes[4].IsCompleted, Is.False);

        leader.Ack(2);
        await Poll.UntilAsync(() => leader.ReceivedCount == 5, "every publish at the leader", Patience);
        leader.Ack(2);
        var results = await Task.WhenAll(publishes).WaitAsync(Patience, ct);

        Assert.That(results.Select(r => r.FirstIndex), Is.EqualTo(new ulong[] { 1, 2, 3, 4, 5 }), "indexes follow the call order");
        var received = leader.Received;
        Assert.That(received.Select(PayloadOf), Is.EqualTo(Enumerable.Range(0, 5).Select(i => "entry-" + i)), "sent in call order");
        for (int i = 0; i < received.Count; i++)
            Assert.That(i - received[i].AcksSentBefore, Is.LessThan(2), $"publish {i} reached the leader with two others unacknowledged");
        Assert.That(publisher.InFlightEntries, Is.Zero);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_request_larger_than_the_window_goes_out_alone(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader { AutoAck = false };
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxInFlightBytes = 16 }, ct);

        var first = publisher.PublishAsync(Key, new byte[100]).AsTask();
        var second = publisher.PublishAsync(Key, new byte[100]).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the first publish at the leader", Patience);
        Assert.That(publisher.WaitingPublishes, Is.EqualTo(1));

        leader.Ack();
        await first.WaitAsync(Patience, ct);
        await Poll.UntilAsync(() => leader.ReceivedCount == 2, "the second publish at the leader", Patience);
        leader.Ack();
        Assert.That((await second.WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(2UL));
        Assert.That(leader.Received[1].AcksSentBefore, Is.EqualTo(1), "the second left only once the first was acknowledged");
    }

    [Test, CancelAfter(60_000)]
    public async Task Disposing_fails_pending_publishes_saying_whether_they_were_sent(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader { AutoAck = false };
        var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxInFlightEntries = 1 }, ct);
        var sent = publisher.PublishAsync(Key, Payload(1)).AsTask();
        var waiting = publisher.PublishAsync(Key, Payload(2)).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the first publish at the leader", Patience);

        await publisher.DisposeAsync();

        var unacknowledged = Assert.ThrowsAsync<PublishFailedException>(async () => await sent.WaitAsync(Patience, ct))!;
        Assert.That(unacknowledged.WasSent, Is.True);
        Assert.That(unacknowledged.Message, Does.Contain("sent but not acknowledged").And.Contain("disposed").And.Contain("may have appended"));
        var unsent = Assert.ThrowsAsync<PublishFailedException>(async () => await waiting.WaitAsync(Patience, ct))!;
        Assert.That(unsent.WasSent, Is.False);
        Assert.That(unsent.Message, Does.Contain("was not sent").And.Contain("disposed"));
        Assert.Throws<ObjectDisposedException>(() => publisher.PublishAsync(Key, Payload(3)));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_leader_that_closes_the_connection_fails_publishes_with_its_reason(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader { AutoAck = false };
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint), ct);
        var refused = publisher.PublishAsync(Key, Payload(1)).AsTask();
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the publish at the leader", Patience);

        leader.CloseWithError(CodecError.Unauthorized, "the token for 'app' does not allow publishing key 'test'");

        var failure = Assert.ThrowsAsync<PublishFailedException>(async () => await refused.WaitAsync(Patience, ct))!;
        Assert.That(failure.WasSent, Is.True);
        Assert.That(failure.Message, Does.Contain(leader.Endpoint).And.Contain("Unauthorized").And.Contain("does not allow publishing key 'test'"));
        Assert.That(failure.Message, Does.Not.Contain("Unauthorized: Unauthorized"));
        var later = Assert.ThrowsAsync<PublishFailedException>(async () => await publisher.PublishAsync(Key, Payload(2)))!;
        Assert.That(later.WasSent, Is.False);
        Assert.That(later.Message, Does.Contain("does not allow publishing key 'test'"));
        // A refused token: a new connection would be refused too, and the failure says so.
        foreach (var f in new[] { failure, later })
        {
            var refusal = f.InnerException as ClientRefusedException;
            Assert.That((refusal?.Endpoint, refusal?.Code, refusal?.Detail),
                Is.EqualTo(((string?)leader.Endpoint, (CodecError?)CodecError.Unauthorized, (string?)"the token for 'app' does not allow publishing key 'test'")));
        }
    }

    [Test, CancelAfter(60_000)]
    public async Task A_refused_token_ends_ConnectAsync_at_the_first_endpoint_that_refuses_it(CancellationToken ct)
    {
        await using var refusing = new ScriptedLeader { RefuseHandshakeWith = CodecError.Unauthorized };
        await using var serving = new ScriptedLeader();

        var refused = Assert.ThrowsAsync<ClientRefusedException>(() => PublisherClient.ConnectAsync(Options(refusing.Endpoint, serving.Endpoint), ct))!;

        Assert.That((refused.Endpoint, refused.Code, refused.Detail), Is.EqualTo((refusing.Endpoint, CodecError.Unauthorized, "scripted refusal")));
    }

    [Test, CancelAfter(60_000)]
    public async Task Another_refusal_moves_on_to_the_next_endpoint(CancellationToken ct)
    {
        await using var oldVersion = new ScriptedLeader { RefuseHandshakeWith = CodecError.VersionMismatch };
        await using var serving = new ScriptedLeader();

        await using var publisher = await PublisherClient.ConnectAsync(Options(oldVersion.Endpoint, serving.Endpoint), ct);

        Assert.That(publisher.Endpoint, Is.EqualTo(serving.Endpoint));
    }

    [Test, CancelAfter(60_000)]
    public async Task Cancelling_a_publish_that_waits_for_room_drops_it_and_the_next_goes_in_its_place(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader { AutoAck = false };
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxInFlightEntries = 1 }, ct);
        using var cancel = new CancellationTokenSource();
        var first = publisher.PublishAsync(Key, Payload(1)).AsTask();
        var cancelled = publisher.PublishAsync(Key, Payload(2), WaitLevel.Accepted, cancel.Token).AsTask();
        var third = publisher.PublishAsync(Key, Payload(3)).AsTask();

        cancel.Cancel();
        Assert.CatchAsync<OperationCanceledException>(async () => await cancelled.WaitAsync(Patience, ct));
        Assert.That(publisher.WaitingPublishes, Is.EqualTo(1));
        await Poll.UntilAsync(() => leader.ReceivedCount == 1, "the first publish at the leader", Patience);
        leader.Ack();
        await first.WaitAsync(Patience, ct);
        await Poll.UntilAsync(() => leader.ReceivedCount == 2, "the third publish at the leader", Patience);
        leader.Ack();

        Assert.That((await third.WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(2UL));
        Assert.That(leader.Received.Select(PayloadOf), Is.EqualTo(new[] { "entry-1", "entry-3" }));
    }

    [Test, CancelAfter(60_000)]
    public async Task Bad_publishes_throw_at_the_call_and_send_nothing(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader();
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint) with { MaxFrameBytes = 1024 }, ct);

        Assert.That(() => publisher.PublishAsync(new byte[EntryRecord.MaxKeyLength + 1], Payload(0)),
            Throws.ArgumentException.With.Message.Contains("a key is 1025 bytes"));
        Assert.That(() => publisher.PublishAsync(Array.Empty<PublishEntry>()), Throws.ArgumentException.With.Message.Contains("at least one entry"));
        Assert.That(() => publisher.PublishAsync(Key, new byte[2000]), Throws.ArgumentException.With.Message.Contains("MaxFrameBytes"));
        Assert.That(() => publisher.PublishAsync(Key, new Uri("https://example.org")),
            Throws.InvalidOperationException.With.Message.Contains("no payload serializer for System.Uri"));

        var good = await publisher.PublishAsync(Key, Payload(1)).AsTask().WaitAsync(Patience, ct);

        Assert.That(good.FirstIndex, Is.EqualTo(1UL));
        Assert.That(leader.Received.Select(PayloadOf), Is.EqualTo(new[] { "entry-1" }), "the leader got only the good publish");
    }

    [Test, CancelAfter(60_000)]
    public async Task Connects_to_the_first_endpoint_that_answers(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader();
        string nobody = $"127.0.0.1:{LocalCluster.FreeLoopbackPorts(1)[0]}";

        await using (var publisher = await PublisherClient.ConnectAsync(Options(nobody, leader.Endpoint), ct))
        {
            Assert.That(publisher.Endpoint, Is.EqualTo(leader.Endpoint));
            Assert.That((await publisher.PublishAsync(Key, "hello").AsTask().WaitAsync(Patience, ct)).FirstIndex, Is.EqualTo(1UL));
        }
        Assert.That(leader.Received.Select(PayloadOf), Is.EqualTo(new[] { "hello" }));
        var none = Assert.ThrowsAsync<PublisherConnectException>(() => PublisherClient.ConnectAsync(Options(nobody), ct))!;
        Assert.That(none.Message, Does.Contain(nobody));
    }

    [Test, CancelAfter(60_000)]
    public async Task An_untyped_publish_allocates_nothing_once_warm(CancellationToken ct)
    {
        await using var leader = new ScriptedLeader();
        await using var publisher = await PublisherClient.ConnectAsync(Options(leader.Endpoint), ct);
        var payload = Payload(0);
        var pending = new ValueTask<PublishResult>[200];
        long allocated = -1;
        // One thread throughout: the pools behind a publish (the transport's frame buffers among them) keep a part
        // per thread, which a thread fills on first use; an await could move the measurement to a fresh thread.
        var thread = new Thread(() =>
        {
            for (int round = 0; round < 3; round++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < pending.Length; i++) pending[i] = publisher.PublishAsync(Key, payload);
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                for (int i = 0; i < pending.Length; i++)
                    if (!pending[i].AsTask().Wait(Patience, ct)) return;
            }
        });
        thread.Start();
        thread.Join();

        Assert.That(leader.ReceivedCount, Is.EqualTo(3 * pending.Length), "every publish acknowledged");
        Assert.That(allocated, Is.Zero, "bytes allocated by the last 200 publish calls");
    }
}
