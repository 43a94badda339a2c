using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using GeoRelay.Engines;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// A learner on the simulated network, with the SDK's rules: subscribe from <c>next</c>, drop what it
/// already has, treat a Deliver that starts past <c>next</c> as a gap; after a disconnect try the
/// endpoints in order from the first (a refused dial moves to the next one at once, a failed round
/// waits) and resume at <c>next</c>. Every entry goes to <see cref="Received"/>, which checks it
/// against the leader's log.
/// </summary>
public sealed class SimLearner : IEngine
{
    private readonly IReadOnlyList<string> _targets;
    private readonly IEngineEnvironment _env;
    private readonly long _retryMicros;
    private int _cursor;
    // Keyed: endpoints that answered SnapshotRequired in a row (as the SDK, the next is tried before any loss is accepted),
    // and the endpoint to try after this connection closes.
    private int _snapshotRefusals;
    private int? _resumeCursor;
    private int _connection = -1;
    private bool _dialPending;
    private long _retryAt;
    private string _peer = "";

    public SimLearner(string id, string cluster, IReadOnlyList<string> targets, IEngineEnvironment env, long retryMicros = 100_000)
    {
        Id = id;
        _targets = targets;
        _env = env;
        _retryMicros = retryMicros;
        LocalHello = Hello.ForThisBuild(id, NodeKind.Learner, 0, cluster, 0, Capabilities.None);
    }

