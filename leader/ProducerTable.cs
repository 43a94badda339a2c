using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;

namespace GeoRelay.Leader;

/// <summary>What to do with a publish request that named a producer.</summary>
public enum ProducerVerdict : byte
{
    /// <summary>The next request of the producer (or a producer this log has not seen): append it.</summary>
    Append,
    /// <summary>Already in the log: answer with where it was appended, append nothing.</summary>
    Duplicate,
}

/// <summary>
/// The leader's deduplication state for exactly-once publishing (Kafka's idempotent producer): per producer, the
/// highest sequence number its log holds and where its recent requests went. It is rebuilt from the producer
/// markers in the log (<see cref="InternalEntries.ProducerKey"/>) whenever a node starts to lead, so a request
/// retried after a leader change is recognized by the new leader exactly when the new leader's log holds it.
/// </summary>
public sealed class ProducerTable
{
    /// <summary>Requests remembered per producer: more than a publisher keeps in flight.</summary>
    public const int RememberedRequests = 1024;

    /// <summary>Producers remembered; beyond it the one idle longest is forgotten (its retries would be appended again).</summary>
    public const int MaxProducers = 100_000;

    private sealed class Producer
    {
        public ulong LastSeq;
        public ulong LastUsedIndex;
        public readonly Queue<(ulong FirstSeq, int Count, ulong FirstIndex)> Recent = new();
    }

    private readonly Dictionary<ulong, Producer> _producers = new();

    public int Count => _producers.Count;

    /// <summary>Reads every producer marker the log holds.</summary>
    public static ProducerTable Rebuild(IEntryLog log)
    {
        var table = new ProducerTable();
        var batch = new List<LogEntry>();
        ulong next = Math.Max(1, log.FirstIndex);
        while (next <= log.LastIndex)
        {
            batch.Clear();
            if (log.Read(next, 4096, 16L << 20, batch) == 0) break;
            foreach (var e in batch)
            {
                if (InternalEntries.TryReadProducerMarker(e.Key.Span, e.Payload, out var producer, out int count))
                    table.Record(producer, count, e.Index + 1);
                next = e.Index + 1;
            }
        }
        return table;
    }

    /// <summary>
    /// Decides on a request of <paramref name="count"/> entries from <paramref name="producer"/>. For a duplicate,
    /// <paramref name="firstIndex"/> is where its first entry went, or 0 when it is too old to be remembered (its
    /// entries are then below <paramref name="olderThan"/>).
    /// </summary>
    /// <exception cref="CodecException">The sequence leaves a gap after, or overlaps part of, what the producer published.</exception>
    public ProducerVerdict Check(ProducerSequence producer, int count, out ulong firstIndex, out ulong olderThan)
    {
        firstIndex = olderThan = 0;
        if (!_producers.TryGetValue(producer.Producer, out var known) || producer.FirstSeq == known.LastSeq + 1) return ProducerVerdict.Append;
        ulong last = producer.FirstSeq + (ulong)count - 1;
        if (producer.FirstSeq > known.LastSeq + 1)
            throw new CodecException(CodecError.Protocol,
                $"producer {producer.Producer:x16} sent sequence {producer.FirstSeq}, but this log holds its entries through {known.LastSeq} only: sequences must follow on without a gap");
        if (last > known.LastSeq)
            throw new CodecException(CodecError.Protocol,
                $"producer {producer.Producer:x16} sent sequences {producer.FirstSeq}..{last}, which overlap the end of what this log holds ({known.LastSeq}): a retry must repeat its request as it was");
        foreach (var (seq, n, index) in known.Recent)
        {
            if (seq == producer.FirstSeq && n == count)
            {
                firstIndex = index;
                return ProducerVerdict.Duplicate;
            }
        }
        olderThan = known.Recent.TryPeek(out var oldest) ? oldest.FirstIndex : known.LastUsedIndex;
        return ProducerVerdict.Duplicate;
    }

    /// <summary>A request's entries went to <paramref name="firstIndex"/> onward (its marker just before them).</summary>
    public void Record(ProducerSequence producer, int count, ulong firstIndex)
    {
        if (!_producers.TryGetValue(producer.Producer, out var known))
        {
            if (_producers.Count >= MaxProducers) ForgetIdlest();
            _producers[producer.Producer] = known = new Producer();
        }
        known.LastSeq = Math.Max(known.LastSeq, producer.FirstSeq + (ulong)count - 1);
        known.LastUsedIndex = firstIndex;
        known.Recent.Enqueue((producer.FirstSeq, count, firstIndex));
        while (known.Recent.Count > RememberedRequests) known.Recent.Dequeue();
    }

    private void ForgetIdlest()
    {
        ulong idlest = 0, oldest = ulong.MaxValue;
        foreach (var (id, p) in _producers)
            if (p.LastUsedIndex < oldest) (idlest, oldest) = (id, p.LastUsedIndex);
        _producers.Remove(idlest);
    }
}
