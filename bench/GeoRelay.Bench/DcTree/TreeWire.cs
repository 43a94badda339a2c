using GeoRelay.Bench.Codec;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;
using GeoRelay.Engines;

namespace GeoRelay.Bench.DcTree;

/// <summary>One Deliver frame of a relay's stream: the entries it carries and its size on the wire.</summary>
internal readonly record struct DeliverChunk(ulong First, ulong Last, int Bytes);

/// <summary>
/// Frame sizes from the real codec: every frame the model sends is encoded (and the leader's compressed) as the
/// engines do it, so bytes are measured, not estimated. Entry <c>i</c> of the run is record <c>i - 1</c> of the log.
/// </summary>
internal sealed class TreeWire : IDisposable
{
    private readonly EntryLog _log;
    private readonly int _maxDeliverBytes;
    private readonly int _maxDeliverEntries;
    private readonly PooledBufferWriter _payload = new(256 * 1024);
    private readonly PooledBufferWriter _frame = new(256 * 1024);
    private readonly Dictionary<(ulong, ulong), DeliverChunk[]> _deliver = new();
    private readonly List<DeliverChunk> _chunks = new();
    private StructuredPacket[] _packets = [];
    private int[] _slots = [];
    private ulong[] _skips = [];
    // One sequence for the whole leader, as LeaderEngine numbers its batches.
    private ulong _batchSeq;

    public TreeWire(EntryLog log, int maxDeliverBytes, int maxDeliverEntries)
    {
        _log = log;
        _maxDeliverBytes = maxDeliverBytes;
        _maxDeliverEntries = maxDeliverEntries;
    }

    public int RecordBytes(ulong first, ulong last) => _log.Offsets[(int)last] - _log.Offsets[(int)first - 1];

    /// <summary>
    /// The leader's Batch frame for one datacenter through its connection's channel (delta state, zstd stream):
    /// retention and every member take the same range, so the mux stores it once, as SendRelayBatch builds it.
    /// </summary>
    public int LeaderBatch(PeerChannel channel, ulong first, ulong last, ulong commit, int members)
    {
        int k = members + 1;
        if (_packets.Length != k)
        {
            _packets = new StructuredPacket[k];
            _slots = Enumerable.Range(0, members).ToArray();
            _skips = new ulong[k];
        }
        for (int p = 0; p < k; p++)
            _packets[p] = new StructuredPacket(ReadOnlyMemory<byte>.Empty, (int)first - 1, (int)last);
        _payload.Clear();
        BatchFrame.WriteHeader(_payload, ref channel.TxDelta, EntryLog.Epoch, commit, ++_batchSeq, _slots, first, last - first + 1, _skips);
        StructuredMuxEncoder.Encode(_payload, _packets, _log.Bytes, _log.Offsets);
        return Send(channel, FrameType.Batch);
    }

    /// <summary>A relay's Append to one member: the header rebuilt from the batch, then the member's records (RelayEngine.OnBatch).</summary>
    public int MemberAppend(PeerChannel channel, ulong first, ulong last, ulong commit)
    {
        _payload.Clear();
        AppendFrame.WriteFullHeader(_payload, EntryLog.Epoch, commit, first, last - first + 1);
        _payload.Write(_log.Range((int)first - 1, (int)last));
        return Send(channel, FrameType.Append);
    }

    /// <summary>
    /// The Deliver frames a relay sends for <c>[first, last]</c>, cut where LearnerFanout.PlanChunk cuts them; one
    /// encoding serves every receiver of the same range (learners and child relays alike, uncompressed).
    /// </summary>
    public DeliverChunk[] Deliver(ulong first, ulong last)
    {
        if (_deliver.TryGetValue((first, last), out var known)) return known;
        _chunks.Clear();
        ulong start = first;
        while (start <= last)
        {
            ulong end = start;
            long bytes = RecordBytes(start, start);
            while (end < last && end - start + 1 < (ulong)_maxDeliverEntries && bytes + RecordBytes(end + 1, end + 1) <= _maxDeliverBytes)
                bytes += RecordBytes(++end, end);
            _frame.Clear();
            int at = FrameWriter.Begin(_frame);
            DeliverFrame.WriteHeader(_frame, start, end - start + 1, end);
            _frame.Write(_log.Range((int)start - 1, (int)end));
            FrameWriter.End(_frame, at, FrameType.Deliver);
            _chunks.Add(new DeliverChunk(start, end, _frame.WrittenCount));
            start = end + 1;
        }
        var chunks = _chunks.ToArray();
        _deliver[(first, last)] = chunks;
        return chunks;
    }

    private int Send(PeerChannel channel, FrameType type)
    {
        var frame = channel.Frame(type, _payload.WrittenSpan);
        int length = frame.Length;
        frame.Release();
        return length;
    }

    public void Dispose()
    {
        _payload.Dispose();
        _frame.Dispose();
    }
}
