namespace GeoRelay.LearnerClient;

/// <summary><see cref="PublisherClient.ConnectAsync(PublisherClientOptions, CancellationToken)"/> reached no endpoint.</summary>
/// <param name="message">Which endpoints were tried, and the last failure.</param>
/// <param name="inner">The last endpoint's failure.</param>
public sealed class PublisherConnectException(string message, Exception? inner) : Exception(message, inner);
