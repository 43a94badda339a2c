using NUnit.Framework;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.Engines;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Simulation.Learners;

[TestFixture]
public sealed class LearnerFanoutTests
{
    private static readonly LearnerFanoutOptions Small = LearnerFanoutOptions.Default with
    {
        MaxBacklogBytes = 64 << 10,
        MaxDeliverBytes = 4 << 10,
        CatchUpFramesPerTick = 2,
    };

    private static List<ulong> Indexes(FakeLearner learner)
    {
        var list = new List<ulong>(learner.Entries.Count);
        foreach (var e in learner.Entries) list.Add(e.Index);
        return list;
    }

    private static List<ulong> Range(ulong first, ulong last)
    {
        var list = new List<ulong>();
        for (ulong i = first; i <= last; i++) list.Add(i);
        return list;
    }

    [Test]
    public void Subscribe_from_the_middle_catches_up_in_bounded_steps_then_goes_live()
    {
        using var h = new FanoutHarness(Small);
        h.Append(1000, payloadBytes: 200);
        var learner = h.Connect(from: 500);

        // Subscribing sends a first step at once; the rest comes a bounded step per tick.
        Assert.That(learner.Entries, Is.Not.Empty);
        Assert.That(learner.Entries[0].Index, Is.EqualTo(500UL));
        Assert.That(h.Fanout.Status()[0].State, Is.EqualTo(LearnerState.CatchingUp));

        // While the connection's queue is above half the bound, catch-up waits.
        h.Queued[learner.Connection] = Small.MaxBacklogBytes / 2;
        int before = learner.Entries.Count;
        h.Tick(5);
        Assert.That(learner.Entries, Has.Count.EqualTo(before));
        h.Queued[learner.Connection] = 0;

        for (int i = 0; i < 200 && h.Fanout.Status()[0].State == LearnerState.CatchingUp; i++) h.Tick();
        Assert.That(h.Fanout.Status()[0].State, Is.EqualTo(LearnerState.Live));

        h.Append(10, payloadBytes: 200);
        Assert.That(Indexes(learner), Is.EqualTo(Range(500, 1010)));
        Assert.That(learner.ClosedWith, Is.Null);
    }

    [Test]
    public void Thousand_learners_get_identical_streams_from_one_encode_per_append()
    {
        using var h = new FanoutHarness { KeepBuffers = true };
        h.Append(5);
        var learners = new List<FakeLearner>();
        for (int i = 0; i < 1000; i++) learners.Add(h.Connect(from: 6, node: $"learner-{i}"));
        Assert.That(h.Fanout.LearnerCount, Is.EqualTo(1000));

        for (int batch = 0; batch < 10; batch++)
        {
            long encoded = h.Fanout.FramesEncoded;
            h.Append(10, payloadBytes: 100);
            Assert.That(h.Fanout.FramesEncoded - encoded, Is.EqualTo(1), "one encode per append");
            var shared = learners[0].Buffers[^1];
            foreach (var learner in learners)
                Assert.That(learner.Buffers[^1], Is.SameAs(shared), "the same buffer goes to every learner");
        }
        var expected = Range(6, 105);
        foreach (var learner in learners)
        {
            Assert.That(Indexes(learner), Is.EqualTo(expected));
            Assert.That(learner.Entries[^1].Payload, Does.StartWith("p105"));
        }
    }

    [Test]
    public void Internal_entries_reach_no_learner_and_through_covers_them()
    {
        using var h = new FanoutHarness();
        static string KeyOf(ulong i) => i == 4 ? "\0georelay.no-op" : "k/" + i;
        var all = h.Connect(from: 1);
        var filtered = h.Connect(from: 1, prefix: "k/");
        h.Append(6, KeyOf);
        Assert.That(Indexes(all), Is.EqualTo(new ulong[] { 1, 2, 3, 5, 6 }), "the no-op at 4 is the cluster's own");
        Assert.That(Indexes(filtered), Is.EqualTo(Indexes(all)));
        Assert.That(all.Through, Is.EqualTo(6UL));

        // A learner resuming past it, or from it, misses nothing and sees nothing internal.
        var resumed = h.Connect(from: 4);
        h.Tick(2);
        Assert.That(Indexes(resumed), Is.EqualTo(new ulong[] { 5, 6 }));
    }

