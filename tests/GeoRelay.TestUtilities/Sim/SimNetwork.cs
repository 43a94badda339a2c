using System.Buffers;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using GeoRelay.Transport;
using GeoRelay.Engines;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>One direction of a link between two nodes: one-way delay, per-frame jitter, bandwidth.</summary>
public readonly record struct LinkProfile(long LatencyMicros, long JitterMicros = 0, long BytesPerMilli = 0)
{
    /// <summary>Slower by <paramref name="factor"/>: more delay and jitter, less bandwidth.</summary>
    public LinkProfile Slowed(int factor) => new(LatencyMicros * factor, JitterMicros * factor,
        BytesPerMilli == 0 ? 0 : Math.Max(1, BytesPerMilli / factor));
}

/// <summary>
/// A deterministic network and clock for sans-IO engines: the very engines the daemons run, wired
/// through in-memory links (ordered like TCP) with per-link latency, jitter and bandwidth; links can
/// be cut, slowed or dropped, nodes crashed and restarted. Every choice comes from one seed.
/// </summary>
/// <remarks>
/// As EngineHost does, an engine call or sync that throws <see cref="DiskFailedException"/> stops the node: the
/// commands it left are dropped, it is taken down (its links drop) and <see cref="DiskFailed"/> is told.
/// </remarks>
public sealed class SimNetwork
{
    private sealed class Node(string id, IEngine engine)
    {
        public string Id { get; } = id;
        public IEngine Engine { get; } = engine;
        public bool Up = true;
    }

    private sealed class Link(int id, Node from, Node to, int peerLink)
    {
        public int Id { get; } = id;
        public Node From { get; } = from;
        public Node To { get; } = to;
        public int PeerLink { get; } = peerLink;
        /// <summary>Looked up at the first send, then kept: a lookup by node names per frame showed up in profiles.</summary>
        public LinkProfile? Profile;
        /// <summary>When the last frame sent on this link arrives (TCP keeps order) and when its sender is free.</summary>
        public long LastArrival;
        public long BusyUntil;
        /// <summary>Frames a firewall dropped, waiting for the heal in order (<see cref="Silence"/>).</summary>
        public Queue<Delivery>? Held;
    }

    private readonly record struct Delivery(long At, long Seq, int Link, FrameBuffer? Frame, bool Close);

    private readonly Dictionary<string, Node> _nodes = new();
    private readonly List<Node> _order = new();
    private readonly Dictionary<int, Link> _links = new();
    private readonly PriorityQueue<Delivery, (long, long)> _inFlight = new();
    private readonly Queue<(Node From, string To, NodeKind As)> _dials = new();
    private readonly PriorityQueue<(Node Node, Action Work), (long, long)> _syncs = new();
    private readonly HashSet<(string, string)> _cut = new();
    private readonly HashSet<(string, string)> _silenced = new();
    private readonly HashSet<int> _holding = new();
    private readonly Dictionary<(string, string), int> _slowed = new();
    private readonly Func<string, string, LinkProfile> _profile;
    private readonly Random _random;
    private long _seq;
    private int _nextLink;

    /// <summary>Fixed one-way latency per pair of nodes, nothing else.</summary>
    public SimNetwork(Func<string, string, long> latencyMicros) : this((a, b) => new LinkProfile(latencyMicros(a, b)), seed: 0) { }

    public SimNetwork(Func<string, string, LinkProfile> profile, int seed)
    {
        _profile = profile;
        _random = new Random(seed);
    }

    /// <summary>
    /// How long a node's group fsync takes, in microseconds (0, the default: the disk is instant). A sync that takes
    /// time leaves a window in which the engine runs on with appended entries not yet durable; a crash inside it loses
    /// them (the sync never completes), as on a real disk.
    /// </summary>
    public Func<string, long>? SyncMicros { get; set; }

    /// <summary>Told when a node stopped on a disk failure (it is down by then, as a crashed node is).</summary>
    public Action<string, DiskFailedException>? DiskFailed { get; set; }

    /// <summary>
    /// Asked for each frame a node sends: whether its log has failed. A node must send nothing once it has (its
    /// engine is to let the failure through, never carry on), so such a frame is recorded in <see cref="Violation"/>.
    /// </summary>
    public Func<string, bool>? HasDiskFailed { get; set; }

