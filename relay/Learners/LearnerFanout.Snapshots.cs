using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Storage;
using GeoRelay.Transport;

namespace GeoRelay.Relay.Learners;

/// <summary>Snapshots of keyed state for learners (<c>compaction: keyed</c>): sent in checksummed chunks, resumable.</summary>
public sealed partial class LearnerFanout
{
    /// <summary>
    /// The node's snapshot of keyed state, or null when it has none (no keyed compaction, or a state that is not
    /// whole since the log was installed from a later start). Taken from the retention log when it is a
    /// <see cref="KeyedLog"/>; a host whose fan-out reads another view of that log sets it.
    /// </summary>
    public Func<KeyedSnapshot?>? KeyedSnapshots { get; init; }

    /// <summary>Snapshots sent to their end since start.</summary>
    public long SnapshotsSent { get; private set; }

    // The snapshots transfers started from lately, so a learner that reconnects mid-transfer resumes the one it had.
    private readonly List<KeyedSnapshot> _servedSnapshots = new();
    private const int ServedSnapshotsKept = 2;

    /// <summary>A learner needs entries below retention: a member may fill them in; else the state replaces them, or it is told.</summary>
    private void BehindRetention(LearnerSession s, ulong oldest)
    {
        if (TryRefill(s)) return;
        // A relay feed must hold the log itself, not a state: it starts over at a snapshot point instead.
        if (!s.IsRelayFeed && TryStartSnapshot(s)) return;
        RequireSnapshot(s, oldest);
    }

    /// <summary>A learner asked for a snapshot: resumes the one it names when still kept here, or starts the newest.</summary>
    private void StartSnapshot(LearnerSession s, ulong resumeThrough, ulong from)
    {
        if (resumeThrough != 0)
        {
            foreach (var kept in _servedSnapshots)
            {
                if (kept.Through != resumeThrough) continue;
                BeginTransfer(s, kept.Entries, kept.Through, kept.StartAfter(from - 1), begins: false);
                return;
            }
        }
        if (!TryStartSnapshot(s))
            RequireSnapshot(s, Math.Max(1, OldestHeld()), KeyedSnapshots is null
                ? $"no snapshot of keyed state here (no compaction: keyed) and the log no longer starts at 1; the oldest is {Math.Max(1, OldestHeld())}"
                : $"this node's keyed state is incomplete (its log was installed past it); another node may have one; the oldest index here is {Math.Max(1, OldestHeld())}");
    }

    /// <summary>Starts sending the node's newest snapshot from its beginning; false when there is none to send.</summary>
    private bool TryStartSnapshot(LearnerSession s)
    {
        bool known = TryOldestHeld(out ulong oldest);
        if (KeyedSnapshots?.Invoke() is { } snapshot && (!known || snapshot.Through + 1 >= oldest))
        {
            if (!_servedSnapshots.Exists(k => ReferenceEquals(k, snapshot)))
            {
                _servedSnapshots.Add(snapshot);
                if (_servedSnapshots.Count > ServedSnapshotsKept) _servedSnapshots.RemoveAt(0);
            }
            BeginTransfer(s, snapshot.Entries, snapshot.Through, 0, begins: true);
            return true;
        }
        // Nothing was ever dropped here: the empty state before index 1 is exact.
        if (known && oldest <= 1)
        {
            BeginTransfer(s, Array.Empty<LogEntry>(), 0, 0, begins: true);
            return true;
        }
        return false;
    }

    private void BeginTransfer(LearnerSession s, IReadOnlyList<LogEntry> entries, ulong through, int position, bool begins)
    {
        LearnerLog.SnapshotStarted(_logger, s.Peer.NodeId, s.Connection, begins ? "sending" : "resuming", through, entries.Count);
        s.Transfer = entries;
        s.TransferThrough = through;
        s.TransferPos = position;
        s.TransferBegins = begins;
        s.CheckIndex = 0; // the state is committed: nothing of the learner's to compare
        MakeCatchingUp(s);
        CatchUp(s, _options.CatchUpBytesPerTick);
    }

    /// <summary>Sends chunks of the learner's snapshot while its queue has room; returns the bytes read. At the end the stream goes on after the snapshot.</summary>
    private long SendSnapshotChunks(LearnerSession s, long budget)
    {
        long read = 0;
        var entries = s.Transfer!;
        for (int step = 0; step < _options.CatchUpFramesPerTick && read < budget; step++)
        {
            if (Backlog(s) >= BacklogLimit(s) / 2) return read;
            var frame = FrameBuffer.Rent();
            var w = frame.Writer;
            int start = FrameWriter.Begin(w);
            int end = SnapshotChunks.Write(w, s.TransferThrough, entries, s.TransferPos, s.TransferBegins, s.Prefix,
                _options.MaxDeliverBytes, _options.MaxDeliverEntries, out long bytes);
            bool last = end >= entries.Count;
            FrameWriter.End(w, start, FrameType.SnapshotChunk);
            read += bytes + 1;
            bool sent = Send(s, frame);
            frame.Release();
            if (!sent) return read;
            LearnerMetrics.SnapshotChunks.Add(1);
            s.TransferPos = end;
            s.TransferBegins = false;
            if (last)
            {
                s.Transfer = null;
                s.Next = s.TransferThrough + 1;
                s.Known = s.TransferThrough;
                SnapshotsSent++;
                LearnerMetrics.SnapshotsSent.Add(1);
                return read;
            }
        }
        return read;
    }
}
