using GeoRelay.Engines;

namespace GeoRelay.Relay.Learners;

/// <summary>What the relay keeps per learner connection.</summary>
internal sealed class LearnerSession(int connection, PeerInfo peer, string? remote)
{
    public int Connection { get; } = connection;
    public PeerInfo Peer { get; } = peer;
    public string? Remote { get; } = remote;

    public LearnerState State = LearnerState.AwaitingSubscribe;
    public ulong From;
    /// <summary>The next index this learner needs: everything below it was sent (or filtered out and covered by <c>through</c>).</summary>
    public ulong Next;
    public ulong Delivered;
    /// <summary>Highest index up to which the learner is known to hold our entries: sent on this connection, or compared at Subscribe.</summary>
    public ulong Known;
    /// <summary>The learner's last entry as its Subscribe named it, to compare with ours once retention holds it; 0 when done or none.</summary>
    public ulong CheckIndex;
    public ulong CheckEpoch;
    public byte[]? Prefix;
    public LearnerGroup? Group;

    /// <summary>The snapshot being sent (its entries, null when none) and the position of its next entry.</summary>
    public IReadOnlyList<GeoRelay.Storage.LogEntry>? Transfer;
    public ulong TransferThrough;
    public int TransferPos;
    /// <summary>The next chunk is the snapshot's first (a new transfer, not a resumed one).</summary>
    public bool TransferBegins;

    /// <summary>A relay feed was told it is level with the head (see <c>LearnerFanout.AnnounceLevelRelayFeeds</c>).</summary>
    public bool Announced;

    /// <summary>Another relay of the datacenter taking its feed here (<see cref="GeoRelay.Codec.Frames.SubscribeFlags.RelayFeed"/>).</summary>
    public bool IsRelayFeed => Peer.Kind == GeoRelay.Codec.Frames.NodeKind.Relay && Prefix is { Length: 0 };

    /// <summary>Position in <see cref="Group"/>'s member list, for O(1) removal.</summary>
    public int GroupSlot = -1;

    /// <summary>Position in the fan-out's catching-up list, or -1.</summary>
    public int CatchUpSlot = -1;

    /// <summary>When a frame was last queued for this learner (a heartbeat follows a second of nothing).</summary>
    public long LastSentMicros;

    /// <summary>Bytes put in the outbox during the call numbered <see cref="PendingCall"/>; not yet in the transport's queue.</summary>
    public long PendingBytes;
    public long PendingCall;
}

/// <summary>Learners that share a filter (none, or one key prefix): one Deliver frame per chunk serves them all.</summary>
internal sealed class LearnerGroup(byte[]? prefix, string key)
{
    public byte[]? Prefix { get; } = prefix;
    public string Key { get; } = key;
    public List<LearnerSession> Members { get; } = new();

    public void Add(LearnerSession session)
    {
        session.Group = this;
        session.GroupSlot = Members.Count;
        Members.Add(session);
    }

    public void Remove(LearnerSession session)
    {
        int slot = session.GroupSlot;
        int last = Members.Count - 1;
        if (slot != last)
        {
            var moved = Members[last];
            Members[slot] = moved;
            moved.GroupSlot = slot;
        }
        Members.RemoveAt(last);
        session.GroupSlot = -1;
        session.Group = null;
    }
}
