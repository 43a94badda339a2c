using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;

namespace GeoRelay.Leader;

/// <summary>What to do with a publish request that named a producer.</summary>
public enum ProducerVerdict : byte
{
    /// <summary>The next request of the producer (or a producer this log has not seen): append it.</summary>
    Append,
    /// <summary>
    /// The log holds the start of it only (a leader change cut it): append the rest (from <c>present</c> entries on),
    /// under a marker of its own.
    /// </summary>
    AppendRest,
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
        /// <summary>The last request, when the log holds only its first <see cref="PartialPresent"/> entries.</summary>
        public (ulong FirstSeq, int Count, ulong FirstIndex)? Partial;
        public int PartialPresent;
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
                    table.Record(producer, count, e.Index + 1, PresentAfter(log, e, count));
                next = e.Index + 1;
            }
        }
        return table;
    }

    /// <summary>
    /// How many of a marker's <paramref name="count"/> entries follow it in the log: the same leader wrote them in one
    /// go, in the marker's epoch, but a crash or a later leader can have cut them short.
    /// </summary>
    private static int PresentAfter(IEntryLog log, in LogEntry marker, int count)
    {
        int present = 0;
        while (present < count && log.TryGet(marker.Index + 1 + (ulong)present, out var e) && e.Epoch == marker.Epoch
               && !InternalEntries.IsInternal(e.Key.Span))
            present++;
        return present;
    }

    /// <summary>
    /// Decides on a request of <paramref name="count"/> entries from <paramref name="producer"/>. For a duplicate,
    /// <paramref name="firstIndex"/> is where its first entry went, or 0 when it is too old to be remembered (its
    /// entries are then below <paramref name="olderThan"/>).
    /// </summary>
    /// <exception cref="CodecException">The sequence leaves a gap after, or overlaps part of, what the producer published.</exception>
    public ProducerVerdict Check(ProducerSequence producer, int count, out ulong firstIndex, out ulong olderThan) =>
        Check(producer, count, out firstIndex, out olderThan, out _);

    /// <param name="present">For <see cref="ProducerVerdict.AppendRest"/>: how many of its entries the log holds.</param>
    public ProducerVerdict Check(ProducerSequence producer, int count, out ulong firstIndex, out ulong olderThan, out int present)
    {
        firstIndex = olderThan = 0;
        present = 0;
        if (!_producers.TryGetValue(producer.Producer, out var known) || producer.FirstSeq == known.LastSeq + 1) return ProducerVerdict.Append;
        if (known.Partial is { } partial && partial.FirstSeq == producer.FirstSeq && partial.Count == count)
        {
            firstIndex = partial.FirstIndex;
            present = known.PartialPresent;
            return ProducerVerdict.AppendRest;
        }
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

    /// <summary>
    /// A request's entries went to <paramref name="firstIndex"/> onward (its marker just before them); the log holds the
    /// first <paramref name="present"/> of them (all, unless a crash or a leader change cut the request short).
    /// </summary>
    public void Record(ProducerSequence producer, int count, ulong firstIndex, int? present = null)
    {
        if (!_producers.TryGetValue(producer.Producer, out var known))
        {
            if (_producers.Count >= MaxProducers) ForgetIdlest();
            _producers[producer.Producer] = known = new Producer();
        }
        int held = present ?? count;
        if (held < count)
        {
            // Only its start is here: a retry appends the rest. Sequences past what is held are not taken.
            known.Partial = (producer.FirstSeq, count, firstIndex);
            known.PartialPresent = held;
            known.LastSeq = Math.Max(known.LastSeq, producer.FirstSeq + (ulong)held - 1);
            known.LastUsedIndex = firstIndex;
            return;
        }
        var remembered = (producer.FirstSeq, count, firstIndex);
        if (known.Partial is { } p && producer.FirstSeq > p.FirstSeq)
        {
            // The rest of a cut request: a later retry of the whole request is answered with where it began.
            if (producer.FirstSeq == p.FirstSeq + (ulong)known.PartialPresent) remembered = p;
            known.Partial = null;
        }
        known.LastSeq = Math.Max(known.LastSeq, producer.FirstSeq + (ulong)count - 1);
        known.LastUsedIndex = firstIndex;
        known.Recent.Enqueue(remembered);
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
