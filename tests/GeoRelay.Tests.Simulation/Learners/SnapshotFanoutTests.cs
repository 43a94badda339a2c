using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.TestUtilities;
using NUnit.Framework;

namespace GeoRelay.Tests.Simulation.Learners;

/// <summary>
/// Snapshots of keyed state from the learner fan-out (<c>compaction: keyed</c>): a learner that asks for one, or for an
/// index retention dropped, gets each live key's latest entry at its own index, then the stream right after, gap-free;
/// a transfer cut midway resumes where it stopped.
/// </summary>
[TestFixture]
public sealed class SnapshotFanoutTests
{
    private static readonly SegmentLogOptions SmallSegments = SegmentLogOptions.Default with
    {
        SegmentBytes = 2048, RetentionMaxBytes = 8192, RetentionMaxAge = TimeSpan.MaxValue, CacheBytes = 4096,
    };

    // Small frames, so a snapshot of a few dozen keys takes many chunks.
    private static readonly LearnerFanoutOptions SmallFrames = LearnerFanoutOptions.Default with { MaxDeliverBytes = 512, MaxBacklogBytes = 1 << 20 };

    private sealed class KeyedCluster : IDisposable
    {
        public readonly MemoryLog Log = new(SmallSegments);
        public readonly KeyedLog Keyed;
        public readonly FanoutHarness Harness;
        /// <summary>Every entry appended, with whether it was a tombstone: the reference for the state at any index.</summary>
        public readonly List<(ulong Index, string Key, string Payload, bool Tombstone)> Written = new();
        private readonly Random _random = new(7);

        public KeyedCluster(LearnerFanoutOptions? options = null)
        {
            Keyed = KeyedLog.Open(Log, null, new KeyedCompactionOptions { Background = false });
            Harness = new FanoutHarness(options ?? SmallFrames, Log, Keyed.Snapshot);
        }

        /// <summary>Appends keyed writes over <paramref name="keys"/> keys (a tenth are tombstones), folds them and applies retention.</summary>
        public void Write(int count, int keys = 40)
        {
            ulong first = Log.LastIndex + 1;
            for (ulong i = first; i < first + (ulong)count; i++)
            {
                string key = $"k{_random.Next(keys):D3}";
                bool tombstone = _random.Next(10) == 0;
                string payload = tombstone ? "" : $"v{i}".PadRight(40, '.');
                Log.Append(new LogEntry(i, 1, 1_700_000_000_000_000 + (long)i, Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(payload),
                    tombstone ? EntryFlags.Tombstone : EntryFlags.None));
                Written.Add((i, key, payload, tombstone));
            }
            Log.Flush();
            Harness.Fanout.OnAppended(first, Log.LastIndex);
            Harness.Run();
            Keyed.ApplyRetention(DateTimeOffset.UtcNow, keepFrom: Log.LastIndex + 1);
        }

        /// <summary>Each live key's latest write at or below <paramref name="through"/>, in index order.</summary>
        public List<(ulong Index, string Key, string Payload)> StateAt(ulong through)
        {
            var latest = new Dictionary<string, (ulong Index, string Payload, bool Tombstone)>();
            foreach (var w in Written)
                if (w.Index <= through) latest[w.Key] = (w.Index, w.Payload, w.Tombstone);
            return latest.Where(kv => !kv.Value.Tombstone).Select(kv => (kv.Value.Index, kv.Key, kv.Value.Payload)).OrderBy(e => e.Index).ToList();
        }

        public void Dispose() => Harness.Dispose();
    }

    [Test]
    public void A_learner_below_retention_gets_the_live_keys_latest_entries_then_the_stream_gap_free()
    {
        using var c = new KeyedCluster();
        c.Write(600);
        Assert.That(c.Log.FirstIndex, Is.GreaterThan(1UL), "retention dropped the start");

        var learner = c.Harness.Connect(1);
        c.Harness.Tick(200);
        Assert.That(learner.SnapshotOldest, Is.Null, "no SnapshotRequired where a snapshot exists");
        Assert.That(learner.SnapshotEnded, Is.True);
        Assert.That(learner.SnapshotBegins, Is.EqualTo(1));
        Assert.That(learner.SnapshotChunks, Is.GreaterThan(2), "the snapshot travelled in several chunks");
        Assert.That(learner.SnapshotEntries, Is.EqualTo(c.StateAt(learner.SnapshotThrough)), "exactly the live keys' latest entries, at their indexes");
        Assert.That(learner.SnapshotThrough + 1, Is.GreaterThanOrEqualTo(c.Log.FirstIndex), "the stream can go on from the snapshot");

        c.Write(50);
        c.Harness.Tick(50);
        var expected = c.Written.Where(w => w.Index > learner.SnapshotThrough).Select(w => w.Index).ToList();
        Assert.That(learner.Entries.Select(e => e.Index), Is.EqualTo(expected), "then every entry after the snapshot, once, in order");
    }

