using NUnit.Framework;
using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Relay.Learners;
using GeoRelay.Storage;
using GeoRelay.Transport;
using GeoRelay.Engines;
using GeoRelay.TestUtilities;

namespace GeoRelay.Tests.Simulation.Learners;

/// <summary>What one simulated learner connection got from the fan-out.</summary>
internal sealed class FakeLearner(int connection)
{
    public int Connection { get; } = connection;
    public List<(ulong Index, string Key, string Payload)> Entries { get; } = new();
    public List<FrameBuffer> Buffers { get; } = new();
    public ulong Through;
    public ulong Next;
    public ulong? SnapshotOldest;
    public int Heartbeats;
    public CodecError? ClosedWith;
    /// <summary>When set, the learner reads nothing: what is sent stays queued.</summary>
    public bool Stalled;
    /// <summary>The snapshot of keyed state received (begin marker resets it), its index, and how many began or ended.</summary>
    public List<(ulong Index, string Key, string Payload)> SnapshotEntries { get; } = new();
    public ulong SnapshotThrough;
    public int SnapshotBegins;
    public int SnapshotChunks;
    public bool SnapshotEnded;
}

/// <summary>
/// Drives a <see cref="LearnerFanout"/> as a host would: runs its outbox after each call, decoding what
/// each learner connection receives, and reports per-connection queued bytes the test controls.
/// </summary>
internal sealed class FanoutHarness : IEngineEnvironment, IDisposable
{
    private int _nextConnection = 100;

    public FanoutHarness(LearnerFanoutOptions? options = null, MemoryLog? log = null, Func<KeyedSnapshot?>? snapshots = null)
    {
        Log = log ?? new MemoryLog();
        Fanout = new LearnerFanout(Log, this, Outbox, options ?? LearnerFanoutOptions.Default) { KeyedSnapshots = snapshots };
    }

    public MemoryLog Log { get; }
    public LearnerFanout Fanout { get; }
    public List<EngineCommand> Outbox { get; } = new();
    public Dictionary<int, FakeLearner> Learners { get; } = new();
    public Dictionary<int, long> Queued { get; } = new();
    public long NowMicros { get; set; }

    /// <summary>Keep every sent FrameBuffer (with a reference) so tests can compare instances.</summary>
    public bool KeepBuffers { get; set; }

    public long QueuedBytes(int connection) => Queued.TryGetValue(connection, out var q) ? q : 0;

    public FakeLearner Connect(ulong from, string? prefix = null, string node = "learner") =>
        Connect(new Subscribe(from, prefix is null ? default : Encoding.UTF8.GetBytes(prefix), SubscribeFlags.None), node);

    /// <summary>A learner that asks for the snapshot of keyed state; with <paramref name="resumeThrough"/>, resumes that one's transfer at <paramref name="from"/>.</summary>
    public FakeLearner ConnectForSnapshot(string? prefix = null, ulong resumeThrough = 0, ulong from = 1) =>
        Connect(new Subscribe(from, prefix is null ? default : Encoding.UTF8.GetBytes(prefix), SubscribeFlags.Snapshot, 0, 0, resumeThrough));

    public FakeLearner Connect(Subscribe subscribe, string node = "learner")
    {
        var learner = new FakeLearner(_nextConnection++);
        learner.Next = subscribe.FromIndex;
        if (subscribe.SnapshotThrough != 0) learner.SnapshotThrough = subscribe.SnapshotThrough;
        Learners.Add(learner.Connection, learner);
        Fanout.OnConnected(learner.Connection, new PeerInfo(node, NodeKind.Learner, 0, PortKind.Learner));
        Run();
        Send(learner, FrameType.Subscribe, subscribe.Write);
        return learner;
    }

    /// <summary>Another relay taking its feed here (<see cref="SubscribeFlags.RelayFeed"/>), holding up to <paramref name="lastIndex"/>.</summary>
    public FakeLearner ConnectRelayFeed(ulong lastIndex = 0, ulong lastEpoch = 0, NodeKind kind = NodeKind.Relay)
    {
        var learner = new FakeLearner(_nextConnection++) { Next = lastIndex + 1 };
        Learners.Add(learner.Connection, learner);
        Fanout.OnConnected(learner.Connection, new PeerInfo("p2", kind, 0, PortKind.Peer));
        Run();
        Send(learner, FrameType.Subscribe, w => new Subscribe(lastIndex + 1, default, SubscribeFlags.RelayFeed, lastIndex, lastEpoch).Write(w));
        return learner;
    }

    public void Send(FakeLearner learner, FrameType type, Action<PooledBufferWriter> write)
    {
        using var payload = new PooledBufferWriter();
        write(payload);
        Fanout.OnFrame(learner.Connection, type, new ReadOnlySequence<byte>(payload.WrittenMemory));
        Run();
    }

