namespace GeoRelay.LearnerClient;

/// <summary>One entry of a batch for <see cref="PublisherClient.PublishAsync(IReadOnlyList{PublishEntry}, Codec.Frames.WaitLevel, CancellationToken)"/>.</summary>
/// <param name="Key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
/// <param name="Payload">The entry's bytes.</param>
/// <param name="IsTombstone">
/// The entry deletes <paramref name="Key"/> (keyed compaction drops the key; state machines and <c>georelay state</c>
/// forget it). A flag, so an empty payload stays a value; see <see cref="Tombstone"/>.
/// </param>
public readonly record struct PublishEntry(ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Payload, bool IsTombstone = false)
{
    /// <summary>An entry that deletes <paramref name="key"/>.</summary>
    public static PublishEntry Tombstone(ReadOnlyMemory<byte> key) => new(key, ReadOnlyMemory<byte>.Empty, IsTombstone: true);
}

/// <summary>One entry of a typed batch for <see cref="PublisherClient.PublishAsync{T}(IReadOnlyList{PublishEntry{T}}, Codec.Frames.WaitLevel, CancellationToken)"/>.</summary>
/// <typeparam name="T">The value's type; <see cref="GeoRelayClientOptions.Serializers"/> must have a serializer for it.</typeparam>
/// <param name="Key">The entry's key (at most 1024 bytes; learners can filter on its prefix); empty for none.</param>
/// <param name="Value">The value, serialized into the entry's payload.</param>
public readonly record struct PublishEntry<T>(ReadOnlyMemory<byte> Key, T Value);
