namespace GeoRelay.LearnerClient;

/// <summary>
/// Finds the serializer for a type; set one on <see cref="GeoRelayClientOptions.Serializers"/>. Built in:
/// <see cref="PayloadSerializerRegistry.Default"/> (raw payloads) and <see cref="JsonPayloadSerializerRegistry"/>;
/// the package GeoRelay.LearnerClient.MessagePack adds <c>MessagePackPayloadSerializerRegistry</c>.
/// </summary>
public interface IPayloadSerializerRegistry
{
    /// <summary>The serializer for <typeparamref name="T"/>, or null when this registry has none.</summary>
    /// <remarks>Called per typed publish: return a cached instance, not a new one.</remarks>
    IPayloadSerializer<T>? GetSerializer<T>();
}
