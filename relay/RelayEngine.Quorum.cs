namespace GeoRelay.Relay;

/// <summary>
/// Committed delivery without the extra round trip. The leader's batches carry the voters' progress (its durable index
/// and the highest match indexes of the voters outside this datacenter); this relay hears its own members' acks a WAN
/// round trip before the leader does. When those together show the leader's quorum holding an entry of the leader's
/// epoch, that entry and every one before it are committed (Raft §5.4.2), so learners get them without waiting for the
/// leader's commit index to come back. See docs/consensus.md, "Committed delivery without the extra round trip".
/// </summary>
public sealed partial class RelayEngine
{
    /// <summary>The voters' progress from the current upstream's last batch (empty when it sends none: an older leader).</summary>
    private readonly List<ulong> _voterProgress = new();
    /// <summary>The epoch of the batch <see cref="_voterProgress"/> came with.</summary>
    private ulong _progressEpoch;
    private ulong[] _quorumScratch = [];

    /// <summary>
    /// The highest retained index a quorum is seen to hold of the current leader's log, when that entry is of the
    /// leader's epoch; else 0. Counted as the leader counts (<c>RequiredAcks</c> members and the leader itself), each
    /// member only as far as its log is known to match the leader's.
    /// </summary>
    private ulong CommittedByQuorum()
    {
        // A member that heard of a newer term raised ours: the leader these indexes describe may be deposed.
        if (_upstream is null || _voterProgress.Count == 0 || _progressEpoch != _highestEpoch) return 0;
        int need = _topology.RequiredAcks;
        if (need <= 0) return 0;
        int size = _members.Length + _voterProgress.Count - 1;
        if (_quorumScratch.Length < size) _quorumScratch = new ulong[size];
        int n = 0;
        foreach (var m in _members)
            if (m.Voting && m.Id != _upstream.Peer.NodeId) // a member that leads counts as the leader, in the progress
                _quorumScratch[n++] = MatchedWithLeader(m);
        for (int i = 1; i < _voterProgress.Count; i++) _quorumScratch[n++] = _voterProgress[i];
        if (n < need) return 0;
        Array.Sort(_quorumScratch, 0, n);
        ulong held = Math.Min(_quorumScratch[n - need], _voterProgress[0]);
        // Only what retention holds of the leader's log, and only an entry of its epoch commits by counting: an older
        // epoch's entry can be on a quorum and still be overwritten. Epochs never go down along a log, so an older
        // entry there means none of the leader's epoch at or below it.
        held = Math.Min(held, Math.Min(_matched, _retention.LastIndex));
        if (held < _retention.FirstIndex || !_retention.TryGet(held, out var entry) || entry.Epoch != _progressEpoch) return 0;
        return held;
    }

    /// <summary>
    /// How far a member's log is known to be the current leader's, from its last ack: through its durable index when the
    /// entry there is the leader's (one written in the leader's epoch, or the one retention holds there within what is
    /// matched), by the log matching property; else not at all (its commit index is left to the leader's count).
    /// </summary>
    private ulong MatchedWithLeader(MemberLink m)
    {
        if (m.Durable == 0) return 0;
        if (m.DurableEpoch == _progressEpoch) return m.Durable;
        if (m.Durable <= _matched && _retention.TryGet(m.Durable, out var held) && held.Epoch == m.DurableEpoch) return m.Durable;
        return 0;
    }
}
