using System.Buffers;

namespace GeoRelay.LearnerClient;

/// <summary>Turns values of <typeparamref name="T"/> into entry payloads and back.</summary>
/// <typeparam name="T">The application's type.</typeparam>
/// <remarks>Implementations are called from several threads at once and keep no state between calls.</remarks>
public interface IPayloadSerializer<T>
{
    /// <summary>Writes <paramref name="value"/> as a payload into <paramref name="destination"/> (the request being built).</summary>
    void Serialize(IBufferWriter<byte> destination, T value);

    /// <summary>
    /// Reads a payload. <paramref name="payload"/> is the entry's memory: with
    /// <see cref="LearnerClientOptions.ReuseBuffers"/> it is valid only until the next entry, so a result that
    /// points into it must be used before then. Throw when the bytes are not a valid <typeparamref name="T"/>.
    /// </summary>
    T Deserialize(ReadOnlyMemory<byte> payload);
}
