using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;
using GeoRelay.Storage;
using GeoRelay.Transport;
using GeoRelay.Engines;

namespace GeoRelay.Leader;

public sealed partial class LeaderEngine
{
    private readonly PooledBufferWriter _scratch = new(64 * 1024);
    private readonly PooledBufferWriter _batch = new(256 * 1024);
    private ulong[] _skips = new ulong[16];
    private readonly List<LogEntry> _readEntries = new();
    private readonly List<int> _slots = new();
    private StructuredPacket[] _packets = new StructuredPacket[16];
    private readonly EntryTable _table = new();
    private readonly EntryTable _unsharedTable = new();

    /// <summary>
    /// Encoded entry records for a run of indexes, with each record's offset, so recipients' ranges
    /// are slices of one buffer. Built at most once per tick for the common starting index.
    /// </summary>
    private sealed class EntryTable
    {
        public readonly PooledBufferWriter Bytes = new(256 * 1024);
        public int[] Offsets = new int[1024];
        public ulong First;
        public int Count;
        public long BuiltAtTick = -1;
        public ulong Last => First + (ulong)Count - 1;

        public void Reset(ulong first)
        {
            Bytes.Clear();
            First = first;
            Count = 0;
            Offsets[0] = 0;
        }

        public void Add(in LogEntry e)
        {
            EntryRecord.Write(Bytes, 0, e.Epoch, e.TimestampMicros, e.Key.Span, e.Payload.Span, e.IsTombstone);
            if (Count + 2 > Offsets.Length) Array.Resize(ref Offsets, Offsets.Length * 2);
            Offsets[++Count] = Bytes.WrittenCount;
        }

        public int Position(ulong index) => (int)(index - First);
        public ReadOnlySpan<int> OffsetSpan => Offsets.AsSpan(0, Count + 1);
        public int Size(int from, int toExclusive) => Offsets[toExclusive] - Offsets[from];
    }

    private long _tick;

    /// <summary>The table of entries from <paramref name="from"/> up to the sendable index, within the batch budget.</summary>
    private EntryTable Table(ulong from)
    {
        if (_table.BuiltAtTick == _tick && _table.First == from) return _table;
        _table.Reset(from);
        _table.BuiltAtTick = _tick;
        ulong durable = SendableIndex;
        long budget = _topology.Defaults.BatchMaxBytes;
        ulong next = from;
        while (next <= durable && _table.Bytes.WrittenCount < budget)
        {
            _readEntries.Clear();
            int n = _log.Read(next, (int)Math.Min(4096, durable - next + 1), budget - _table.Bytes.WrittenCount, _readEntries);
            if (n == 0) break;
            foreach (var e in _readEntries)
            {
                if (e.Index > durable) break;
                _table.Add(e);
                next = e.Index + 1;
            }
        }
        _readEntries.Clear();
        return _table;
    }

    /// <summary>Sends each datacenter its batch; with a <paramref name="now"/>, only those whose last batch is one linger old.</summary>
    private void SendBatches(long now)
    {
        _tick++;
        if (Deposed) return;
        for (int d = 0; d < _datacenters.Length; d++)
        {
            var dc = _datacenters[d];
            if (dc.InflightBytes >= _topology.Defaults.Window && !MissedByAReachableMember(dc)) continue;
            if (now - _lingerMicros < _lastBatchMicros[d]) continue;
            long batches = dc.Batches;
            if (!dc.IsDirect)
            {
                if (dc.RelayConnection >= 0 && dc.RelaySynced) SendRelayBatch(dc);
            }
            else
            {
                foreach (var member in dc.Members)
                    if (member.DirectConnection >= 0 && member.Reachable) SendDirect(dc, member);
            }
            if (dc.Batches != batches) _lastBatchMicros[d] = _env.NowMicros;
        }
    }

    /// <summary>
    /// True when a reachable member was not sent the oldest batch in flight (it became reachable, or was
    /// resynced, after it went out): the window waits for that member's acks, which only a catch-up batch
    /// can bring, so the full window must not hold that batch back. The catch-up ends once the member is
    /// past the oldest batch, so the window overshoots by at most what it already holds.
    /// </summary>
    private static bool MissedByAReachableMember(DatacenterState dc)
    {
        if (!dc.Inflight.TryPeek(out var oldest)) return false;
        foreach (var m in dc.Members)
            if (m.Reachable && m.SentThrough < oldest.Through) return true;
        return false;
    }