    [Test]
    public void A_learner_sent_nothing_for_a_second_gets_a_heartbeat_and_a_busy_one_does_not()
    {
        using var h = new FanoutHarness();
        var learner = h.Connect(from: 1);
        // A quiet log: about one heartbeat per second.
        for (int ms = 0; ms <= 3_000; ms += 100)
        {
            h.NowMicros = ms * 1_000L;
            h.Tick();
        }
        Assert.That(learner.Heartbeats, Is.InRange(2, 4));
        // Entries every 100 ms: nothing more is needed.
        int before = learner.Heartbeats;
        for (int ms = 3_100; ms <= 6_000; ms += 100)
        {
            h.NowMicros = ms * 1_000L;
            h.Append(1);
            h.Tick();
        }
        Assert.That(learner.Heartbeats, Is.EqualTo(before));
        Assert.That(learner.Through, Is.EqualTo(30UL));
    }

    [Test]
    public void A_relay_feed_gets_every_entry_internal_ones_too_and_shares_one_frame_with_other_relays()
    {
        using var h = new FanoutHarness { KeepBuffers = true };
        static string KeyOf(ulong i) => i == 4 ? "\0georelay.no-op" : "k/" + i;
        var learner = h.Connect(from: 1);
        var p2 = h.ConnectRelayFeed();
        var p3 = h.ConnectRelayFeed();
        h.Append(6, KeyOf);
        Assert.That(Indexes(p2), Is.EqualTo(new ulong[] { 1, 2, 3, 4, 5, 6 }), "a relay's retention must be the whole log");
        Assert.That(Indexes(learner), Is.EqualTo(new ulong[] { 1, 2, 3, 5, 6 }));
        Assert.That(p3.Buffers[^1], Is.SameAs(p2.Buffers[^1]), "one encoded frame for every relay at the head");
        Assert.That(h.Fanout.Status().Count(s => s.KeyPrefix == "(relay feed)"), Is.EqualTo(2));
    }

    [Test]
    public void Only_a_relay_may_take_a_relay_feed()
    {
        using var h = new FanoutHarness();
        h.Append(3);
        var impostor = h.ConnectRelayFeed(kind: NodeKind.Learner);
        Assert.That(impostor.ClosedWith, Is.EqualTo(CodecError.Protocol));
        Assert.That(impostor.Entries, Is.Empty);
    }

    [Test]
    public void A_relay_feed_level_with_the_head_is_told_so_by_an_empty_deliver_and_one_that_differs_is_told_truncated()
    {
        using var h = new FanoutHarness();
        h.Append(5);
        var level = h.ConnectRelayFeed(lastIndex: 5, lastEpoch: 1);
        Assert.That(level.Entries, Is.Empty);
        Assert.That(level.Through, Is.EqualTo(5UL), "an empty Deliver through 5: what it holds is ours and final");
        var other = h.ConnectRelayFeed(lastIndex: 5, lastEpoch: 2);
        Assert.That(other.Through, Is.Not.EqualTo(5UL));
        Assert.That(h.Fanout.TruncationsSent, Is.EqualTo(1), "its entry 5 is another epoch's");
        h.Append(1);
        Assert.That(Indexes(level), Is.EqualTo(new ulong[] { 6 }));
    }