    [Test]
    public void A_snapshot_transfer_cut_midway_resumes_where_it_stopped_without_beginning_again()
    {
        using var c = new KeyedCluster(SmallFrames with { CatchUpFramesPerTick = 1 });
        c.Write(600);
        var first = c.Harness.ConnectForSnapshot();
        c.Harness.Tick(2);
        Assert.That(first.SnapshotEnded, Is.False, "cut before the end");
        Assert.That(first.SnapshotEntries, Is.Not.Empty);
        ulong through = first.SnapshotThrough;
        var got = first.SnapshotEntries.ToList();
        c.Harness.Disconnect(first);

        var again = c.Harness.ConnectForSnapshot(resumeThrough: through, from: got[^1].Index + 1);
        c.Harness.Tick(200);
        Assert.That(again.SnapshotBegins, Is.Zero, "the same snapshot goes on: no new beginning");
        Assert.That(again.SnapshotEnded, Is.True);
        Assert.That(got.Concat(again.SnapshotEntries), Is.EqualTo(c.StateAt(through)), "the two parts are the whole snapshot, each entry once");
    }

    [Test]
    public void A_snapshot_no_longer_kept_starts_over_with_a_beginning()
    {
        using var c = new KeyedCluster();
        c.Write(300);
        var learner = c.Harness.ConnectForSnapshot(resumeThrough: 5, from: 3);
        c.Harness.Tick(200);
        Assert.That(learner.SnapshotBegins, Is.EqualTo(1), "an unknown snapshot is not resumed: the newest begins");
        Assert.That(learner.SnapshotEntries, Is.EqualTo(c.StateAt(learner.SnapshotThrough)));
    }

    [Test]
    public void A_prefix_learner_gets_only_its_keys_in_the_snapshot()
    {
        using var c = new KeyedCluster();
        c.Write(600);
        var learner = c.Harness.ConnectForSnapshot(prefix: "k00");
        c.Harness.Tick(200);
        Assert.That(learner.SnapshotEnded, Is.True);
        Assert.That(learner.SnapshotEntries, Is.EqualTo(c.StateAt(learner.SnapshotThrough).Where(e => e.Key.StartsWith("k00", StringComparison.Ordinal)).ToList()));
        Assert.That(learner.SnapshotEntries, Is.Not.Empty);
    }

    [Test]
    public void Without_keyed_state_a_log_that_dropped_nothing_gives_an_empty_snapshot_and_one_that_did_SnapshotRequired()
    {
        using var whole = new FanoutHarness(SmallFrames);
        whole.Append(10, i => $"k{i % 3}");
        var learner = whole.ConnectForSnapshot();
        whole.Tick(10);
        Assert.That((learner.SnapshotEnded, learner.SnapshotThrough, learner.SnapshotEntries.Count), Is.EqualTo((true, 0UL, 0)),
            "nothing was dropped: the empty state before index 1 is exact");
        Assert.That(learner.Entries.Select(e => e.Index), Is.EqualTo(Enumerable.Range(1, 10).Select(i => (ulong)i)));

        using var trimmed = new FanoutHarness(SmallFrames, new MemoryLog(SmallSegments));
        trimmed.Append(600, i => $"k{i % 3}", payloadBytes: 40);
        trimmed.Log.ApplyRetention(DateTimeOffset.UtcNow);
        Assert.That(trimmed.Log.FirstIndex, Is.GreaterThan(1UL));
        var late = trimmed.ConnectForSnapshot();
        trimmed.Tick(10);
        Assert.That(late.SnapshotOldest, Is.EqualTo(trimmed.Log.FirstIndex), "no snapshot here: told where the log starts");
        Assert.That(late.ClosedWith, Is.EqualTo(CodecError.SnapshotRequired));
    }
}