    public string Id { get; }
    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; }

    /// <summary>The next index this learner needs; everything below it was handed to the application once.</summary>
    public ulong Next { get; private set; } = 1;

    /// <summary>Whether an index may be missing from the stream (it holds an internal entry, which reaches no learner).</summary>
    public Func<ulong, bool>? MaySkip { get; init; }
    public long Reconnects { get; private set; }

    /// <summary>Entries handed to the application, by the node that served them.</summary>
    public Dictionary<string, long> ServedBy { get; } = new();

    /// <summary>Checks one entry handed to the application (index, epoch, payload); returns a violation or null.</summary>
    public Func<SimLearner, ulong, ulong, ReadOnlyMemory<byte>, string?>? Received { get; set; }

    /// <summary>A Truncated frame arrived: entries above the index were taken back.</summary>
    public Action<SimLearner, ulong>? Truncated { get; set; }

    /// <summary>The entries the application holds now, in order: what arrived, minus what Truncated frames took back.</summary>
    public List<(ulong Index, ulong Epoch, byte[] Payload)> Stream { get; } = new();

    /// <summary>
    /// Whether nodes may have dropped entries this learner still needs (retention runs): a SnapshotRequired then moves it
    /// on to the oldest index held, as an application that accepts the loss would, instead of being a violation.
    /// </summary>
    public bool MayBeLeftBehind { get; init; }

    /// <summary>The highest index a SnapshotRequired moved this learner on to; 0 when none did.</summary>
    public ulong SkippedTo { get; private set; }

    /// <summary>
    /// Keeps the keyed state the application would (<c>compaction: keyed</c>): a snapshot replaces it, then each entry
    /// sets its key or, as a tombstone, deletes it. Snapshots take the place of SnapshotRequired where a node has one.
    /// </summary>
    public bool Keyed { get; init; }

    /// <summary>Key → (index, value) of the keyed state: the last snapshot plus the stream after it.</summary>
    public SortedDictionary<string, (ulong Index, string Value)> State { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// A SnapshotRequired moved this learner past entries since its last snapshot (a node whose keyed state is incomplete,
    /// installed past it, answered): its state lacks them until the next snapshot, and is not compared meanwhile.
    /// </summary>
    public bool StateLost { get; private set; }

    /// <summary>Every snapshot received whole: its index and its state, to compare with the leader's log.</summary>
    public List<(ulong Through, SortedDictionary<string, (ulong Index, string Value)> State)> Snapshots { get; } = new();

    // The snapshot being received, and its index.
    private SortedDictionary<string, (ulong Index, string Value)>? _snapshot;
    private ulong _snapshotThrough;
    private ulong _snapshotNext;

    /// <summary>Truncated frames received.</summary>
    public int Truncations { get; private set; }

    /// <summary>The first invariant this learner saw broken, if any.</summary>
    public string? Violation { get; private set; }

    public bool Connected => _connection >= 0;

    /// <summary>The node it is connected to (or last was), for failure messages.</summary>
    public string? Peer => _peer;

    public CodecException? CheckPeer(in Hello hello, PortKind port) => new(CodecError.Protocol, "a learner takes no connections");

    public void OnConnected(int connection, PeerInfo peer)
    {
        _dialPending = false;
        _connection = connection;
        _peer = peer.NodeId;
        var frame = FrameBuffer.Rent();
        int start = FrameWriter.Begin(frame.Writer);
        // As the SDK: name the last entry received, so a node that took it back meanwhile says so.
        // One moved on past a SnapshotRequired starts over as a new subscriber would: its last entry is not below Next.
        var (lastIndex, lastEpoch) = Stream.Count > 0 && Stream[^1].Index + 1 >= SkippedTo ? (Stream[^1].Index, Stream[^1].Epoch) : (0UL, 0UL);
        new Subscribe(Next, default, SubscribeFlags.None, lastIndex, lastEpoch).Write(frame.Writer);
        FrameWriter.End(frame.Writer, start, FrameType.Subscribe);
        Outbox.Add(EngineCommand.Send(connection, frame));
    }

    public void OnDisconnected(int connection)
    {
        if (connection != _connection) return;
        _connection = -1;
        Reconnects++;
        _cursor = _resumeCursor ?? 0;
        _retryAt = _resumeCursor is null ? _env.NowMicros + _retryMicros : _env.NowMicros;
        _resumeCursor = null;
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        _dialPending = false;
        if (++_cursor < _targets.Count) return;
        _cursor = 0;
        _retryAt = _env.NowMicros + _retryMicros;
    }

    public void OnFrame(int connection, in Frame frame)
    {
        if (connection != _connection) return;
        switch (frame.Type)
        {
            case FrameType.Deliver:
                _snapshotRefusals = 0;
                var reader = DeliverFrame.Read(frame.Payload, out ulong first, out _, out ulong through);
                if (first > Next) Fail($"Deliver starts at {first} but {Next} is next: a gap");
                while (reader.TryNext(out var e))
                {
                    if (e.Index < Next) continue; // a duplicate after a reconnect: dropped, as the SDK does
                    for (; Next < e.Index; Next++)
                        if (MaySkip?.Invoke(Next) != true) { Fail($"entry {e.Index} arrived while {Next} was next"); return; }
                    var check = Received?.Invoke(this, e.Index, e.Epoch, e.Payload.AsContiguous());
                    if (check is not null) Fail(check);
                    Stream.Add((e.Index, e.Epoch, e.Payload.AsContiguous().ToArray()));
                    if (Keyed) ApplyKeyed(State, e);
                    ServedBy[_peer] = ServedBy.GetValueOrDefault(_peer) + 1;
                    Next = e.Index + 1;
                }
                if (through + 1 > Next) Next = through + 1;
                break;
            case FrameType.SnapshotChunk when Keyed:
                _snapshotRefusals = 0;
                OnSnapshotChunk(frame);
                break;
            case FrameType.SnapshotRequired when Keyed && ++_snapshotRefusals < _targets.Count:
                // Another node may have the keyed state this one lacks (installed past it): try it first.
                _resumeCursor = (_cursor + 1) % _targets.Count;
                Outbox.Add(EngineCommand.Close(connection, CodecError.None, "snapshot required"));
                break;
            case FrameType.SnapshotRequired when MayBeLeftBehind:
                _snapshotRefusals = 0;
                ulong oldest = SnapshotRequired.Read(frame.Payload).OldestIndex;
                if (oldest > Next)
                {
                    Next = SkippedTo = oldest;
                    StateLost = true;
                }
                Outbox.Add(EngineCommand.Close(connection, CodecError.None, "snapshot required"));
                break;
            case FrameType.SnapshotRequired:
                Fail($"SnapshotRequired({SnapshotRequired.Read(frame.Payload).OldestIndex}) at {Next} from {_peer}, though every node retains everything");
                Outbox.Add(EngineCommand.Close(connection, CodecError.None, "snapshot required"));
                break;
            case FrameType.Truncated:
                ulong after = Codec.Frames.Truncated.Read(frame.Payload).After;
                Truncations++;
                Truncated?.Invoke(this, after);
                while (Stream.Count > 0 && Stream[^1].Index > after) Stream.RemoveAt(Stream.Count - 1);
                if (after + 1 < Next) Next = after + 1;
                break;
            case FrameType.Error:
            case FrameType.Heartbeat:
                break;
            default:
                Fail($"unexpected {frame.Type} on the learner port");
                break;
        }
    }

    private void OnSnapshotChunk(in Frame frame)
    {
        var chunk = SnapshotChunkFrame.Read(frame.Payload, out ulong through, out var flags, out _, out _, out _);
        if ((flags & SnapshotChunkFlags.Begin) != 0)
        {
            _snapshot = new(StringComparer.Ordinal);
            _snapshotThrough = through;
            _snapshotNext = 1;
        }
        else if (_snapshot is null || through != _snapshotThrough)
        {
            Fail($"a chunk of the snapshot at {through} without its beginning");
            return;
        }
        if (through + 1 < Next) Fail($"a snapshot at {through}, below what it already has ({Next - 1}): the state would go back");
        while (chunk.TryNext(out var e))
        {
            if (e.Index < _snapshotNext || e.Index > through) { Fail($"snapshot entry {e.Index} out of order or past {through}"); return; }
            var check = Received?.Invoke(this, e.Index, e.Epoch, e.Payload.AsContiguous());
            if (check is not null) Fail(check);
            ApplyKeyed(_snapshot, e);
            _snapshotNext = e.Index + 1;
        }
        if ((flags & SnapshotChunkFlags.End) == 0) return;
        Snapshots.Add((through, new(_snapshot, StringComparer.Ordinal)));
        State.Clear();
        foreach (var (key, value) in _snapshot) State[key] = value;
        _snapshot = null;
        StateLost = false;
        // The stream goes on after the snapshot; what came before it is the snapshot's, not compared entry by entry.
        Next = SkippedTo = through + 1;
    }

    private static void ApplyKeyed(SortedDictionary<string, (ulong Index, string Value)> state, in EntryView e)
    {
        if (e.Key.IsEmpty) return;
        string key = Encoding.UTF8.GetString(e.Key);
        if (e.IsTombstone) state.Remove(key);
        else state[key] = (e.Index, Encoding.UTF8.GetString(e.Payload));
    }

    private void Fail(string what) => Violation ??= $"learner {Id}: {what}";

    public void OnTick()
    {
        if (_connection >= 0 || _dialPending || _env.NowMicros < _retryAt) return;
        _dialPending = true;
        Outbox.Add(EngineCommand.Dial(_targets[_cursor]));
    }
}
