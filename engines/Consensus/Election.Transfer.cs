namespace GeoRelay.Engines.Consensus;

/// <summary>
/// Leadership transfer (Raft thesis §3.10): the leader picks a target, the driver waits until the target's log
/// has caught up with the leader's and then calls <see cref="SendTimeoutNow"/>; the target campaigns at once with
/// a request that voters answer despite stickiness. The transfer ends when the old leader hears the target lead
/// (completed), hears someone else lead, steps down for another reason, or one election timeout passes (aborted).
/// </summary>
public sealed partial class Election
{
    /// <summary>
    /// Leader: begins handing leadership to <paramref name="target"/>. False (with a TransferAborted event saying
    /// why) when this node does not lead or the target is not another voter that may lead. While a transfer is
    /// open (<see cref="TransferTarget"/>) the driver should stop taking new writes, so the target can catch up.
    /// </summary>
    public bool TransferLeadership(string target, long nowMicros)
    {
        string? refusal =
            Role != RaftRole.Leader ? $"this node does not lead (it is {Role})"
            : target == Self ? "this node already leads"
            : !_otherSlots.ContainsKey(target) ? $"{target} is not a voter"
            : !CanLead(target) ? $"{target} is not a leader candidate"
            : null;
        if (refusal is not null)
        {
            Emit(ElectionEventKind.TransferAborted, target, refusal);
            return false;
        }
        if (_transferTarget == target) return true;
        if (_transferTarget is not null) AbortTransfer($"replaced by a transfer to {target}");
        _transferTarget = target;
        _transferDeadline = nowMicros + _timeoutMicros;
        _timeoutNowSent = false;
        Emit(ElectionEventKind.TransferStarted, target, null);
        return true;
    }

    /// <summary>
    /// Leader, during a transfer to <paramref name="target"/>: the target's log matches ours, so tell it to
    /// campaign. Sends at most once per transfer; false when nothing was sent.
    /// </summary>
    public bool SendTimeoutNow(string target, long nowMicros)
    {
        if (Role != RaftRole.Leader || _transferTarget != target || _timeoutNowSent) return false;
        _timeoutNowSent = true;
        Outbox.Add(new ElectionMessage(ElectionMessageKind.TimeoutNow, Self, target, Term, _lastLog(), PreVote: false, Granted: false, Transfer: true, null));
        return true;
    }

    private void AbortTransfer(string reason) => EndTransfer(ElectionEventKind.TransferAborted, reason);

    private void EndTransfer(ElectionEventKind kind, string reason)
    {
        string target = _transferTarget!;
        _transferTarget = null;
        _timeoutNowSent = false;
        Emit(kind, target, reason);
    }
}
