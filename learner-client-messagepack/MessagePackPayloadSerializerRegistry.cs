using System.Buffers;
using System.Collections.Concurrent;
using MessagePack;

// The SDK's namespace, so the registry needs no using of its own next to the clients.
namespace GeoRelay.LearnerClient;

/// <summary>
/// Raw payloads as <see cref="PayloadSerializerRegistry.Default"/> does; every other type as MessagePack through
/// MessagePack-CSharp.
/// </summary>
/// <param name="options">
/// Serializer options. Default null: the standard resolver (types marked <c>[MessagePackObject]</c>, primitives,
/// collections) with <see cref="MessagePackSecurity.UntrustedData"/>, since a learner reads what any publisher
/// wrote. For plain classes without attributes use <c>ContractlessStandardResolver.Options</c>.
/// </param>
public sealed class MessagePackPayloadSerializerRegistry(MessagePackSerializerOptions? options = null) : IPayloadSerializerRegistry
{
    private readonly MessagePackSerializerOptions _options = options ?? MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);
    private readonly ConcurrentDictionary<Type, object> _serializers = new();

    /// <inheritdoc/>
    public IPayloadSerializer<T> GetSerializer<T>() =>
        PayloadSerializerRegistry.Default.GetSerializer<T>()
        ?? (IPayloadSerializer<T>)_serializers.GetOrAdd(typeof(T), static (_, options) => new MessagePackPayloadSerializer<T>(options), _options);

    private sealed class MessagePackPayloadSerializer<T>(MessagePackSerializerOptions options) : IPayloadSerializer<T>
    {
        public void Serialize(IBufferWriter<byte> destination, T value) => MessagePackSerializer.Serialize(destination, value, options);

        public T Deserialize(ReadOnlyMemory<byte> payload) => MessagePackSerializer.Deserialize<T>(payload, options);
    }
}
