using GeoRelay.Codec.Frames;

namespace GeoRelay.Leader;

/// <summary>
/// The voters' progress on batches to relays (<see cref="Capabilities.VoterProgress"/>): a relay hears its own members'
/// acks a WAN round trip before this leader does, so with what the rest of the voters hold it can tell that a quorum
/// holds an entry of this epoch, and hand it to its learners, before our commit index comes back. See
/// docs/consensus.md, "Committed delivery without the extra round trip".
/// </summary>
public sealed partial class LeaderEngine
{
    private ulong[]? _progress;
    private ulong[]? _progressScratch;

    /// <summary>
    /// For <paramref name="dc"/>'s relay: this leader's durable index, then the highest match indexes (what <see cref="Trusted"/>
    /// accepted) of the members of the other datacenters, highest first, as many as a commit needs. The relay counts its
    /// own members from their acks. <paramref name="reach"/> is what the relay could release with all of its members
    /// holding everything: nothing beyond it is news to it.
    /// </summary>
    private ReadOnlySpan<ulong> VoterProgress(DatacenterState dc, out ulong reach)
    {
        _progress ??= new ulong[1 + _requiredAcks];
        _progressScratch ??= new ulong[_durableScratch.Length];
        int n = 0;
        foreach (var other in _datacenters)
            if (other != dc)
                foreach (var m in other.Members)
                    if (m.Voting) _progressScratch[n++] = m.Durable;
        Array.Sort(_progressScratch, 0, n);
        int count = Math.Min(n, _requiredAcks);
        _progress[0] = _log.DurableIndex;
        for (int i = 0; i < count; i++) _progress[1 + i] = _progressScratch[n - 1 - i];
        int fromElsewhere = _requiredAcks - dc.VotingMembers;
        reach = fromElsewhere <= 0 ? _progress[0] : fromElsewhere <= count ? Math.Min(_progress[0], _progress[fromElsewhere]) : 0;
        // Only an entry of this epoch commits by counting (Raft §5.4.2).
        if (reach < _ownEpochFrom) reach = 0;
        return _progress.AsSpan(0, 1 + count);
    }

    /// <summary>Whether the relay link takes the voters' progress on its batches.</summary>
    private bool TakesProgress(Link link) => _requiredAcks > 0 && (link.Channel.Peer.Capabilities & Capabilities.VoterProgress) != 0;

    /// <summary>
    /// Whether the voters' progress would let the datacenter's relay release more than it was told and than our commit
    /// index says: sent one linger after its last batch, like a commit index that moved, so the tail of a burst does not
    /// wait for the next entry or for the commit index.
    /// </summary>
    private bool ProgressUntold(DatacenterState dc)
    {
        if (dc.IsDirect || dc.RelayConnection < 0 || !dc.RelaySynced || dc.InflightBytes >= _topology.Defaults.Window) return false;
        var link = _links[dc.RelayConnection];
        if (!TakesProgress(link)) return false;
        // The reach is never past our durable index: nothing to tell (and no sort, on this per-event path) below it.
        if (_log.DurableIndex <= Math.Max(link.ProgressReachTold, _commitIndex)) return false;
        VoterProgress(dc, out ulong reach);
        return reach > link.ProgressReachTold && reach > _commitIndex;
    }
}
