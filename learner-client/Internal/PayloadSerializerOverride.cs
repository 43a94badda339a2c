namespace GeoRelay.LearnerClient.Internal;

/// <summary>One type's serializer in front of another registry (<see cref="PayloadSerializerRegistry.With"/>).</summary>
internal sealed class PayloadSerializerOverride<TValue>(IPayloadSerializerRegistry inner, IPayloadSerializer<TValue> serializer) : IPayloadSerializerRegistry
{
    public IPayloadSerializer<T>? GetSerializer<T>() =>
        typeof(T) == typeof(TValue) ? (IPayloadSerializer<T>)(object)serializer : inner.GetSerializer<T>();
}
