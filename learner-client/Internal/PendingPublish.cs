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

    /// <summary>The encoded request while it waits for room; the connection owns it once sent.</summary>
    public FrameBuffer? Frame { get; private set; }

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
    }

    public ValueTask<PublishResult> Task => new(this, _core.Version);

    /// <summary>Cancels the wait for room through <paramref name="cancel"/>, which the client calls under its lock.</summary>
    public void CancelWith(CancellationToken ct, Action<object?, CancellationToken> cancel)
    {
        _hasCancellation = true;
        _cancellation = ct.UnsafeRegister(cancel, this);
    }

    /// <summary>Leaves the waiting state: the frame goes to the caller (to send or release) and the cancellation is dropped.</summary>
    public FrameBuffer TakeFrame(PublishState next)
    {
        var frame = Frame!;
        Frame = null;
        State = next;
        if (_hasCancellation && !_cancellation.Unregister()) _reusable = false;
        _hasCancellation = false;
        return frame;
    }

    public void Succeed(PublishResult result)
    {
        State = PublishState.Done;
        _core.SetResult(result);
    }

    public void Fail(Exception error)
    {
        State = PublishState.Done;
        _core.SetException(error);
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