    /// <summary>
    /// One mux batch for the datacenter: packet 0 feeds the relay's retention and learners, packet
    /// 1+i is member i's Append; entry ranges several packets share are stored once.
    /// </summary>
    private void SendRelayBatch(DatacenterState dc)
    {
        ulong durable = SendableIndex;
        ulong oldest = Math.Max(1, _log.FirstIndex);
        var link = _links[dc.RelayConnection];
        if (!SendLogStartIfBehind(link, oldest, ref dc.RetainedSentThrough, 0, dc.CurrentRelayId!)) return;
        ulong minFrom = Math.Max(dc.RetainedSentThrough + 1, oldest);
        bool anyBehind = dc.RetainedSentThrough < durable;
        _slots.Clear();
        foreach (var m in dc.Members)
        {
            if (!m.Reachable || !SendLogStartIfBehind(link, oldest, ref m.SentThrough, m.Slot + 1, m.Id)) continue;
            _slots.Add(m.Slot);
            ulong from = Math.Max(m.SentThrough + 1, oldest);
            minFrom = Math.Min(minFrom, from);
            anyBehind |= m.SentThrough < durable;
        }
        bool commitNews = link.Channel.TxDelta.Commit != _commitIndex;
        ReadOnlySpan<ulong> progress = default;
        ulong reach = 0;
        if (TakesProgress(link)) progress = VoterProgress(dc, out reach);
        bool progressNews = reach > link.ProgressReachTold && reach > _commitIndex;
        if (!anyBehind && !commitNews && !progressNews) return;

        var table = Table(minFrom);
        ulong tableEnd = table.Count > 0 ? table.Last : minFrom - 1;
        int k = _slots.Count + 1;
        if (_packets.Length < k) _packets = new StructuredPacket[Math.Max(k, _packets.Length * 2)];

        // Packets carry records only; each one's range is a skip into the table (the relay rebuilds the headers).
        if (_skips.Length < k) _skips = new ulong[Math.Max(k, _skips.Length * 2)];
        Span<int> froms = k <= 256 ? stackalloc int[k] : new int[k];
        Span<int> tos = k <= 256 ? stackalloc int[k] : new int[k];
        ulong retainedFrom = Math.Max(dc.RetainedSentThrough + 1, oldest);
        (froms[0], tos[0]) = Range(table, retainedFrom, tableEnd);
        _skips[0] = retainedFrom - minFrom;
        for (int i = 0; i < _slots.Count; i++)
        {
            var m = dc.Members[_slots[i]];
            ulong from = Math.Max(m.SentThrough + 1, oldest);
            (froms[i + 1], tos[i + 1]) = Range(table, from, tableEnd);
            _skips[i + 1] = from - minFrom;
        }

        ReadOnlySpan<byte> entryBytes = table.Bytes.WrittenSpan;
        ReadOnlySpan<int> offsets = table.OffsetSpan;
        if (_options.UseMux)
        {
            for (int i = 0; i < k; i++)
                _packets[i] = new StructuredPacket(ReadOnlyMemory<byte>.Empty, froms[i], tos[i]);
        }
        else
        {
            // No sharing: every packet gets its own copy of its range.
            _unsharedTable.Reset(1);
            var bytes = _unsharedTable.Bytes;
            int pos = 0;
            for (int i = 0; i < k; i++)
            {
                int start = pos;
                for (int e = froms[i]; e < tos[i]; e++)
                {
                    bytes.Write(entryBytes[offsets[e]..offsets[e + 1]]);
                    if (pos + 2 > _unsharedTable.Offsets.Length) Array.Resize(ref _unsharedTable.Offsets, _unsharedTable.Offsets.Length * 2);
                    _unsharedTable.Offsets[++pos] = bytes.WrittenCount;
                }
                _packets[i] = new StructuredPacket(ReadOnlyMemory<byte>.Empty, start, pos);
            }
            _unsharedTable.Count = pos;
            entryBytes = bytes.WrittenSpan;
            offsets = _unsharedTable.OffsetSpan;
        }

        _batch.Clear();
        BatchFrame.WriteHeader(_batch, ref link.Channel.TxDelta, Epoch, _commitIndex, ++_batchSeq, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_slots),
            minFrom, (ulong)table.Count, _skips.AsSpan(0, k), progress);
        link.ProgressReachTold = Math.Max(link.ProgressReachTold, reach);
        StructuredMuxEncoder.Encode(_batch, _packets.AsSpan(0, k), entryBytes, offsets);
        var frame = link.Channel.Frame(FrameType.Batch, _batch.WrittenSpan);