    /// <summary>The first frame sent by a node after its disk failed; null if none.</summary>
    public string? Violation { get; private set; }

    public SimClock Clock { get; } = new();
    public ulong TraceHash { get; private set; } = 14695981039346656037UL;

    /// <summary>Frames delivered so far.</summary>
    public long FramesDelivered { get; private set; }

    public void Add(string id, IEngine engine)
    {
        var node = new Node(id, engine);
        _nodes[id] = node;
        _order.Add(node);
    }

    public bool IsUp(string id) => _nodes[id].Up;

    public IEngine Engine(string id) => _nodes[id].Engine;

    /// <summary>The node stops: its links drop (peers see a disconnect) and dials to it fail until restarted.</summary>
    public void Crash(string id)
    {
        var node = _nodes[id];
        node.Up = false;
        Mix(0xC0DE ^ (ulong)id.Length);
        DropWhere(link => link.From == node || link.To == node);
    }

    /// <summary>
    /// The node's process dies, its machine stays up: what it sent still arrives, then each peer sees the connection
    /// close one link latency later (the kernel's FIN), as after a SIGKILL. Dials to it fail until restarted.
    /// </summary>
    public void Kill(string id)
    {
        var node = _nodes[id];
        node.Up = false;
        Mix(0x4B11 ^ (ulong)id.Length);
        var links = new List<int>();
        foreach (var link in _links.Values)
            if (link.From == node && link.To.Up) links.Add(link.Id);
        links.Sort(); // dictionary order is not part of the seed
        foreach (int linkId in links)
        {
            long at = ArrivalTime(_links[linkId], 0);
            _inFlight.Enqueue(new Delivery(at, ++_seq, linkId, null, Close: true), (at, _seq));
        }
    }

    /// <summary>
    /// Silence between two nodes (a firewall that drops packets): connections stay open and their frames wait (TCP
    /// retransmits them, in order, after the heal), dials fail, until <see cref="Heal"/>.
    /// </summary>
    public void Silence(string a, string b) => _silenced.Add(Pair(a, b));

    /// <summary>Replaces a crashed node's engine with a fresh one (its durable state is the caller's business).</summary>
    public void Restart(string id, IEngine engine)
    {
        var node = new Node(id, engine);
        _order[_order.IndexOf(_nodes[id])] = node;
        _nodes[id] = node;
    }

    /// <summary>A partition between two nodes: open connections drop, dials fail, until <see cref="Heal"/>.</summary>
    public void Cut(string a, string b)
    {
        _cut.Add(Pair(a, b));
        DropBetween(a, b);
    }

    public void Heal(string a, string b)
    {
        _cut.Remove(Pair(a, b));
        _silenced.Remove(Pair(a, b));
    }

    public void HealAll()
    {
        _cut.Clear();
        _silenced.Clear();
    }

    public bool IsCut(string a, string b) => _cut.Contains(Pair(a, b));

    /// <summary>Connection loss: every open connection between the two nodes drops (both may dial again).</summary>
    public void DropBetween(string a, string b) =>
        DropWhere(link => (link.From.Id == a && link.To.Id == b) || (link.From.Id == b && link.To.Id == a));

    /// <summary>Makes the link between two nodes <paramref name="factor"/> times slower (1 restores it).</summary>
    public void Slow(string a, string b, int factor)
    {
        if (factor <= 1) _slowed.Remove(Pair(a, b));
        else _slowed[Pair(a, b)] = factor;
    }

    public void RestoreAllSpeeds() => _slowed.Clear();

