namespace GeoRelay.LearnerClient;

/// <summary>
/// A publish that got no acknowledgement: the connection to the leader closed, or the client was disposed, first.
/// <see cref="WasSent"/> says whether its entries can have reached the log.
/// </summary>
/// <param name="message">What happened to the publish, and why.</param>
/// <param name="wasSent">Whether the request had been handed to the connection.</param>
/// <param name="inner">
/// The connection's failure, when there was one: a <see cref="ClientRefusedException"/> when the leader closed it
/// refusing the token (a key outside its prefixes, or expired or revoked), which a new connection would meet too.
/// </param>
public sealed class PublishFailedException(string message, bool wasSent, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>
    /// True when the request had gone to the connection: the leader may have appended its entries, so publishing
    /// them again may append them twice. False when it was still waiting for room: nothing of it reached the leader.
    /// </summary>
    public bool WasSent { get; } = wasSent;
}
