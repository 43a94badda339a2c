using GeoRelay.Codec;
using GeoRelay.Codec.Frames;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// The entries of one publish, as the client encodes them into a Publish frame. Structs, so the client's generic
/// publish path is compiled per shape and nothing is boxed.
/// </summary>
internal interface IPublishEntries
{
    int Count { get; }

    void Write(PooledBufferWriter frame);
}

internal readonly struct RawEntry(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> payload, bool tombstone = false) : IPublishEntries
{
    public int Count => 1;
    public void Write(PooledBufferWriter frame) => PublishRequest.WriteEntry(frame, key.Span, payload.Span, tombstone);
}

internal readonly struct TypedEntry<T>(ReadOnlyMemory<byte> key, T value, IPayloadSerializer<T> serializer) : IPublishEntries
{
    public int Count => 1;
    public void Write(PooledBufferWriter frame) => PublishRequest.WriteEntry(frame, key.Span, value, serializer);
}

internal readonly struct RawBatch(IReadOnlyList<PublishEntry> entries) : IPublishEntries
{
    public int Count => entries.Count;

    public void Write(PooledBufferWriter frame)
    {
        for (int i = 0; i < entries.Count; i++) PublishRequest.WriteEntry(frame, entries[i].Key.Span, entries[i].Payload.Span, entries[i].IsTombstone);
    }
}

internal readonly struct TypedBatch<T>(IReadOnlyList<PublishEntry<T>> entries, IPayloadSerializer<T> serializer) : IPublishEntries
{
    public int Count => entries.Count;

    public void Write(PooledBufferWriter frame)
    {
        for (int i = 0; i < entries.Count; i++) PublishRequest.WriteEntry(frame, entries[i].Key.Span, entries[i].Value, serializer);
    }
}

internal static class PublishRequest
{
    // A varint holding an int length.
    private const int MaxLengthPrefix = 5;

    public static void WriteEntry(PooledBufferWriter frame, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload, bool tombstone = false)
    {
        CheckKey(key);
        if (tombstone && key.IsEmpty) throw new ArgumentException("a tombstone deletes a key, so it needs one", nameof(key));
        PublishFrame.WriteEntry(frame, key, payload, tombstone);
    }

    public static void WriteEntry<T>(PooledBufferWriter frame, ReadOnlySpan<byte> key, T value, IPayloadSerializer<T> serializer)
    {
        CheckKey(key);
        PayloadWriter.FlaggedKey(frame, key, tombstone: false);
        // The payload's length prefix comes first, but its size is known only once the value is written: the value
        // goes after room for the longest prefix and moves back over what the prefix did not need (no second buffer).
        int prefixAt = frame.WrittenCount;
        frame.GetSpan(MaxLengthPrefix);
        frame.Advance(MaxLengthPrefix);
        serializer.Serialize(frame, value);
        int length = frame.WrittenCount - prefixAt - MaxLengthPrefix;
        var written = frame.WrittenSpanMutable;
        int prefix = Varint.Write(written.Slice(prefixAt), (ulong)length);
        written.Slice(prefixAt + MaxLengthPrefix, length).CopyTo(written.Slice(prefixAt + prefix));
        frame.Truncate(frame.WrittenCount - (MaxLengthPrefix - prefix));
    }

    private static void CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.Length > EntryRecord.MaxKeyLength)
            throw new ArgumentException($"a key is {key.Length} bytes; the log takes at most {EntryRecord.MaxKeyLength}", nameof(key));
    }
}
