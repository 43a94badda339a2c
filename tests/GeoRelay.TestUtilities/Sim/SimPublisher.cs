using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Engines;
using GeoRelay.Transport;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// An exactly-once publisher on the simulated network: it numbers its entries under one producer id, tries the
/// voters in turn until one takes it (followers refuse with NotLeader), and after any disconnect sends every request
/// not yet acknowledged again, in order, with the same sequence numbers. Entry payloads name their sequence, so a
/// checker can count copies in the logs.
/// </summary>
public sealed class SimPublisher : IEngine
{
    public sealed class Request(ulong id, ulong firstSeq, int count)
    {
        public ulong Id { get; } = id;
        public ulong FirstSeq { get; } = firstSeq;
        public int Count { get; } = count;
        public ulong? FirstIndex;
        public bool SentOnThisConnection;
    }

    private readonly IReadOnlyList<string> _targets;
    private readonly IEngineEnvironment _env;
    private readonly List<Request> _requests = new();
    private int _cursor;
    private int _connection = -1;
    private bool _dialPending;
    private long _retryAt;
    private ulong _nextSeq = 1;
    private ulong _nextRequest = 1;

    public SimPublisher(string id, ulong producer, string cluster, IReadOnlyList<string> targets, IEngineEnvironment env)
    {
        Id = id;
        Producer = producer;
        _targets = targets;
        _env = env;
        LocalHello = Hello.ForThisBuild(id, NodeKind.Publisher, 0, cluster, 0, Capabilities.None);
    }

    public string Id { get; }
    public ulong Producer { get; }
    public List<EngineCommand> Outbox { get; } = new();
    public Hello LocalHello { get; }
    public IReadOnlyList<Request> Requests => _requests;
    public bool AllAcknowledged => _requests.TrueForAll(r => r.FirstIndex is not null);

    public static string PayloadOf(ulong producer, ulong seq) => $"producer {producer:x} seq {seq}";

    /// <summary>Queues a request of <paramref name="count"/> entries; it goes out with the next tick that has a connection.</summary>
    public void Publish(int count)
    {
        _requests.Add(new Request(_nextRequest++, _nextSeq, count));
        _nextSeq += (ulong)count;
    }

    public CodecException? CheckPeer(in Hello hello, PortKind port) => new(CodecError.Protocol, "a publisher takes no connections");

    public void OnConnected(int connection, PeerInfo peer)
    {
        _dialPending = false;
        _connection = connection;
        foreach (var r in _requests) r.SentOnThisConnection = false;
        SendUnacknowledged();
    }

    public void OnDisconnected(int connection)
    {
        if (connection != _connection) return;
        _connection = -1;
        _retryAt = _env.NowMicros + 50_000;
    }

    public void OnDialFailed(string nodeId, string reason)
    {
        _dialPending = false;
        _cursor = (_cursor + 1) % _targets.Count;
        if (_cursor == 0) _retryAt = _env.NowMicros + 50_000; // a round of refusals: wait before the next
    }

    public void OnFrame(int connection, in Frame frame)
    {
        if (connection != _connection) return;
        if (frame.Type == FrameType.PublishAck)
        {
            var ack = PublishAck.Read(frame.Payload);
            var r = _requests.Find(x => x.Id == ack.Request);
            if (r is not null && r.FirstIndex is null) r.FirstIndex = ack.FirstIndex;
        }
    }

    public void OnTick()
    {
        if (_connection >= 0)
        {
            SendUnacknowledged();
            return;
        }
        if (_dialPending || _env.NowMicros < _retryAt) return;
        _dialPending = true;
        Outbox.Add(EngineCommand.Dial(_targets[_cursor]));
    }

    private void SendUnacknowledged()
    {
        foreach (var r in _requests)
        {
            if (r.FirstIndex is not null || r.SentOnThisConnection) continue;
            r.SentOnThisConnection = true;
            var frame = FrameBuffer.Rent();
            int start = FrameWriter.Begin(frame.Writer);
            PublishFrame.WriteHeader(frame.Writer, r.Id, WaitLevel.Committed, r.Count, new ProducerSequence(Producer, r.FirstSeq));
            for (int i = 0; i < r.Count; i++)
                PublishFrame.WriteEntry(frame.Writer, "pub"u8, Encoding.UTF8.GetBytes(PayloadOf(Producer, r.FirstSeq + (ulong)i)));
            FrameWriter.End(frame.Writer, start, FrameType.Publish);
            Outbox.Add(EngineCommand.Send(_connection, frame));
        }
    }
}