    /// <summary>Advances the clock by one tick: delivers what is due, connects pending dials, then ticks every live engine whose next tick is due (as EngineHost does).</summary>
    public void Step(long tickMicros = 1000)
    {
        Clock.NowMicros += tickMicros;
        while (_inFlight.TryPeek(out var d, out _) && d.At <= Clock.NowMicros)
        {
            _inFlight.Dequeue();
            Deliver(d);
        }
        if (_holding.Count > 0) ReleaseHeld();
        while (_syncs.TryPeek(out var sync, out var due) && due.Item1 <= Clock.NowMicros)
        {
            _syncs.Dequeue();
            // A crashed node's sync never completes; its restart is another node.
            if (sync.Node.Up && _nodes[sync.Node.Id] == sync.Node) Sync(sync.Node, sync.Work);
        }
        int dials = _dials.Count;
        for (int i = 0; i < dials; i++)
        {
            var (from, to, dialAs) = _dials.Dequeue();
            if (from.Up && _nodes.TryGetValue(from.Id, out var current) && current == from) Dial(from, to, dialAs: dialAs);
        }
        for (int i = 0; i < _order.Count; i++)
        {
            var node = _order[i];
            if (!node.Up) continue;
            if (node.Engine.NextTickMicros <= Clock.NowMicros && !TryTick(node)) continue;
            Run(node);
        }
    }

    private bool TryTick(Node node)
    {
        try
        {
            node.Engine.OnTick();
            return true;
        }
        catch (DiskFailedException e)
        {
            StopOnDiskFailure(node, e);
            return false;
        }
    }

    /// <summary>A node met a disk failure outside an engine call (a publish into the leader): stops it as one inside would.</summary>
    public void StopOnDiskFailure(string id, DiskFailedException e) => StopOnDiskFailure(_nodes[id], e);

    /// <summary>As EngineHost: drops what the failing call left, never calls the engine again, closes its connections.</summary>
    private void StopOnDiskFailure(Node node, DiskFailedException e)
    {
        if (!node.Up || _nodes[node.Id] != node) return;
        var outbox = node.Engine.Outbox;
        foreach (var command in outbox) command.Buffer?.Release();
        outbox.Clear();
        Crash(node.Id);
        DiskFailed?.Invoke(node.Id, e);
    }

    private static (string, string) Pair(string a, string b) => string.CompareOrdinal(a, b) <= 0 ? (a, b) : (b, a);

    private void DropWhere(Func<Link, bool> match)
    {
        List<int>? doomed = null;
        foreach (var link in _links.Values)
            if (match(link)) (doomed ??= new()).Add(link.Id);
        if (doomed is null) return;
        doomed.Sort(); // dictionary order is not part of the seed
        foreach (var id in doomed) Drop(id);
    }

    private void Deliver(Delivery d)
    {
        if (!_links.TryGetValue(d.Link, out var link))
        {
            d.Frame?.Release();
            return;
        }
        if (link.Held is { Count: > 0 } || (_silenced.Count > 0 && _silenced.Contains(Pair(link.From.Id, link.To.Id))))
        {
            // Dropped by the firewall: TCP sends it again until it gets through, in order, so it waits with the link's
            // later frames behind it until the heal (see ReleaseHeld).
            (link.Held ??= new()).Enqueue(d);
            _holding.Add(link.Id);
            return;
        }
        DeliverNow(d, link);
    }

    /// <summary>Links no longer silenced get what waited on them, in order (the retransmission after a heal).</summary>
    private void ReleaseHeld()
    {
        List<int>? released = null;
        foreach (int id in _holding)
            if (!_links.TryGetValue(id, out var link) || !_silenced.Contains(Pair(link.From.Id, link.To.Id))) (released ??= new()).Add(id);
        if (released is null) return;
        released.Sort(); // set order is not part of the seed
        foreach (int id in released)
        {
            _holding.Remove(id);
            if (!_links.TryGetValue(id, out var link)) continue; // dropped meanwhile: what waited is lost with it
            while (link.Held!.TryDequeue(out var d))
            {
                if (!_links.ContainsKey(id)) { d.Frame?.Release(); continue; }
                DeliverNow(d, link);
            }
        }
    }