        // Commit to what was sent; the ack-progress clock starts when the relay has something to ack.
        if (tos[0] > froms[0])
        {
            if (dc.RetainedAcked >= dc.RetainedSentThrough) dc.LastAckProgressMicros = _env.NowMicros;
            dc.RetainedSentThrough = tableEnd;
        }
        for (int i = 0; i < _slots.Count; i++)
            if (tos[i + 1] > froms[i + 1]) dc.Members[_slots[i]].SentThrough = tableEnd;
        Account(dc, link, frame, _batch.WrittenCount, tableEnd, table.Size(froms[0], tos[0]));
        Outbox.Add(EngineCommand.Send(dc.RelayConnection, frame));
    }

    /// <summary>
    /// Whether a follower (a member, or a relay's retention) known to match this log through <paramref name="sentThrough"/>
    /// may be sent entries now. Entries go out only from where it matches: one sent from this log's start on top of a log
    /// that ends just below it in a deposed leader's entry would break log matching. So a follower behind the start first
    /// gets the start (InstallSnapshot): it drops a log that cannot continue into ours, and takes ours from there.
    /// A voter's log start is always committed: retention (a leader's or a member's) drops only segments below the commit
    /// index it knows, and an install starts a log at a start that was committed. So the start is sent as committed even
    /// when this leader's own commit index has not reached it yet (a new leader learns it only through a quorum, which may
    /// need these very followers). Peers of builds without the frame are sent from the start, as before.
    /// </summary>
    private bool SendLogStartIfBehind(Link link, ulong start, ref ulong sentThrough, int target, string follower)
    {
        if (sentThrough + 1 >= start || (link.Channel.Peer.Capabilities & Capabilities.SnapshotInstall) == 0) return true;
        if (!_log.TryGet(start, out var entry)) return false;
        _scratch.Clear();
        new InstallSnapshot(target, Epoch, Math.Max(_commitIndex, start), start, entry.Epoch).Write(_scratch);
        Outbox.Add(EngineCommand.Send(link.Channel.Connection, link.Channel.Frame(FrameType.InstallSnapshot, _scratch.WrittenSpan, compress: false)));
        sentThrough = start - 1;
        SnapshotsSent++;
        LeaderLog.SnapshotSent(_logger, follower, start);
        return true;
    }

    /// <summary>How many InstallSnapshot frames were sent (members found behind this log's start).</summary>
    public long SnapshotsSent { get; private set; }

    /// <summary>Table positions of [from, tableEnd]; empty when from is past the table.</summary>
    private static (int From, int To) Range(EntryTable table, ulong from, ulong tableEnd)
    {
        if (table.Count == 0 || from > tableEnd) return (table.Count, table.Count);
        return (table.Position(from), table.Count);
    }

    /// <summary>Direct mode: one Append per member over its own connection and zstd stream.</summary>
    private void SendDirect(DatacenterState dc, MemberState member)
    {
        var link = _links[member.DirectConnection];
        ulong durable = SendableIndex;
        bool commitNews = link.Channel.TxDelta.Commit != _commitIndex;
        if (member.SentThrough >= durable && !commitNews) return;
        ulong oldest = Math.Max(1, _log.FirstIndex);
        if (!SendLogStartIfBehind(link, oldest, ref member.SentThrough, 0, member.Id)) return;
        ulong from = Math.Max(member.SentThrough + 1, oldest);
        var table = Table(from);
        var (f, t) = Range(table, from, table.Count > 0 ? table.Last : from - 1);
        _batch.Clear();
        AppendFrame.WriteHeader(_batch, ref link.Channel.TxDelta, Epoch, _commitIndex, from, (ulong)(t - f));
        _batch.Write(table.Bytes.WrittenSpan[table.Offsets[f]..table.Offsets[t]]);
        var frame = link.Channel.Frame(FrameType.Append, _batch.WrittenSpan);
        if (t > f) member.SentThrough = table.Last;
        Account(dc, link, frame, _batch.WrittenCount, t > f ? table.Last : member.SentThrough, table.Size(f, t));
        Outbox.Add(EngineCommand.Send(member.DirectConnection, frame));
    }

    /// <summary>
    /// Counts a sent frame. The window holds its payload as it was before compression: a relay forwards
    /// each member its packet uncompressed (or recompressed inside the DC), so what it may have to queue
    /// per member is bounded by the uncompressed bytes in flight, whatever the data's compression ratio.
    /// </summary>
    private void Account(DatacenterState dc, Link link, FrameBuffer frame, int uncompressedBytes, ulong through, long entryBytes)
    {
        dc.BytesSent += frame.Length;
        dc.EntryBytesSent += entryBytes;
        dc.Batches++;
        dc.Inflight.Enqueue((through, uncompressedBytes));
        dc.InflightBytes += uncompressedBytes;
        link.Channel.LastSentMicros = _env.NowMicros;
    }
}
