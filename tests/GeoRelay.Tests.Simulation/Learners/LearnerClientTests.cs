using System.Text;
using GeoRelay.Codec;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Learners;

// Inside the namespace: under GeoRelay.*, `LearnerClient` alone would name the namespace GeoRelay.LearnerClient.
using GeoRelay.LearnerClient;
using LearnerClient = GeoRelay.LearnerClient.LearnerClient;

[TestFixture]
public sealed class LearnerClientTests
{
    private static LearnerClientOptions Options(params string[] endpoints) => LearnerClientOptions.Default with
    {
        Endpoints = endpoints,
        NodeId = "test-learner",
        ReconnectInitial = TimeSpan.FromMilliseconds(10),
        ReconnectMax = TimeSpan.FromMilliseconds(100),
        ConnectTimeout = TimeSpan.FromSeconds(2),
        BufferedEntries = 64,
    };

    private static CancellationToken Deadline() => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    private static async Task<List<LearnerEntry>> TakeAsync(LearnerClient learner, ulong from, int count, CancellationToken ct)
    {
        var list = new List<LearnerEntry>(count);
        await foreach (var e in learner.SubscribeAsync(from, ct))
        {
            list.Add(e);
            if (list.Count == count) break;
        }
        return list;
    }

    private static void AssertExactly(List<LearnerEntry> entries, IEnumerable<ulong> expected)
    {
        var indexes = new List<ulong>(entries.Count);
        foreach (var e in entries)
        {
            indexes.Add(e.Index);
            Assert.That(Encoding.UTF8.GetString(e.Payload.Span), Is.EqualTo(ScriptedRelay.Payload(e.Index)));
        }
        Assert.That(indexes, Is.EqualTo(expected));
    }

    private static IEnumerable<ulong> Range(ulong first, ulong last)
    {
        for (ulong i = first; i <= last; i++) yield return i;
    }

