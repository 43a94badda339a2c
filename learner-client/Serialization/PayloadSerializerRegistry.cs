using GeoRelay.LearnerClient.Internal;

namespace GeoRelay.LearnerClient;

/// <summary>The raw-payload registry, and <see cref="With"/> to add a serializer of your own to any registry.</summary>
public static class PayloadSerializerRegistry
{
    /// <summary>
    /// Raw payloads only: <c>byte[]</c> (copied), <c>ReadOnlyMemory&lt;byte&gt;</c> (the entry's memory, not
    /// copied) and <c>string</c> (UTF-8). Every other type has no serializer here.
    /// </summary>
    public static IPayloadSerializerRegistry Default => RawPayloadSerializers.Instance;

    /// <summary>A registry that uses <paramref name="serializer"/> for <typeparamref name="T"/> and <paramref name="registry"/> for every other type.</summary>
    /// <example><c>Serializers = new JsonPayloadSerializerRegistry().With(new PriceSerializer())</c></example>
    public static IPayloadSerializerRegistry With<T>(this IPayloadSerializerRegistry registry, IPayloadSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(serializer);
        return new PayloadSerializerOverride<T>(registry, serializer);
    }

    /// <summary>The serializer for <typeparamref name="T"/>; throws naming the type when the registry has none.</summary>
    internal static IPayloadSerializer<T> Require<T>(this IPayloadSerializerRegistry registry) =>
        registry.GetSerializer<T>() ?? throw new InvalidOperationException(
            $"no payload serializer for {typeof(T)} in {registry.GetType().Name}: set the options' Serializers to a registry that has one " +
            "(JsonPayloadSerializerRegistry, MessagePackPayloadSerializerRegistry from GeoRelay.LearnerClient.MessagePack, or .With(serializer))");
}
