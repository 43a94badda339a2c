using System.Buffers;
using System.Text;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>byte[], ReadOnlyMemory&lt;byte&gt; and string (UTF-8) payloads: what needs no format.</summary>
internal sealed class RawPayloadSerializers : IPayloadSerializerRegistry
{
    public static readonly RawPayloadSerializers Instance = new();

    public IPayloadSerializer<T>? GetSerializer<T>()
    {
        if (typeof(T) == typeof(ReadOnlyMemory<byte>)) return (IPayloadSerializer<T>)(object)MemorySerializer.Instance;
        if (typeof(T) == typeof(byte[])) return (IPayloadSerializer<T>)(object)ByteArraySerializer.Instance;
        if (typeof(T) == typeof(string)) return (IPayloadSerializer<T>)(object)StringSerializer.Instance;
        return null;
    }

    private sealed class MemorySerializer : IPayloadSerializer<ReadOnlyMemory<byte>>
    {
        public static readonly MemorySerializer Instance = new();
        public void Serialize(IBufferWriter<byte> destination, ReadOnlyMemory<byte> value) => destination.Write(value.Span);
        public ReadOnlyMemory<byte> Deserialize(ReadOnlyMemory<byte> payload) => payload;
    }

    private sealed class ByteArraySerializer : IPayloadSerializer<byte[]>
    {
        public static readonly ByteArraySerializer Instance = new();
        public void Serialize(IBufferWriter<byte> destination, byte[] value) => destination.Write(value);
        public byte[] Deserialize(ReadOnlyMemory<byte> payload) => payload.ToArray();
    }

    private sealed class StringSerializer : IPayloadSerializer<string>
    {
        public static readonly StringSerializer Instance = new();
        public void Serialize(IBufferWriter<byte> destination, string value) => Encoding.UTF8.GetBytes(value, destination);
        public string Deserialize(ReadOnlyMemory<byte> payload) => Encoding.UTF8.GetString(payload.Span);
    }
}
