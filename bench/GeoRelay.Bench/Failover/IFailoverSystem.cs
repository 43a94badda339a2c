namespace GeoRelay.Bench.Failover;

/// <summary>
/// One replicated log under test in the failover benchmark: three voters (one per region) behind the WAN links, a
/// publisher near the leader that retries on its own, one subscriber per region.
/// </summary>
public interface IFailoverSystem : IAsyncDisposable
{
    string Name { get; }
    string Description { get; }

    /// <summary>Starts the servers, waits until the preferred one leads, connects the publisher and the subscribers.</summary>
    Task StartAsync(FailoverRecorder recorder, CancellationToken cancellationToken);

    /// <summary>
    /// Hands <paramref name="seq"/> to the publisher without waiting; it is retried until acknowledged (as committed on
    /// a quorum) or the system is stopped, and <see cref="FailoverRecorder.Acked"/> is told.
    /// </summary>
    void Publish(long seq);

    /// <summary>SIGKILLs the process that leads now; says which one.</summary>
    Task<string> KillLeaderAsync();

    /// <summary>What the servers say about themselves now (GeoRelay: every voter's /status), for a cluster that misbehaves.</summary>
    Task<string> DiagnoseAsync();

    /// <summary>What the surviving processes logged about the leader change, relative to <paramref name="killWallClock"/>.</summary>
    IReadOnlyList<string> Timeline(DateTime killWallClock);
}
