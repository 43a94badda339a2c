namespace GeoRelay.Topology;

/// <summary>
/// Cluster-wide settings from the <c>defaults:</c> section of the topology file. Every key is
/// optional; the doc comment of each property names its YAML key, default and unit.
/// </summary>
public sealed record ClusterDefaults
{
    /// <summary><c>heartbeat</c>: how often idle connections send a heartbeat. Default 100ms.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary><c>failover-after</c>: a relay silent this long is abandoned for the next one of its
    /// datacenter. Default 500ms; must be longer than <see cref="Heartbeat"/>.</summary>
    public TimeSpan FailoverAfter { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary><c>failback-after</c>: once the leader has failed over from a datacenter's preferred relay, that relay
    /// must answer the leader's probes for this long without a break before the datacenter moves back to it. Default 10s.</summary>
    public TimeSpan FailbackAfter { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary><c>max-learners</c>: learners one node serves at most (a node's own <c>max-learners</c> overrides it);
    /// past it a learner is refused with a hint naming another relay. Default: no limit but the connection limits.</summary>
    public int? MaxLearners { get; init; }

    /// <summary><c>segment-format</c>: the format of log segments nodes create: 2 (magic bytes and a format version) or 1
    /// (headerless, for a rolling upgrade that may still be rolled back to a build before the header, which would cut a
    /// headered segment as torn). Either is always read. Default 2.</summary>
    public int SegmentFormat { get; init; } = 2;

    /// <summary><c>compaction</c>: <c>keyed</c> keeps the latest entry of every key however old, like a compacted Kafka
    /// topic: before retention drops a segment its entries are folded into the node's keyed state (file
    /// <c>keyed-state</c>), which learners can start from (a snapshot) and which keeps every kept entry's index. Default
    /// <c>none</c>: retention drops entries outright.</summary>
    public LogCompaction Compaction { get; init; } = LogCompaction.None;

    /// <summary><c>tombstone-retention</c>: how long keyed compaction keeps a tombstone (an entry deleting its key) before
    /// the tombstone itself goes. Default 24h.</summary>
    public TimeSpan TombstoneRetention { get; init; } = TimeSpan.FromHours(24);

    /// <summary><c>elections</c>: the voters (the <c>leader</c> node and the members) elect the leader among themselves, and
    /// another voter takes over when the leader is gone; <c>leader</c> then names the preferred leader. Default true;
    /// false keeps the <c>leader</c> node leading always (the epoch from <c>georelay leader --epoch</c>).</summary>
    public bool Elections { get; init; } = true;

    /// <summary><c>election-timeout</c>: a voter that hears nothing from a leader for this long (randomized per node
    /// between it and twice it) calls an election; a leader that hears from no quorum for this long steps down.
    /// Default 1s; at least twice <see cref="Heartbeat"/>, since the leader's heartbeats are what keep followers quiet.</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary><c>batch.max-bytes</c>: a batch is sent once it holds this many bytes of entries.
    /// Default 1MiB; at most <see cref="MaxFrame"/> and <see cref="Window"/>.</summary>
    public long BatchMaxBytes { get; init; } = 1L << 20;

    /// <summary>
    /// <c>batch.linger</c>: the least time between two flushes, and two batches to a datacenter, under load. Default 0:
    /// natural batching, where a node sends as soon as it is free and whatever arrived meanwhile leaves as one batch;
    /// a linger only makes batches bigger, at the price of that much latency.
    /// </summary>
    public TimeSpan BatchLinger { get; init; } = TimeSpan.Zero;

    /// <summary><c>window</c>: un-acked bytes in flight per datacenter before publishers are held back. Default 64MiB.</summary>
    public long Window { get; init; } = 64L << 20;

    /// <summary><c>compression.level</c>: zstd level 1..22, or 0 for no compression. Default 1.</summary>
    public int CompressionLevel { get; init; } = 1;

    /// <summary><c>compression.local-level</c>: zstd level for links inside one datacenter (relay to its
    /// members, leader to the members of its own datacenter). Default 0 (off): bandwidth inside a datacenter
    /// is cheap, and zstd there cost a relay a compression per member and every member a decompression.</summary>
    public int LocalCompressionLevel { get; init; } = 0;

    /// <summary><c>retention.max-bytes</c>: log bytes a relay or member keeps for catch-up. Default 256MiB.</summary>
    public long RetentionMaxBytes { get; init; } = 256L << 20;

    /// <summary><c>retention.max-age</c>: the oldest entry a relay or member keeps for catch-up. Default 1h.</summary>
    public TimeSpan RetentionMaxAge { get; init; } = TimeSpan.FromHours(1);

    /// <summary><c>max-frame</c>: the largest frame a node accepts; a longer one closes the connection.
    /// Default 16MiB, at most 1GiB.</summary>
    public long MaxFrame { get; init; } = 16L << 20;

    /// <summary><c>learner-backlog</c>: unsent bytes queued for one learner before it is disconnected
    /// with <c>SlowConsumer</c>. Default 8MiB.</summary>
    public long LearnerBacklog { get; init; } = 8L << 20;

    /// <summary><c>delivery</c>: when relays and members hand entries to learners. Default
    /// <see cref="LearnerDelivery.Committed"/>.</summary>
    public LearnerDelivery Delivery { get; init; } = LearnerDelivery.Committed;

    /// <summary><c>handshake-timeout</c>: a connection that has not completed its handshake by then is closed. Default 5s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary><c>idle-timeout</c>: a connection that has sent nothing for this long is closed. Peers send
    /// heartbeats; learner and publisher clients send one when idle. Default 60s.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary><c>frame-timeout</c>: once the first bytes of a frame arrive on an accepted connection, the rest
    /// must follow within this long or the connection is closed (a peer dribbling a byte at a time keeps
    /// <see cref="IdleTimeout"/> from ever firing). Default 10s; it must cover the largest frame at the slowest link's rate.</summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary><c>max-connections-per-port</c>: open connections (handshaking included) one listening port
    /// takes; more are refused. Default 10000.</summary>
    public int MaxConnectionsPerPort { get; init; } = 10_000;

    /// <summary><c>max-connections-per-address</c>: open connections one remote IP address may hold on one listening port.
    /// Default 1000.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 1_000;

    /// <summary><c>max-subscribes-per-second</c>: Subscribe requests one learner connection may send per second;
    /// past it the connection is closed. Default 10.</summary>
    public int MaxSubscribesPerSecond { get; init; } = 10;

    /// <summary><c>fsync</c>: whether logs are fsynced before entries are acked. Default true; turn
    /// off only for tests and benchmarks, since acks then no longer mean durable.</summary>
    public bool Fsync { get; init; } = true;

    /// <summary>Every setting at its default.</summary>
    public static ClusterDefaults Default { get; } = new();

    /// <summary>Compression on (level above 0).</summary>
    public bool CompressionEnabled => CompressionLevel > 0;
}

/// <summary>What retention does with entries it drops (<c>defaults.compaction</c>).</summary>
public enum LogCompaction : byte
{
    /// <summary><c>none</c>: dropped entries are gone; a learner that needs them gets <c>SnapshotRequired</c>.</summary>
    None,
    /// <summary><c>keyed</c>: each key's latest entry is kept, at its index; a tombstone deletes its key.</summary>
    Keyed,
}

/// <summary>When relays and members hand entries to their learners (<c>defaults.delivery</c>).</summary>
public enum LearnerDelivery : byte
{
    /// <summary><c>committed</c>: once the entry is committed (durable on a quorum); a leader change never takes it back.</summary>
    Committed,
    /// <summary>
    /// <c>durable</c>: once the entry is durable on the serving node, before it commits. Faster, but a leader change can
    /// take back entries a learner received; the learner is then told with a <c>Truncated</c> frame.
    /// </summary>
    Durable,
}
