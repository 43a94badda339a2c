namespace GeoRelay.LearnerClient;

/// <summary>
/// A typed subscription met an entry whose payload its serializer could not read. The subscription ends;
/// subscribe again from <see cref="Index"/> + 1 to go past the entry, or untyped to see its bytes.
/// </summary>
public sealed class PayloadDeserializationException : Exception
{
    /// <summary>Creates the exception for entry <paramref name="index"/>, which could not be read as <paramref name="valueType"/>.</summary>
    public PayloadDeserializationException(ulong index, Type valueType, int payloadLength, Exception inner)
        : base($"entry {index}: its payload ({payloadLength} bytes) is not a valid {valueType}: {inner.Message}", inner)
    {
        Index = index;
        ValueType = valueType;
    }

    /// <summary>The index of the entry whose payload could not be read.</summary>
    public ulong Index { get; }

    /// <summary>The type the subscription asked for.</summary>
    public Type ValueType { get; }
}