    [Test]
    public async Task Every_entry_arrives_exactly_once_in_order_across_forced_disconnects()
    {
        await using var relay = new ScriptedRelay(3000);
        foreach (int n in new[] { 150, -700, 1, -1200, 40, -1 }) relay.DropAfter.Enqueue(n);
        await using var learner = await LearnerClient.ConnectAsync(Options(relay.Endpoint), Deadline());

        var entries = await TakeAsync(learner, 1, 3000, Deadline());

        AssertExactly(entries, Range(1, 3000));
        Assert.That(learner.LastIndex, Is.EqualTo(3000UL));
        var froms = relay.SubscribedFrom.ToArray();
        Assert.That(froms, Has.Length.EqualTo(7), "one resubscription per drop");
        Assert.That(froms[0], Is.EqualTo(1UL));
        Assert.That(froms, Is.Ordered.Ascending);
        Assert.That(entries[0].Timestamp, Is.EqualTo(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000).AddTicks(10)));
    }

    [Test]
    public async Task Entries_taken_back_after_the_application_saw_them_end_the_enumeration_with_LogTruncatedException()
    {
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = new ScriptedRelay(10) { EntriesPerFrame = 5, Truncation = (5, 3, go.Task) };
        await using var learner = await LearnerClient.ConnectAsync(Options(relay.Endpoint), Deadline());

        var seen = new List<LearnerEntry>();
        var thrown = Assert.ThrowsAsync<LogTruncatedException>(async () =>
        {
            await foreach (var e in learner.SubscribeAsync(1, Deadline()))
            {
                seen.Add(e);
                if (e.Index == 5) go.TrySetResult(); // the application has 4 and 5: now the relay takes them back
            }
        });

        Assert.That(seen.Select(e => (e.Index, e.Epoch)), Is.EqualTo(Range(1, 5).Select(i => (i, 1UL))));
        Assert.That((thrown!.TruncatedAfter, thrown.LastDelivered, thrown.ResumeFrom), Is.EqualTo((3UL, 5UL, 4UL)));
        // Subscribing again from ResumeFrom gets the new leader's entries.
        var again = await TakeAsync(learner, thrown.ResumeFrom, 7, Deadline());
        AssertExactly(again, Range(4, 10));
        Assert.That(again.Select(e => e.Epoch), Is.All.EqualTo(2UL));
    }

    [Test]
    public async Task Entries_taken_back_before_the_application_saw_them_are_dropped_without_an_exception()
    {
        await using var relay = new ScriptedRelay(10) { EntriesPerFrame = 5, Truncation = (5, 3, Task.CompletedTask) };
        await using var learner = await LearnerClient.ConnectAsync(Options(relay.Endpoint), Deadline());

        var seen = new List<LearnerEntry>();
        await foreach (var e in learner.SubscribeAsync(1, Deadline()))
        {
            seen.Add(e);
            // Hold the application at entry 1 until 2..5, the truncation and the new 4..10 are all buffered.
            if (e.Index == 1) await GeoRelay.TestUtilities.Poll.UntilAsync(() => learner.BufferedEntries == 12, "everything buffered", Deadline());
            if (e.Index == 10) break;
        }

        Assert.That(seen.Select(e => (e.Index, e.Epoch)),
            Is.EqualTo(Range(1, 3).Select(i => (i, 1UL)).Concat(Range(4, 10).Select(i => (i, 2UL)))));
    }

    [Test]
    public async Task Fails_over_to_the_second_endpoint_when_the_first_refuses()
    {
        await using var refusing = new ScriptedRelay(500) { RefuseHandshakeWith = CodecError.LimitExceeded };
        await using var serving = new ScriptedRelay(500);
        await using var learner = await LearnerClient.ConnectAsync(Options(refusing.Endpoint, serving.Endpoint), Deadline());

        var entries = await TakeAsync(learner, 1, 500, Deadline());

        AssertExactly(entries, Range(1, 500));
        Assert.That(refusing.HandshakeAttempts, Is.GreaterThanOrEqualTo(1));
        Assert.That(serving.SubscribedFrom, Is.EqualTo(new ulong[] { 1 }));
    }

    [TestCase(CodecError.LimitExceeded, "is full: it serves 2 learners")]
    [TestCase(CodecError.Shutdown, "is draining and takes no new learners")]
    public async Task A_refusing_node_s_hint_is_dialed_before_the_next_endpoint_in_order(CodecError code, string why)
    {
        await using var next = new ScriptedRelay(300);
        await using var hinted = new ScriptedRelay(300);
        await using var refusing = new ScriptedRelay(300)
        {
            RefuseHandshakeWith = code,
            RefusalDetail = $"p1 {why}; try p9 at 10.255.255.1:7300 or p3 at {hinted.Endpoint} or p2 at {next.Endpoint}",
        };
        await using var learner = await LearnerClient.ConnectAsync(Options(refusing.Endpoint, next.Endpoint, hinted.Endpoint), Deadline());

        var entries = await TakeAsync(learner, 1, 300, Deadline());

        AssertExactly(entries, Range(1, 300));
        Assert.That(hinted.SubscribedFrom, Is.EqualTo(new ulong[] { 1 }), "p9 is not an endpoint of this client; p3 is, and goes next");
        Assert.That(next.HandshakeAttempts, Is.Zero);
    }

    [Test]
    public async Task After_a_node_closes_the_subscription_naming_another_the_client_resumes_there()
    {
        await using var next = new ScriptedRelay(100);
        await using var named = new ScriptedRelay(100);
        await using var draining = new ScriptedRelay(100) { RefuseSubscribeWith = (CodecError.Shutdown, $"p1 is draining; try p3 at {named.Endpoint}") };
        await using var learner = await LearnerClient.ConnectAsync(Options(draining.Endpoint, next.Endpoint, named.Endpoint), Deadline());

        AssertExactly(await TakeAsync(learner, 1, 100, Deadline()), Range(1, 100));
        Assert.That(named.SubscribedFrom, Is.EqualTo(new ulong[] { 1 }));
        Assert.That(next.HandshakeAttempts, Is.Zero);
    }

    [Test]
    public async Task ConnectAsync_goes_round_again_while_every_endpoint_is_full()
    {
        await using var full = new ScriptedRelay(20) { RefuseHandshakeWith = CodecError.LimitExceeded, RefuseFirstHandshakes = 2 };
        await using var learner = await LearnerClient.ConnectAsync(Options(full.Endpoint), Deadline());

        AssertExactly(await TakeAsync(learner, 1, 20, Deadline()), Range(1, 20));
        Assert.That(full.HandshakeAttempts, Is.EqualTo(3), "refused twice as full, then taken");
    }

    [Test]
    public async Task Local_endpoints_are_tried_before_the_others()
    {
        await using var remote = new ScriptedRelay(10);
        await using var local = new ScriptedRelay(10);
        var options = Options(remote.Endpoint) with { LocalEndpoints = [local.Endpoint] };
        await using var learner = await LearnerClient.ConnectAsync(options, Deadline());

        AssertExactly(await TakeAsync(learner, 1, 10, Deadline()), Range(1, 10));
        Assert.That((local.SubscribedFrom.Count, remote.HandshakeAttempts), Is.EqualTo((1, 0)));
    }

    [Test]
    public async Task A_node_that_heartbeats_and_then_hangs_is_left_for_the_next_endpoint_without_gap_or_duplicate()
    {
        await using var hung = new ScriptedRelay(lastIndex: 50) { HeartbeatsThenHangs = true };
        await using var healthy = new ScriptedRelay(lastIndex: 100);
        var options = LearnerClientOptions.Default with
        {
            Endpoints = [hung.Endpoint, healthy.Endpoint],
            SilenceTimeout = TimeSpan.FromSeconds(2),
            ConnectTimeout = TimeSpan.FromSeconds(2),
            ReconnectInitial = TimeSpan.FromMilliseconds(20),
        };
        await using var client = new LearnerClient(options);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var got = new List<ulong>();
        await foreach (var entry in client.SubscribeAsync(1, timeout.Token))
        {
            got.Add(entry.Index);
            Assert.That(Encoding.UTF8.GetString(entry.Payload.Span), Is.EqualTo(ScriptedRelay.Payload(entry.Index)));
            if (entry.Index == 100) break;
        }
        Assert.That(got, Is.EqualTo(Enumerable.Range(1, 100).Select(i => (ulong)i)), "1..50 from the node that hung, 51..100 from the next");
        Assert.That(healthy.SubscribedFrom, Does.Contain(51UL));
    }

    [Test]
    public void A_silence_timeout_shorter_than_two_heartbeats_is_refused()
    {
        var options = LearnerClientOptions.Default with { Endpoints = ["127.0.0.1:1"], SilenceTimeout = TimeSpan.FromSeconds(1) };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.That(e!.ParamName, Is.EqualTo(nameof(LearnerClientOptions.SilenceTimeout)));
    }

    [Test]
    public async Task Resumes_on_the_other_relay_without_gap_or_duplicate_when_its_relay_dies()
    {
        await using var dying = new ScriptedRelay(2000) { DieOnDrop = true };
        dying.DropAfter.Enqueue(333);
        await using var other = new ScriptedRelay(2000);
        await using var learner = await LearnerClient.ConnectAsync(Options(dying.Endpoint, other.Endpoint), Deadline());

        var entries = await TakeAsync(learner, 1, 2000, Deadline());

        AssertExactly(entries, Range(1, 2000));
        Assert.That(other.SubscribedFrom.TryPeek(out ulong resumedAt), Is.True);
        Assert.That(resumedAt, Is.GreaterThan(1UL).And.LessThanOrEqualTo(337UL), "resumes after what the dead relay delivered");
    }

    [Test]
    public async Task Ends_with_SnapshotRequired_when_no_endpoint_holds_the_index()
    {
        await using var a = new ScriptedRelay(1000) { FirstRetained = 100 };
        await using var b = new ScriptedRelay(1000) { FirstRetained = 50 };
        await using var learner = await LearnerClient.ConnectAsync(Options(a.Endpoint, b.Endpoint), Deadline());

        var error = Assert.ThrowsAsync<SnapshotRequiredException>(() => TakeAsync(learner, 10, 1, Deadline()));

        Assert.That(error!.RequestedIndex, Is.EqualTo(10UL));
        Assert.That(error.OldestAvailableIndex, Is.EqualTo(50UL), "the best any endpoint offers");
    }

    [Test]
    public async Task Tries_the_other_endpoint_before_giving_up_on_an_old_index()
    {
        await using var trimmed = new ScriptedRelay(300) { FirstRetained = 100 };
        await using var full = new ScriptedRelay(300);
        await using var learner = await LearnerClient.ConnectAsync(Options(trimmed.Endpoint, full.Endpoint), Deadline());

        var entries = await TakeAsync(learner, 10, 291, Deadline());

        AssertExactly(entries, Range(10, 300));
        Assert.That(full.SubscribedFrom, Is.EqualTo(new ulong[] { 10 }));
    }

    [Test]
    public async Task A_filtered_stream_resumes_after_what_the_relay_covered()
    {
        static string KeyOf(ulong i) => i % 3 == 0 ? "a/" + i : "b/" + i;
        await using var relay = new ScriptedRelay(3000, KeyOf) { EntriesPerFrame = 5 };
        foreach (int n in new[] { 50, 200, 5, 400 }) relay.DropAfter.Enqueue(n);
        var options = Options(relay.Endpoint) with { KeyPrefix = "a/" };
        await using var learner = await LearnerClient.ConnectAsync(options, Deadline());

        var entries = await TakeAsync(learner, 1, 1000, Deadline());

        AssertExactly(entries, Range(1, 1000).Select(i => i * 3));
        foreach (var e in entries) Assert.That(Encoding.UTF8.GetString(e.Key.Span), Does.StartWith("a/"));
        var froms = relay.SubscribedFrom.ToArray();
        Assert.That(froms, Has.Length.EqualTo(5));
        // Resume points land on the next matching entry (through + 1), not just after the last one received.
        for (int i = 1; i < froms.Length; i++) Assert.That(froms[i] % 3, Is.Zero, $"resume {i} at {froms[i]}");
    }

    [Test]
    public async Task Confirm_reaches_the_relay()
    {
        await using var relay = new ScriptedRelay(100);
        await using var learner = await LearnerClient.ConnectAsync(Options(relay.Endpoint) with { ConfirmInterval = TimeSpan.FromMilliseconds(5) }, Deadline());
        var ct = Deadline();
        await foreach (var e in learner.SubscribeAsync(1, ct))
        {
            if (e.Index == 40)
            {
                learner.Confirm(39);
                learner.Confirm(40);
                // Still subscribed: the coalesced confirm goes out after ConfirmInterval.
                Assert.That(await relay.ConfirmSeen.Task.WaitAsync(ct), Is.EqualTo(40UL));
                break;
            }
        }
    }

    [Test]
    public void ConnectAsync_fails_fast_when_no_endpoint_answers()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop(); // nothing listens there now

        Assert.ThrowsAsync<LearnerConnectException>(() => LearnerClient.ConnectAsync(Options($"127.0.0.1:{port}"), Deadline()));
    }

    [Test]
    public async Task A_refused_token_ends_ConnectAsync_at_the_first_endpoint_that_refuses_it()
    {
        await using var refusing = new ScriptedRelay(10) { RefuseHandshakeWith = CodecError.Unauthorized };
        await using var serving = new ScriptedRelay(10);

        var refused = Assert.ThrowsAsync<ClientRefusedException>(() => LearnerClient.ConnectAsync(Options(refusing.Endpoint, serving.Endpoint), Deadline()))!;

        Assert.That((refused.Endpoint, refused.Code, refused.Detail), Is.EqualTo((refusing.Endpoint, CodecError.Unauthorized, "scripted refusal")));
        Assert.That(refused.Message, Is.EqualTo($"{refusing.Endpoint} refused the token: scripted refusal"));
        Assert.That(serving.HandshakeAttempts, Is.Zero, "every node checks tokens with the same keys: the others are not asked");
    }

    [Test]
    public async Task A_subscription_whose_token_is_refused_ends_instead_of_reconnecting()
    {
        const string why = "the token for 'app' does not allow key prefix ''; subscribe with one of its prefixes";
        await using var relay = new ScriptedRelay(10) { RefuseSubscribeWith = (CodecError.Unauthorized, why) };
        // Built as dependency injection builds it: it connects, and would reconnect, inside the subscription.
        await using var learner = new LearnerClient(Options(relay.Endpoint));

        var refused = Assert.ThrowsAsync<ClientRefusedException>(() => TakeAsync(learner, 1, 1, Deadline()))!;

        Assert.That((refused.Endpoint, refused.Code, refused.Detail), Is.EqualTo((relay.Endpoint, CodecError.Unauthorized, why)));
        Assert.That(relay.SubscribedFrom, Has.Count.EqualTo(1), "no second subscription with the same token");
    }

    [Test]
    public async Task A_protocol_refusal_ends_the_subscription_only_when_every_endpoint_refuses()
    {
        await using var old = new ScriptedRelay(10) { RefuseHandshakeWith = CodecError.VersionMismatch };
        await using var older = new ScriptedRelay(10) { RefuseHandshakeWith = CodecError.VersionMismatch };
        await using var current = new ScriptedRelay(10);

        // During a rolling upgrade one endpoint may speak another version and the next ours.
        await using (var learner = new LearnerClient(Options(old.Endpoint, current.Endpoint)))
            AssertExactly(await TakeAsync(learner, 1, 10, Deadline()), Range(1, 10));

        await using var stranded = new LearnerClient(Options(old.Endpoint, older.Endpoint));
        var refused = Assert.ThrowsAsync<ClientRefusedException>(() => TakeAsync(stranded, 1, 1, Deadline()))!;
        Assert.That((refused.Endpoint, refused.Code), Is.EqualTo((old.Endpoint, CodecError.VersionMismatch)));
        Assert.That(refused.Message, Is.EqualTo($"{old.Endpoint} refused this client (VersionMismatch): scripted refusal"));
    }

    [Test]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new LearnerClient(LearnerClientOptions.Default));
        Assert.Throws<ArgumentException>(() => new LearnerClient(Options("no-port")));
        Assert.DoesNotThrow(() => new LearnerClient(Options("relay-eu-1:7400", "[::1]:7400", "10.0.0.1:7400")).Dispose());
    }
}