    [Test]
    public void Prefix_filter_skips_entries_and_through_covers_them_so_resume_has_no_gap()
    {
        using var h = new FanoutHarness { KeepBuffers = true };
        static string KeyOf(ulong i) => i % 3 == 0 ? "a/" + i : "b/" + i;
        var a1 = h.Connect(from: 1, prefix: "a/");
        var a2 = h.Connect(from: 1, prefix: "a/");
        var b = h.Connect(from: 1, prefix: "b/");
        var all = h.Connect(from: 1);

        h.Append(10, KeyOf);
        h.Append(1, KeyOf); // 11: no a/ entry at all
        Assert.That(a1.Buffers[^1], Is.SameAs(a2.Buffers[^1]), "one encode per distinct prefix");
        Assert.That(a1.Buffers[^1], Is.Not.SameAs(all.Buffers[^1]));
        Assert.That(Indexes(a1), Is.EqualTo(new ulong[] { 3, 6, 9 }));
        Assert.That(a1.Through, Is.EqualTo(11UL), "through moves past the skipped entries");
        Assert.That(Indexes(b), Has.Count.EqualTo(8));
        Assert.That(Indexes(all), Is.EqualTo(Range(1, 11)));

        // a1 drops and resumes from through + 1 while more is appended: it misses nothing.
        h.Disconnect(a1);
        h.Append(7, KeyOf); // 12..18
        var resumed = h.Connect(from: a1.Through + 1, prefix: "a/");
        h.Tick(3);
        h.Append(3, KeyOf); // 19..21
        var seen = new List<ulong>(Indexes(a1));
        seen.AddRange(Indexes(resumed));
        Assert.That(seen, Is.EqualTo(new ulong[] { 3, 6, 9, 12, 15, 18, 21 }));
        Assert.That(Indexes(a2), Is.EqualTo(seen));
        foreach (var e in resumed.Entries) Assert.That(e.Key, Does.StartWith("a/"));
    }

    [Test]
    public void An_index_below_retention_gets_SnapshotRequired_and_a_close()
    {
        var log = new MemoryLog();
        log.ResetTo(100);
        using var h = new FanoutHarness(log: log) { NextAfterReset = 100 };
        h.Append(50); // 100..149
        var old = h.Connect(from: 40);
        Assert.That(old.SnapshotOldest, Is.EqualTo(100UL));
        Assert.That(old.ClosedWith, Is.EqualTo(CodecError.SnapshotRequired));
        Assert.That(old.Entries, Is.Empty);

        var fine = h.Connect(from: 100);
        h.Tick();
        Assert.That(Indexes(fine), Is.EqualTo(Range(100, 149)));
    }

    [Test]
    public void After_a_reset_learners_behind_the_new_start_get_SnapshotRequired()
    {
        using var h = new FanoutHarness();
        h.Append(10);
        var live = h.Connect(from: 1);
        h.Tick();
        Assert.That(Indexes(live), Is.EqualTo(Range(1, 10)));

        h.Log.ResetTo(500);
        h.Fanout.OnReset();
        var early = h.Connect(from: 11); // asks while the new start is not known yet: waits
        Assert.That(early.ClosedWith, Is.Null);

        h.NextAfterReset = 500;
        h.Append(5); // 500..504
        h.Tick();
        Assert.That(live.SnapshotOldest, Is.EqualTo(500UL));
        Assert.That(live.ClosedWith, Is.EqualTo(CodecError.SnapshotRequired));
        Assert.That(early.SnapshotOldest, Is.EqualTo(500UL));
        var after = h.Connect(from: 500);
        h.Tick();
        Assert.That(Indexes(after), Is.EqualTo(Range(500, 504)));
    }

    [Test]
    public void A_relay_feed_is_held_to_its_own_bound_not_to_the_learners_backlog()
    {
        using var h = new FanoutHarness(Small with { RelayFeedBacklogBytes = Small.MaxBacklogBytes * 8 });
        var learner = h.Connect(from: 1);
        var feed = h.ConnectRelayFeed();
        learner.Stalled = feed.Stalled = true;
        for (int i = 0; i < 100 && learner.ClosedWith is null; i++)
            h.Append(10, payloadBytes: 200);
        Assert.That(learner.ClosedWith, Is.EqualTo(CodecError.SlowConsumer));
        Assert.That(feed.ClosedWith, Is.Null, "a standby relay is no learner: it may fall a window behind");
        Assert.That(h.QueuedBytes(feed.Connection), Is.GreaterThan(Small.MaxBacklogBytes));
        for (int i = 0; i < 1000 && feed.ClosedWith is null; i++)
            h.Append(10, payloadBytes: 200);
        Assert.That(feed.ClosedWith, Is.EqualTo(CodecError.SlowConsumer), "but not without bound");
        Assert.That(h.QueuedBytes(feed.Connection), Is.LessThanOrEqualTo(Small.MaxBacklogBytes * 8));
    }

