namespace GeoRelay.Codec.Frames;

/// <summary>
/// Entries the cluster writes for itself (the no-op a new leader commits its term with). They are log entries like
/// any other, replicated and counted, but never handed to applications. Their keys start with a zero byte, which
/// publishers may not use.
/// </summary>
public static class InternalEntries
{
    /// <summary>The no-op a leader appends when its term starts on a non-empty log (Raft §5.4.2).</summary>
    public static ReadOnlySpan<byte> NoOpKey => "\0georelay.no-op"u8;

    /// <summary>
    /// A configuration entry: its payload is the cluster's new membership (encoded). Every voter counts votes and commits
    /// with the newest one its log holds (Raft §4.1), committed or not.
    /// </summary>
    public static ReadOnlySpan<byte> ConfigurationKey => "\0georelay.config"u8;

    /// <summary>
    /// Written just before the entries of a publish request that named a producer: <c>v producer | v firstSeq | v count</c>.
    /// A leader rebuilds from these which requests its log holds, so a retry is never appended twice, whoever leads.
    /// </summary>
    public static ReadOnlySpan<byte> ProducerKey => "\0georelay.producer"u8;

    public static byte[] ProducerMarker(ProducerSequence producer, int count)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>(32);
        PayloadWriter.Varint(w, producer.Producer);
        PayloadWriter.Varint(w, producer.FirstSeq);
        PayloadWriter.Varint(w, (ulong)count);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Reads a producer marker's payload; false when the entry is not one.</summary>
    public static bool TryReadProducerMarker(ReadOnlySpan<byte> key, ReadOnlyMemory<byte> payload, out ProducerSequence producer, out int count)
    {
        producer = default;
        count = 0;
        if (!key.SequenceEqual(ProducerKey)) return false;
        var r = new PayloadReader(new System.Buffers.ReadOnlySequence<byte>(payload), "producer marker");
        producer = new ProducerSequence(r.ReadVarint("producer"), r.ReadVarint("firstSeq"));
        ulong n = r.ReadVarint("count");
        r.ExpectEnd();
        if (n > int.MaxValue) throw r.Corrupt("count", $"{n} is too large");
        count = (int)n;
        return true;
    }

    public static bool IsInternal(ReadOnlySpan<byte> key) => key.Length > 0 && key[0] == 0;

    public static bool IsInternal(in System.Buffers.ReadOnlySequence<byte> key) => !key.IsEmpty && key.Slice(0, 1).FirstSpan[0] == 0;
}