    private void DeliverNow(Delivery d, Link link)
    {
        if (d.Close)
        {
            Drop(link.Id);
            return;
        }
        if (!link.To.Up)
        {
            d.Frame!.Release(); // to a process that died; its peer sees the close
            return;
        }
        var bytes = new ReadOnlySequence<byte>(d.Frame!.Memory);
        Mix((ulong)d.Link * 31 + (ulong)d.Frame.Length);
        FramesDelivered++;
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
                catch (DiskFailedException e)
                {
                    StopOnDiskFailure(link.To, e);
                    break;
                }
                if (!_links.ContainsKey(link.Id)) break;
            }
        }
        finally
        {
            d.Frame.Release();
        }
        if (link.To.Up) Settle(link.To);
    }

    private void Drop(int linkId)
    {
        if (!_links.Remove(linkId, out var link)) return;
        _links.Remove(link.PeerLink);
        Mix((ulong)linkId * 7);
        if (link.From.Up) Disconnected(link.From, linkId);
        if (link.To.Up) Disconnected(link.To, link.PeerLink);
    }

    private void Disconnected(Node node, int connection)
    {
        try
        {
            node.Engine.OnDisconnected(connection);
        }
        catch (DiskFailedException e)
        {
            StopOnDiskFailure(node, e);
            return;
        }
        Settle(node);
    }

    /// <summary>After an event, as EngineHost does: executes the node's commands, then ticks it at once if that left work due.</summary>
    private void Settle(Node node)
    {
        Run(node);
        if (!node.Up || node.Engine.NextTickMicros > Clock.NowMicros) return;
        if (TryTick(node)) Run(node);
    }

    /// <summary>Executes a node's commands.</summary>
    private void Run(Node node)
    {
        var outbox = node.Engine.Outbox;
        if (outbox.Count == 0) return;
        // Copy first: executing a command may call back into this engine. Rented, not ToArray: this runs for every
        // delivery and tick.
        int count = outbox.Count;
        var commands = ArrayPool<EngineCommand>.Shared.Rent(count);
        outbox.CopyTo(commands);
        outbox.Clear();
        try
        {
            for (int i = 0; i < count; i++)
            {
                // A sync that failed stopped the node: what it asked for after it is dropped.
                if (!node.Up) { commands[i].Buffer?.Release(); continue; }
                Execute(node, commands[i]);
            }
        }
        finally
        {
            ArrayPool<EngineCommand>.Shared.Return(commands, clearArray: true);
        }
    }

    private void Execute(Node node, in EngineCommand c)
    {
        switch (c.Kind)
        {
            case CommandKind.Send:
                if (HasDiskFailed?.Invoke(node.Id) == true)
                    Violation ??= $"{node.Id} sent a {(FrameType)c.Buffer!.Memory.Span[4]} frame after its disk failed";
                if (_links.TryGetValue(c.Connection, out var link))
                {
                    long at = ArrivalTime(link, c.Buffer!.Length);
                    _inFlight.Enqueue(new Delivery(at, ++_seq, c.Connection, c.Buffer, false), (at, _seq));
                }
                else
                    c.Buffer!.Release();
                break;
            case CommandKind.Close:
                if (HasDiskFailed?.Invoke(node.Id) == true) Violation ??= $"{node.Id} closed a connection after its disk failed";
                if (_links.TryGetValue(c.Connection, out var closing))
                {
                    // As FramedConnection.Close: an Error frame saying why, after what is queued, then the close.
                    var error = FrameBuffer.Rent();
                    int start = FrameWriter.Begin(error.Writer);
                    new ErrorFrame(c.Reason, c.Text ?? "").Write(error.Writer);
                    FrameWriter.End(error.Writer, start, FrameType.Error);
                    long at = ArrivalTime(closing, error.Length);
                    _inFlight.Enqueue(new Delivery(at, ++_seq, closing.Id, error, false), (at, _seq));
                    _inFlight.Enqueue(new Delivery(at, ++_seq, closing.Id, null, true), (at, _seq));
                }
                break;
            case CommandKind.Dial:
                _dials.Enqueue((node, c.Text!, c.DialAs)); // connects on the next step, like a real dial
                break;
            case CommandKind.Sync:
                long takes = SyncMicros?.Invoke(node.Id) ?? 0;
                if (takes > 0) _syncs.Enqueue((node, c.Work!), (Clock.NowMicros + takes, ++_seq));
                else Sync(node, c.Work!);
                break;
        }
    }

    /// <summary>Runs a group fsync and tells the engine, as EngineHost does (the engine is ticked next).</summary>
    private void Sync(Node node, Action work)
    {
        try
        {
            work();
            node.Engine.OnSynced();
        }
        catch (DiskFailedException e)
        {
            StopOnDiskFailure(node, e);
        }
    }

    /// <summary>When a frame of <paramref name="bytes"/> sent now arrives: after the sender is free, transmission, latency and jitter, never before the previous frame.</summary>
    private long ArrivalTime(Link link, int bytes)
    {
        var profile = link.Profile ??= _profile(link.From.Id, link.To.Id);
        if (_slowed.Count > 0 && _slowed.TryGetValue(Pair(link.From.Id, link.To.Id), out int factor)) profile = profile.Slowed(factor);
        long now = Clock.NowMicros;
        long sent = now;
        if (profile.BytesPerMilli > 0)
        {
            sent = Math.Max(now, link.BusyUntil) + bytes * 1000L / profile.BytesPerMilli;
            link.BusyUntil = sent;
        }
        long jitter = profile.JitterMicros > 0 ? _random.NextInt64(profile.JitterMicros + 1) : 0;
        long at = Math.Max(sent + profile.LatencyMicros + jitter, link.LastArrival);
        link.LastArrival = at;
        return at;
    }

    /// <summary>Connects node <paramref name="from"/> to <paramref name="to"/>'s <paramref name="port"/> now (a learner dialing a relay's learner port).</summary>
    public void Connect(string from, string to, PortKind port) => Dial(_nodes[from], to, port);

    private void Dial(Node from, string to, PortKind? port = null, NodeKind dialAs = 0)
    {
        if (!_nodes.TryGetValue(to, out var target) || !target.Up || _cut.Contains(Pair(from.Id, to)) || _silenced.Contains(Pair(from.Id, to)))
        {
            DialFailed(from, to, "connection refused");
            return;
        }
        port ??= from.Engine.LocalHello.Kind switch { NodeKind.Learner => PortKind.Learner, NodeKind.Publisher => PortKind.Publish, _ => PortKind.Peer };
        var hello = dialAs == NodeKind.Voter ? from.Engine.LocalHello with { Kind = NodeKind.Voter } : from.Engine.LocalHello;
        var refusal = target.Engine.CheckPeer(hello, port.Value);
        if (refusal is not null)
        {
            DialFailed(from, to, refusal.Message);
            return;
        }
        int outbound = ++_nextLink, inbound = ++_nextLink;
        _links[outbound] = new Link(outbound, from, target, inbound);
        _links[inbound] = new Link(inbound, target, from, outbound);
        Mix((ulong)outbound);
        if (!Connected(target, inbound, new PeerInfo(hello.NodeId, hello.Kind, hello.Epoch, port.Value, hello.Capabilities))) return;
        if (!_links.ContainsKey(outbound)) return;
        var back = target.Engine.LocalHello;
        Connected(from, outbound, new PeerInfo(back.NodeId, dialAs == NodeKind.Voter ? NodeKind.Voter : back.Kind, back.Epoch, PortKind.Outbound, back.Capabilities & hello.Capabilities));
    }

    private void DialFailed(Node node, string to, string reason)
    {
        try
        {
            node.Engine.OnDialFailed(to, reason);
        }
        catch (DiskFailedException e)
        {
            StopOnDiskFailure(node, e);
            return;
        }
        Settle(node);
    }

    private bool Connected(Node node, int connection, PeerInfo peer)
    {
        try
        {
            node.Engine.OnConnected(connection, peer);
        }
        catch (DiskFailedException e)
        {
            StopOnDiskFailure(node, e);
            return false;
        }
        Settle(node);
        return node.Up;
    }

    /// <summary>
    /// The end of a run: every connection drops (engines free what they hold per connection: zstd contexts,
    /// pooled buffers), live engines are disposed, frames still in flight go back to the pool. Not part of the trace.
    /// </summary>
    public void Shutdown()
    {
        DropWhere(static _ => true);
        foreach (var node in _order)
            if (node.Up && node.Engine is IDisposable disposable) disposable.Dispose();
        while (_inFlight.TryDequeue(out var d, out _)) d.Frame?.Release();
        _dials.Clear();
    }

    /// <summary>Mixes an outside event (a fault) into the trace.</summary>
    public void Note(string what)
    {
        foreach (char c in what) Mix(c);
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
