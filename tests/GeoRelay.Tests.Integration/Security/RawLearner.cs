using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.Tests.Integration.Security;

/// <summary>
/// A learner on one plain TCP connection, no reconnects: Hello with a token, Subscribe from 1, then it counts what is
/// delivered until the daemon hangs up, and keeps why. Whether this very connection stayed up is what it tells.
/// </summary>
internal sealed class RawLearner : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Task _reading;
    private readonly object _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name { get; }
    public bool Welcomed { get; private set; }
    /// <summary>The highest index delivered on this connection.</summary>
    public ulong LastIndex { get; private set; }
    /// <summary>The daemon hung up (after the Error frame, if it sent one).</summary>
    public bool Closed { get; private set; }
    public (CodecError Code, string Message)? Error { get; private set; }

    private RawLearner(string name, Socket socket)
    {
        Name = name;
        _socket = socket;
        _reading = Task.Run(ReadAsync);
    }

    /// <param name="from">The local address to connect from (any of 127/8 on Linux), or null for the system's choice.</param>
    public static async Task<RawLearner> ConnectAsync(EndPoint learnerPort, string name, string cluster, string token, IPAddress? from = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (from is not null) socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(learnerPort);
        var hello = Hello.ForThisBuild(name, NodeKind.Learner, 0, cluster, 0, Capabilities.None, Encoding.ASCII.GetBytes(token));
        await socket.SendAsync(HostileClient.HelloFrame(hello));
        await socket.SendAsync(HostileClient.Frame(FrameType.Subscribe, new Subscribe(1, default, SubscribeFlags.None).Write));
        return new RawLearner(name, socket);
    }

    /// <summary>Tells the daemon the application has processed everything through <paramref name="index"/>.</summary>
    public async Task ConfirmAsync(ulong index) =>
        await _socket.SendAsync(HostileClient.Frame(FrameType.Confirm, new Confirm(index).Write));

    /// <summary>Waits until <paramref name="condition"/> holds for this learner, or fails saying what it saw.</summary>
    public async Task WaitUntilAsync(Func<RawLearner, bool> condition, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (condition(this)) return;
                changed = _changed.Task;
            }
            var left = deadline - DateTime.UtcNow;
            try
            {
                if (left <= TimeSpan.Zero) throw new TimeoutException();
                await changed.WaitAsync(left);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"{Name}: not {what} within {timeout.TotalSeconds} s ({this})");
            }
        }
    }

    public override string ToString() =>
        $"welcomed={Welcomed} last={LastIndex} closed={Closed} error={(Error is { } e ? $"{e.Code}: {e.Message}" : "none")}";

    private async Task ReadAsync()
    {
        try
        {
            await using var stream = new NetworkStream(_socket, ownsSocket: false);
            await HostileClient.ReadFramesAsync(stream, frame => { OnFrame(frame); return true; }, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
        Changed(() => Closed = true);
    }

    private void OnFrame(in Frame frame)
    {
        switch (frame.Type)
        {
            case FrameType.Welcome:
                Changed(() => Welcomed = true);
                break;
            case FrameType.Deliver:
                // Indexes may skip (internal entries go to no learner): the last record names the last index.
                var records = DeliverFrame.Read(frame.Payload, out _, out ulong count, out _);
                ulong last = 0;
                while (records.TryNext(out var e)) last = e.Index;
                if (count > 0) Changed(() => LastIndex = Math.Max(LastIndex, last));
                break;
            case FrameType.Error:
                var error = ErrorFrame.Read(frame.Payload);
                Changed(() => Error = (error.Code, error.Message));
                break;
        }
    }

    private void Changed(Action update)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            update();
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _reading;
    }
}
