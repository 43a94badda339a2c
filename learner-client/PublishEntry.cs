namespace GeoRelay.LearnerClient;

/// <summary>One entry of a batch for <see cref="PublisherClient.PublishAsync(IReadOnlyList{PublishEntry}, Codec.Frames.WaitLevel, CancellationToken)"/>.</summary>
/// <param name="Key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
/// <param name="Payload">The entry's bytes.</param>
public readonly record struct PublishEntry(ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload);

/// <summary>One entry of a typed batch for <see cref="PublisherClient.PublishAsync{T}(IReadOnlyList{PublishEntry{T}}, Codec.Frames.WaitLevel, CancellationToken)"/>.</summary>
/// <typeparam name="T">The value's type; <see cref="GeoRelayClientOptions.Serializers"/> must have a serializer for it.</typeparam>
/// <param name="Key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
/// <param name="Value">The value, serialized into the entry's payload.</param>
public readonly record struct PublishEntry<T>(ReadOnlyMemory<byte> Key, T Value);
