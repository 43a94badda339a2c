using System.Threading.Tasks.Sources;
using GeoRelay.Transport;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// One publish from the call to its acknowledgement, and the source of the ValueTask the caller awaits; pooled
/// by its <see cref="PublisherClient"/> so a publish allocates nothing. Every field is touched under the client's lock.
/// </summary>
internal sealed class PendingPublish(PublisherClient owner) : IValueTaskSource<PublishResult>
{
    // Completions happen under the client's lock: the caller's continuation must not run there.
    private ManualResetValueTaskSourceCore<PublishResult> _core = new() { RunContinuationsAsynchronously = true };

    public PublisherClient Owner { get; } = owner;
    public PublishState State { get; private set; }
    public ulong Request { get; private set; }
    public int Entries { get; private set; }
    public int Bytes { get; private set; }

    /// <summary>
    /// The encoded request, held until the publish completes: a connection gets a reference of its own for each send,
    /// so the same bytes (request id, producer id and sequences) can go out again after a reconnect.
    /// </summary>
    public FrameBuffer? Frame { get; private set; }

    /// <summary>The order in which it was sent (sends numbered from 1); a reconnect sends again in this order.</summary>
    public ulong SendOrder { get; private set; }

    /// <summary>Whether a connection took the request (it may have reached the leader); false while it waits, or after a connection refused it as closing.</summary>
    public bool OnWire { get; set; }

    private CancellationTokenRegistration _cancellation;
    private bool _hasCancellation;

    // False once a cancellation callback may still hold this object: it is then left to the GC, not reused.
    private bool _reusable = true;

    public void Start(ulong request, FrameBuffer frame, int entries)
    {
        State = PublishState.Waiting;
        Request = request;
        Frame = frame;
        Entries = entries;
        Bytes = frame.Length;
        SendOrder = 0;
        OnWire = false;
    }

    public ValueTask<PublishResult> Task => new(this, _core.Version);

    /// <summary>Cancels the wait for room through <paramref name="cancel"/>, which the client calls under its lock.</summary>
    public void CancelWith(CancellationToken ct, Action<object?, CancellationToken> cancel)
    {
        _hasCancellation = true;
        _cancellation = ct.UnsafeRegister(cancel, this);
    }

    /// <summary>Leaves the waiting state for <see cref="PublishState.Sent"/> (numbered <paramref name="sendOrder"/>); the cancellation is dropped.</summary>
    public void MarkSent(ulong sendOrder)
    {
        SendOrder = sendOrder;
        DropCancellation();
        State = PublishState.Sent;
    }

    private void DropCancellation()
    {
        if (_hasCancellation && !_cancellation.Unregister()) _reusable = false;
        _hasCancellation = false;
    }

    public void Succeed(PublishResult result)
    {
        Finish();
        _core.SetResult(result);
    }

    public void Fail(Exception error)
    {
        Finish();
        _core.SetException(error);
    }

    private void Finish()
    {
        DropCancellation();
        Frame?.Release();
        Frame = null;
        State = PublishState.Done;
    }

    public PublishResult GetResult(short token)
    {
        bool current = token == _core.Version;
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            if (current && _reusable)
            {
                _core.Reset();
                Owner.Return(this);
            }
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

internal enum PublishState : byte
{
    /// <summary>Encoded, waiting for room in the in-flight window.</summary>
    Waiting,

    /// <summary>Handed to the connection; waits for the leader's acknowledgement.</summary>
    Sent,

    /// <summary>Completed: acknowledged, failed or cancelled.</summary>
    Done,
}
