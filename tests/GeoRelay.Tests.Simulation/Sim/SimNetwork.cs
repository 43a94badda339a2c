using System.Buffers;
using GeoRelay.Codec.Frames;
using GeoRelay.Transport;
using GeoRelay.Transport.Engines;

namespace GeoRelay.Tests.Simulation.Sim;

/// <summary>
/// A deterministic network and clock for sans-IO engines: the very engines the daemons run, wired
/// through in-memory links with per-link latency; every choice comes from one seed.
/// </summary>
public sealed class SimNetwork
{
    private sealed class Node(string id, IEngine engine)
    {
        public string Id { get; } = id;
        public IEngine Engine { get; } = engine;
        public bool Up = true;
    }

    private sealed record Link(int Id, Node From, Node To, int PeerLink);

    private readonly record struct Delivery(long At, long Seq, int Link, FrameBuffer? Frame, bool Close);

    private readonly Dictionary<string, Node> _nodes = new();
    private readonly Dictionary<int, Link> _links = new();
    private readonly PriorityQueue<Delivery, (long, long)> _inFlight = new();
    private readonly Func<string, string, long> _latencyMicros;
    private long _seq;
    private int _nextLink;

    public SimNetwork(Func<string, string, long> latencyMicros) => _latencyMicros = latencyMicros;

    public SimClock Clock { get; } = new();
    public ulong TraceHash { get; private set; } = 14695981039346656037UL;

    public void Add(string id, IEngine engine) => _nodes[id] = new Node(id, engine);

    public bool IsUp(string id) => _nodes[id].Up;

    /// <summary>The node stops: its links drop (peers see a disconnect) and dials to it fail until restarted.</summary>
    public void Crash(string id)
    {
        var node = _nodes[id];
        node.Up = false;
        foreach (var link in _links.Values.ToList())
            if (link.From == node || link.To == node) Drop(link.Id);
    }

    /// <summary>Replaces a crashed node's engine with a fresh one (its durable state is the caller's business).</summary>
    public void Restart(string id, IEngine engine) => _nodes[id] = new Node(id, engine);

    /// <summary>Advances the clock by one tick: delivers what is due, then ticks every live engine.</summary>
    public void Step(long tickMicros = 1000)
    {
        Clock.NowMicros += tickMicros;
        while (_inFlight.TryPeek(out var d, out _) && d.At <= Clock.NowMicros)
        {
            _inFlight.Dequeue();
            Deliver(d);
        }
        int dials = _dials.Count;
        for (int i = 0; i < dials; i++)
        {
            var (from, to) = _dials.Dequeue();
            if (from.Up && _nodes.TryGetValue(from.Id, out var current) && current == from) Dial(from, to);
        }
        foreach (var node in _nodes.Values.ToList())
        {
            if (!node.Up) continue;
            node.Engine.OnTick();
            Run(node);
        }
    }

    private void Deliver(Delivery d)
    {
        if (!_links.TryGetValue(d.Link, out var link))
        {
            d.Frame?.Release();
            return;
        }
        if (d.Close)
        {
            Drop(link.Id);
            return;
        }
        var bytes = new ReadOnlySequence<byte>(d.Frame!.Memory);
        Mix((ulong)d.Link * 31 + (ulong)d.Frame.Length);
        try
        {
            while (FrameReader.TryRead(ref bytes, 64 << 20, out var frame))
            {
                try
                {
                    link.To.Engine.OnFrame(link.PeerLink, frame);
                }
                catch (GeoRelay.Codec.CodecException)
                {
                    Drop(link.Id);
                    break;
                }
            }
        }
        finally
        {
            d.Frame.Release();
        }
        Run(link.To);
    }

    private void Drop(int linkId)
    {
        if (!_links.Remove(linkId, out var link)) return;
        _links.Remove(link.PeerLink);
        Mix((ulong)linkId * 7);
        if (link.From.Up) { link.From.Engine.OnDisconnected(linkId); Run(link.From); }
        if (link.To.Up) { link.To.Engine.OnDisconnected(link.PeerLink); Run(link.To); }
    }

    /// <summary>Executes a node's commands.</summary>
    private void Run(Node node)
    {
        // Copy first: executing a command may call back into this engine.
        var commands = node.Engine.Outbox.ToArray();
        node.Engine.Outbox.Clear();
        foreach (var c in commands)
        {
            switch (c.Kind)
            {
                case CommandKind.Send:
                    if (_links.TryGetValue(c.Connection, out var link))
                    {
                        long at = Clock.NowMicros + _latencyMicros(link.From.Id, link.To.Id);
                        _inFlight.Enqueue(new Delivery(at, ++_seq, c.Connection, c.Buffer, false), (at, _seq));
                    }
                    else
                        c.Buffer!.Release();
                    break;
                case CommandKind.Close:
                    if (_links.TryGetValue(c.Connection, out var closing))
                        _inFlight.Enqueue(new Delivery(Clock.NowMicros + _latencyMicros(closing.From.Id, closing.To.Id), ++_seq, closing.Id, null, true),
                            (Clock.NowMicros + _latencyMicros(closing.From.Id, closing.To.Id), _seq));
                    break;
                case CommandKind.Dial:
                    _dials.Enqueue((node, c.Text!));  // connects on the next step, like a real dial
                    break;
            }
        }
    }

    private readonly Queue<(Node From, string To)> _dials = new();

    /// <summary>Connects node <paramref name="from"/> to <paramref name="to"/>'s <paramref name="port"/> now (a learner dialing a relay's learner port).</summary>
    public void Connect(string from, string to, PortKind port) => Dial(_nodes[from], to, port);

    private void Dial(Node from, string to, PortKind port = PortKind.Peer)
    {
        if (!_nodes.TryGetValue(to, out var target) || !target.Up)
        {
            from.Engine.OnDialFailed(to, "connection refused");
            Run(from);
            return;
        }
        var refusal = target.Engine.CheckPeer(from.Engine.LocalHello, port);
        if (refusal is not null)
        {
            from.Engine.OnDialFailed(to, refusal.Message);
            Run(from);
            return;
        }
        int outbound = ++_nextLink, inbound = ++_nextLink;
        _links[outbound] = new Link(outbound, from, target, inbound);
        _links[inbound] = new Link(inbound, target, from, outbound);
        Mix((ulong)outbound);
        var hello = from.Engine.LocalHello;
        target.Engine.OnConnected(inbound, new PeerInfo(hello.NodeId, hello.Kind, hello.Epoch, port));
        Run(target);
        var back = target.Engine.LocalHello;
        from.Engine.OnConnected(outbound, new PeerInfo(back.NodeId, back.Kind, back.Epoch, PortKind.Outbound));
        Run(from);
    }

    private void Mix(ulong value)
    {
        TraceHash ^= value + (ulong)Clock.NowMicros;
        TraceHash *= 1099511628211UL;
    }
}

public sealed class SimClock
{
    public long NowMicros;
}

public sealed class SimEnvironment(SimClock clock) : IEngineEnvironment
{
    public long NowMicros => clock.NowMicros;
    public long QueuedBytes(int connection) => 0;
}
