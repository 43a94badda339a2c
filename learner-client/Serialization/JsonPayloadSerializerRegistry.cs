using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;

namespace GeoRelay.LearnerClient;

/// <summary>
/// Raw payloads as <see cref="PayloadSerializerRegistry.Default"/> does; every other type as UTF-8 JSON through
/// System.Text.Json.
/// </summary>
/// <param name="options">
/// Serializer options, for instance with a source-generated <c>JsonSerializerContext</c> as its type resolver.
/// Default null: <see cref="JsonSerializerOptions.Default"/>.
/// </param>
public sealed class JsonPayloadSerializerRegistry(JsonSerializerOptions? options = null) : IPayloadSerializerRegistry
{
    private readonly JsonSerializerOptions _options = options ?? JsonSerializerOptions.Default;
    private readonly ConcurrentDictionary<Type, object> _serializers = new();

    /// <inheritdoc/>
    public IPayloadSerializer<T> GetSerializer<T>() =>
        PayloadSerializerRegistry.Default.GetSerializer<T>()
        ?? (IPayloadSerializer<T>)_serializers.GetOrAdd(typeof(T), static (_, options) => new JsonPayloadSerializer<T>(options), _options);

    private sealed class JsonPayloadSerializer<T>(JsonSerializerOptions options) : IPayloadSerializer<T>
    {
        // The writer formats as the serializer options say (indenting, escaping); the serializer takes them from it.
        private readonly JsonWriterOptions _writerOptions = new()
        {
            Encoder = options.Encoder,
            Indented = options.WriteIndented,
            MaxDepth = options.MaxDepth,
            SkipValidation = true,
        };

        public void Serialize(IBufferWriter<byte> destination, T value)
        {
            using var writer = new Utf8JsonWriter(destination, _writerOptions);
            JsonSerializer.Serialize(writer, value, options);
        }

        public T Deserialize(ReadOnlyMemory<byte> payload) => JsonSerializer.Deserialize<T>(payload.Span, options)!;
    }
}