    [Test]
    public void A_learner_whose_backlog_stays_above_the_bound_is_cut_while_the_others_continue()
    {
        using var h = new FanoutHarness(Small);
        var fast1 = h.Connect(from: 1);
        var slow = h.Connect(from: 1);
        var fast2 = h.Connect(from: 1);
        slow.Stalled = true;

        for (int i = 0; i < 100 && slow.ClosedWith is null; i++)
            h.Append(10, payloadBytes: 200);

        Assert.That(slow.ClosedWith, Is.EqualTo(CodecError.SlowConsumer));
        Assert.That(h.Fanout.SlowConsumerCuts, Is.EqualTo(1));
        Assert.That(h.QueuedBytes(slow.Connection), Is.LessThanOrEqualTo(Small.MaxBacklogBytes), "the bound is never passed");
        h.Append(10, payloadBytes: 200);
        ulong last = h.Log.LastIndex;
        Assert.That(Indexes(fast1), Is.EqualTo(Range(1, last)));
        Assert.That(Indexes(fast2), Is.EqualTo(Range(1, last)));
        Assert.That(fast1.ClosedWith, Is.Null);

        // It resumes from what it got, on a new connection, and catches up.
        h.Disconnect(slow);
        var again = h.Connect(from: slow.Through + 1);
        h.Tick(50);
        Assert.That(again.Entries[^1].Index, Is.EqualTo(last));
        Assert.That(h.Fanout.LearnerCount, Is.EqualTo(3));
    }

    [Test]
    public void Confirm_is_tracked_apart_from_what_was_sent()
    {
        using var h = new FanoutHarness();
        var learner = h.Connect(from: 1, node: "app-7");
        h.Append(10);
        h.Send(learner, FrameType.Confirm, w => new Confirm(7).Write(w));
        var status = h.Fanout.Status()[0];
        Assert.That(status.NodeId, Is.EqualTo("app-7"));
        Assert.That(status.From, Is.EqualTo(1UL));
        Assert.That(status.ReceivedIndex, Is.EqualTo(10UL));
        Assert.That(status.DeliveredIndex, Is.EqualTo(7UL));

        // A confirm beyond what was sent cannot be true: clamped.
        h.Send(learner, FrameType.Confirm, w => new Confirm(50).Write(w));
        Assert.That(h.Fanout.Status()[0].DeliveredIndex, Is.EqualTo(10UL));
    }

    [Test]
    public void A_second_Subscribe_or_a_foreign_frame_closes_with_Protocol()
    {
        using var h = new FanoutHarness();
        var twice = h.Connect(from: 1);
        h.Send(twice, FrameType.Subscribe, w => new Subscribe(1, default, SubscribeFlags.None).Write(w));
        Assert.That(twice.ClosedWith, Is.EqualTo(CodecError.Protocol));

        var foreign = h.Connect(from: 1);
        h.Send(foreign, FrameType.Ack, w => new Ack(1, 1, 1).Write(w));
        Assert.That(foreign.ClosedWith, Is.EqualTo(CodecError.Protocol));
        Assert.That(h.Fanout.Owns(foreign.Connection), Is.True, "known until the host reports the disconnect");
        h.Disconnect(foreign);
        Assert.That(h.Fanout.Owns(foreign.Connection), Is.False);
    }

    [Test]
    public void Large_appends_are_split_into_frames_every_learner_still_shares()
    {
        using var h = new FanoutHarness(Small) { KeepBuffers = true };
        var x = h.Connect(from: 1);
        var y = h.Connect(from: 1);
        h.Append(100, payloadBytes: 300); // ~30 KiB: several 4 KiB frames
        Assert.That(x.Buffers, Has.Count.GreaterThan(5));
        Assert.That(y.Buffers, Has.Count.EqualTo(x.Buffers.Count));
        for (int i = 0; i < x.Buffers.Count; i++) Assert.That(y.Buffers[i], Is.SameAs(x.Buffers[i]));
        Assert.That(Indexes(x), Is.EqualTo(Range(1, 100)));
        foreach (var b in x.Buffers) Assert.That(b.Length, Is.LessThan(Small.MaxDeliverBytes + 512));
    }
}