    /// <summary>Appends <paramref name="count"/> entries and tells the fan-out; key of entry i is keyOf(i).</summary>
    public (ulong First, ulong Last) Append(int count, Func<ulong, string>? keyOf = null, int payloadBytes = 0)
    {
        ulong first = Log.LastIndex + 1;
        if (Log.LastIndex == 0 && Log.FirstIndex == 0 && NextAfterReset != 0) first = NextAfterReset;
        for (ulong i = first; i < first + (ulong)count; i++)
        {
            var payload = Encoding.UTF8.GetBytes(("p" + i).PadRight(payloadBytes, '.'));
            var key = keyOf is null ? Array.Empty<byte>() : Encoding.UTF8.GetBytes(keyOf(i));
            Log.Append(new LogEntry(i, 1, 1_700_000_000_000_000 + (long)i, key, payload));
        }
        NextAfterReset = 0;
        ulong last = first + (ulong)count - 1;
        Fanout.OnAppended(first, last);
        Run();
        return (first, last);
    }

    public ulong NextAfterReset;

    public void Tick(int times = 1)
    {
        for (int i = 0; i < times; i++)
        {
            Fanout.OnTick();
            Run();
        }
    }

    /// <summary>Executes the outbox the way EngineHost does.</summary>
    public void Run()
    {
        foreach (var command in Outbox)
        {
            if (!Learners.TryGetValue(command.Connection, out var learner) || learner.ClosedWith is not null)
            {
                command.Buffer?.Release();
                continue;
            }
            if (command.Kind == CommandKind.Close)
            {
                learner.ClosedWith = command.Reason;
                continue;
            }
            var buffer = command.Buffer!;
            if (learner.Stalled)
                Queued[learner.Connection] = QueuedBytes(learner.Connection) + buffer.Length;
            else
                Receive(learner, buffer.Memory);
            if (KeepBuffers) learner.Buffers.Add(buffer);
            else buffer.Release();
        }
        Outbox.Clear();
    }

    public void Disconnect(FakeLearner learner)
    {
        Fanout.OnDisconnected(learner.Connection);
        Learners.Remove(learner.Connection);
        Run();
    }

    private static void Receive(FakeLearner learner, ReadOnlyMemory<byte> bytes)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        while (FrameReader.TryRead(ref buffer, 16 << 20, out var frame))
        {
            switch (frame.Type)
            {
                case FrameType.Deliver:
                    var reader = DeliverFrame.Read(frame.Payload, out ulong first, out _, out ulong through);
                    Assert.That(first, Is.EqualTo(learner.Next), "a Deliver frame must start right after the previous one");
                    while (reader.TryNext(out var e))
                        learner.Entries.Add((e.Index, Encoding.UTF8.GetString(e.Key), Encoding.UTF8.GetString(e.Payload)));
                    learner.Through = through;
                    learner.Next = through + 1;
                    break;
                case FrameType.SnapshotRequired:
                    learner.SnapshotOldest = SnapshotRequired.Read(frame.Payload).OldestIndex;
                    break;
                case FrameType.SnapshotChunk:
                    var chunk = SnapshotChunkFrame.Read(frame.Payload, out ulong snapshotThrough, out var flags, out _, out _, out _);
                    learner.SnapshotChunks++;
                    if ((flags & SnapshotChunkFlags.Begin) != 0)
                    {
                        learner.SnapshotBegins++;
                        learner.SnapshotEntries.Clear();
                        learner.SnapshotThrough = snapshotThrough;
                    }
                    Assert.That(snapshotThrough, Is.EqualTo(learner.SnapshotThrough), "every chunk belongs to the snapshot begun");
                    while (chunk.TryNext(out var e))
                        learner.SnapshotEntries.Add((e.Index, Encoding.UTF8.GetString(e.Key), Encoding.UTF8.GetString(e.Payload)));
                    if ((flags & SnapshotChunkFlags.End) != 0)
                    {
                        learner.SnapshotEnded = true;
                        learner.Next = snapshotThrough + 1;
                    }
                    break;
                case FrameType.Heartbeat:
                    learner.Heartbeats++;
                    break;
                case FrameType.Truncated:
                    ulong after = GeoRelay.Codec.Frames.Truncated.Read(frame.Payload).After;
                    learner.Entries.RemoveAll(e => e.Index > after);
                    learner.Next = Math.Min(learner.Next, after + 1);
                    break;
                default:
                    Assert.Fail($"unexpected {frame.Type} frame to a learner");
                    break;
            }
        }
        Assert.That(buffer.Length, Is.Zero, "one Send carries whole frames");
    }

    public void Dispose()
    {
        foreach (var learner in Learners.Values)
            foreach (var b in learner.Buffers) b.Release();
        Fanout.Dispose();
        Log.Dispose();
    }
}
