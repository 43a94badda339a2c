using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;

namespace GeoRelay.Tests.Integration.Partition;

/// <summary>
/// Load that follows the leader: requests of numbered entries (<c>load N</c>), a few in flight, each awaited as
/// committed, through one <see cref="PublisherClient"/> given every voter's publish address. When the connection
/// fails, or no acknowledgement comes for <see cref="Silence"/> (a partition resets nothing, so silence is all a
/// client sees), it connects a new client, which finds whoever leads. What was in flight then is not sent again: its
/// fate is unknown, so each payload is published once and two copies in a log are the cluster's fault.
/// </summary>
/// <remarks>
/// A client that reconnects and resends by itself after a leader change never lets a failure through, and then this
/// keeps publishing on the one client (<see cref="Connections"/> stays 1).
/// </remarks>
internal sealed class FollowingPublisher(IReadOnlyList<string> endpoints)
{
    private const int EntriesPerRequest = 20;
    private const int RequestsInFlight = 4;
    /// <summary>
    /// At most one request per this interval (2,000 entries/s): load shaping, not synchronisation. Flat out, a cluster
    /// with natural batching committed ~26,000 entries/s here, and a leader cut off for 30 s then had ~900,000 entries
    /// to catch up after the heal, which took longer than the test's patience on a loaded machine.
    /// </summary>
    private static readonly TimeSpan RequestSpacing = TimeSpan.FromMilliseconds(10);

    /// <summary>How long an acknowledgement may take before the client is taken for cut off.</summary>
    public static readonly TimeSpan Silence = TimeSpan.FromSeconds(3);

    public readonly record struct Ack(ulong Index, string Payload, string Endpoint);

    private readonly Lock _gate = new();
    private readonly List<Ack> _acked = new();
    private readonly List<string> _unknown = new();
    private readonly List<string> _failures = new();
    private int _connections;
    private ulong _next;

    /// <summary>Entries acknowledged as committed, with where the acknowledgement came from.</summary>
    public List<Ack> Acked
    {
        get { lock (_gate) return [.. _acked]; }
    }

    /// <summary>Payloads sent on a connection that failed before their acknowledgement: committed or not, unknown.</summary>
    public List<string> Unknown
    {
        get { lock (_gate) return [.. _unknown]; }
    }

    /// <summary>Why each client was given up (or failed to connect), in order.</summary>
    public List<string> Failures
    {
        get { lock (_gate) return [.. _failures]; }
    }

    /// <summary>Clients connected so far.</summary>
    public int Connections
    {
        get { lock (_gate) return _connections; }
    }

    public int AckedThrough(string endpoint)
    {
        lock (_gate) return _acked.Count(a => a.Endpoint == endpoint);
    }

    public int AckedCount
    {
        get { lock (_gate) return _acked.Count; }
    }

    /// <summary>Publishes until <paramref name="stop"/>, then waits for what is in flight (at most <see cref="Silence"/>).</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var options = PublisherClientOptions.Default with
        {
            Endpoints = [.. endpoints],
            // A cut-off endpoint answers nothing, so each one tried costs this much.
            ConnectTimeout = TimeSpan.FromSeconds(2),
        };
        while (!stop.IsCancellationRequested)
        {
            PublisherClient client;
            try
            {
                client = await PublisherClient.ConnectAsync(options, stop);
            }
            catch (PublisherConnectException e)
            {
                // Nobody leads yet (every voter refuses NotLeader, or is silent): go round again.
                Failed($"connect: {e.Message}");
                await Task.Delay(100, CancellationToken.None); // back-off between rounds, not synchronisation
                continue;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            lock (_gate) _connections++;
            await using (client)
            {
                await PublishOnAsync(client, stop);
            }
        }
    }

    /// <summary>Publishes on one client until it fails or falls silent, or until <paramref name="stop"/> (then drains).</summary>
    private async Task PublishOnAsync(PublisherClient client, CancellationToken stop)
    {
        var inFlight = new Queue<(List<string> Payloads, Task<PublishResult> Ack)>();
        using var pace = new PeriodicTimer(RequestSpacing);
        try
        {
            while (true)
            {
                while (!stop.IsCancellationRequested && inFlight.Count < RequestsInFlight)
                {
                    if (inFlight.Count > 0) await pace.WaitForNextTickAsync(CancellationToken.None);
                    var payloads = new List<string>(EntriesPerRequest);
                    for (int i = 0; i < EntriesPerRequest; i++) payloads.Add($"load {++_next}");
                    var entries = payloads.Select(p => new PublishEntry(ReadOnlyMemory<byte>.Empty, Encoding.UTF8.GetBytes(p))).ToList();
                    inFlight.Enqueue((payloads, client.PublishAsync(entries, WaitLevel.Committed).AsTask()));
                }
                if (inFlight.Count == 0) return;
                var (sent, ack) = inFlight.Peek();
                var result = await ack.WaitAsync(Silence);
                inFlight.Dequeue();
                if (result.Level != WaitLevel.Committed || result.Count != sent.Count)
                    throw new InvalidOperationException($"asked for {sent.Count} committed entries, acknowledged {result.Count} at {result.Level}");
                lock (_gate)
                    for (int i = 0; i < sent.Count; i++) _acked.Add(new Ack(result.FirstIndex + (ulong)i, sent[i], client.Endpoint));
            }
        }
        catch (Exception e) when (e is PublishFailedException or TimeoutException)
        {
            Failed($"{client.Endpoint}: {e.Message}");
            lock (_gate)
                foreach (var (payloads, _) in inFlight) _unknown.AddRange(payloads);
            // The client's dispose fails the rest; observed here so nothing goes unobserved.
            foreach (var (_, ack) in inFlight) _ = ack.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    private void Failed(string why)
    {
        lock (_gate) _failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {why}");
    }
}
