using System.Buffers;

namespace GeoRelay.Codec.Frames;

/// <summary>One log entry as read from a frame; Key and Payload are slices of the frame, not copies.</summary>
public readonly struct EntryView
{
    public readonly ulong Index;
    public readonly ulong Epoch;
    public readonly long TimestampMicros;
    public readonly ReadOnlySequence<byte> Key;
    public readonly ReadOnlySequence<byte> Payload;
    /// <summary>The entry deletes its key (keyed compaction); a flag, so an empty payload stays a value.</summary>
    public readonly bool IsTombstone;

    public EntryView(ulong index, ulong epoch, long timestampMicros, ReadOnlySequence<byte> key, ReadOnlySequence<byte> payload, bool isTombstone = false)
    {
        Index = index;
        Epoch = epoch;
        TimestampMicros = timestampMicros;
        Key = key;
        Payload = payload;
        IsTombstone = isTombstone;
    }
}

/// <summary>
/// One entry record. Records are self-contained so a range of them can be sliced out of a batch
/// (the mux shares ranges); the index is implicit: previous + 1 + gap (gaps only in filtered streams).
/// <code>v gap | v epoch | v timeMicros | v (keyLength &lt;&lt; 1 | tombstone) | key | bytes payload</code>
/// </summary>
public static class EntryRecord
{
    public const int MaxKeyLength = 1024;

    public static int SizeOf(ulong gap, ulong epoch, long timeMicros, int keyLength, int payloadLength) =>
        Varint.SizeOf(gap) + Varint.SizeOf(epoch) + Varint.SizeOf((ulong)timeMicros)
        + Varint.SizeOf((ulong)keyLength << 1) + keyLength + Varint.SizeOf((ulong)payloadLength) + payloadLength;

    public static void Write(IBufferWriter<byte> w, ulong gap, ulong epoch, long timeMicros, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload,
        bool tombstone = false)
    {
        int size = SizeOf(gap, epoch, timeMicros, key.Length, payload.Length);
        var span = w.GetSpan(size);
        int o = Varint.Write(span, gap);
        o += Varint.Write(span.Slice(o), epoch);
        o += Varint.Write(span.Slice(o), (ulong)timeMicros);
        o += Varint.Write(span.Slice(o), ((ulong)key.Length << 1) | (tombstone ? 1UL : 0));
        key.CopyTo(span.Slice(o));
        o += key.Length;
        o += Varint.Write(span.Slice(o), (ulong)payload.Length);
        payload.CopyTo(span.Slice(o));
        w.Advance(o + payload.Length);
    }
}

/// <summary>Iterates <c>count</c> entry records starting at index <c>first</c>.</summary>
public ref struct EntriesReader
{
    private PayloadReader _reader;
    private ulong _remaining;
    private ulong _next;

    public EntriesReader(PayloadReader reader, ulong first, ulong count)
    {
        _reader = reader;
        _next = first;
        _remaining = count;
    }

    public readonly ulong Remaining => _remaining;

    public bool TryNext(out EntryView entry)
    {
        if (_remaining == 0)
        {
            _reader.ExpectEnd();
            entry = default;
            return false;
        }
        ulong gap = _reader.ReadVarint("entry.gap");
        ulong index = _next + gap;
        if (index < _next) throw _reader.Corrupt("entry.gap", "overflows the index");
        ulong epoch = _reader.ReadVarint("entry.epoch");
        long time = (long)_reader.ReadVarint("entry.time");
        var key = _reader.ReadFlaggedKey("entry.key", EntryRecord.MaxKeyLength, out bool tombstone);
        var payload = _reader.ReadBytes("entry.payload", int.MaxValue);
        entry = new EntryView(index, epoch, time, key, payload, tombstone);
        _next = index + 1;
        _remaining--;
        return true;
    }

    /// <summary>Checks that the count fits the bytes before anyone sizes a buffer from it.</summary>
    internal static void CheckCount(ref PayloadReader r, ulong first, ulong count)
    {
        // every record takes at least 5 bytes
        if (count > (ulong)r.Remaining / 5)
            throw r.Corrupt("count", $"{count} entries do not fit {r.Remaining} bytes");
        if (first == 0 && count > 0) throw r.Corrupt("first", "entry indexes start at 1");
        if (first + count < first) throw r.Corrupt("count", "overflows the index");
    }
}

/// <summary>
/// Entries for one member: its header, then its range of entry records.
/// <code>epoch/commit (delta or full) | v first | v count | records</code>
/// </summary>
public static class AppendFrame
{
    public static void WriteHeader(IBufferWriter<byte> w, ref DeltaState delta, ulong epoch, ulong commit, ulong first, ulong count)
    {
        delta.WriteEpochCommit(w, epoch, commit);
        PayloadWriter.Varint(w, first);
        PayloadWriter.Varint(w, count);
    }

    /// <summary>A header with every field present, for a message a relay forwards unchanged.</summary>
    public static void WriteFullHeader(IBufferWriter<byte> w, ulong epoch, ulong commit, ulong first, ulong count)
    {
        DeltaState.WriteFull(w, epoch, commit);
        PayloadWriter.Varint(w, first);
        PayloadWriter.Varint(w, count);
    }

    public static EntriesReader Read(ReadOnlySequence<byte> payload, ref DeltaState delta, out ulong epoch, out ulong commit, out ulong first, out ulong count)
    {
        var r = new PayloadReader(payload, "Append");
        delta.ReadEpochCommit(ref r, out epoch, out commit);
        first = r.ReadVarint("first");
        count = r.ReadVarint("count");
        EntriesReader.CheckCount(ref r, first, count);
        return new EntriesReader(r, first, count);
    }
}

/// <summary>
/// A relay's or learner's stream of entries, also packet 0 of a Batch (the relay's retention).
/// <code>v first | v count | v through | records</code>; <c>through</c> ≥ the last index covered, so a
/// filtered stream can move the resume point past entries it skipped.
/// </summary>
public static class DeliverFrame
{
    public static void WriteHeader(IBufferWriter<byte> w, ulong first, ulong count, ulong through)
    {
        PayloadWriter.Varint(w, first);
        PayloadWriter.Varint(w, count);
        PayloadWriter.Varint(w, through);
    }

    public static EntriesReader Read(ReadOnlySequence<byte> payload, out ulong first, out ulong count, out ulong through)
    {
        var r = new PayloadReader(payload, "Deliver");
        first = r.ReadVarint("first");
        count = r.ReadVarint("count");
        through = r.ReadVarint("through");
        EntriesReader.CheckCount(ref r, first, count);
        if (count > 0 && through < first + count - 1) throw r.Corrupt("through", "is below the last entry");
        return new EntriesReader(r, first, count);
    }
}

/// <summary>
/// One multiplexed batch for a datacenter. The batch carries the entry records of
/// <c>[first, first + count)</c>, shared through the mux; packet 0 is the relay's retention range and
/// packet 1+i member <c>slots[i]</c>'s range. Every range ends where the records end; packet p starts
/// <c>skip[p]</c> records in (a skip of at least <c>count</c> is an empty range whose next index is
/// <c>first + skip</c>). Packets hold records only: the relay rebuilds each member's Append header
/// (epoch, commit, first, count) from these fields, so a member costs one varint here instead of a
/// header of its own in the mux (in the common case every skip is 0 and the mux is one shared chunk).
/// <code>epoch/commit (delta) | [v n | n × v progress] | v seq | v k | k × v slot | v first | v count | (k+1) × v skip | mux(k+1)</code>
/// The voters' progress is there when bit <see cref="ProgressBit"/> of the presence byte is set, only towards relays
/// with <see cref="Capabilities.VoterProgress"/>: the leader's durable index, then the highest match indexes of the
/// voters outside the relay's datacenter, highest first.
/// </summary>
public static class BatchFrame
{
    public const int MaxMembers = 65535;
    /// <summary>The presence-byte bit that says the voters' progress follows the epoch and commit.</summary>
    public const byte ProgressBit = 4;

    /// <param name="progress">The voters' progress (see above); empty for none.</param>
    public static void WriteHeader(IBufferWriter<byte> w, ref DeltaState delta, ulong epoch, ulong commit, ulong seq, ReadOnlySpan<int> slots,
        ulong first, ulong count, ReadOnlySpan<ulong> skips, ReadOnlySpan<ulong> progress = default)
    {
        if (skips.Length != slots.Length + 1) throw new ArgumentException($"{skips.Length} skips for {slots.Length} members + retention", nameof(skips));
        delta.WriteEpochCommit(w, epoch, commit, progress.IsEmpty ? (byte)0 : ProgressBit);
        if (!progress.IsEmpty)
        {
            PayloadWriter.Varint(w, (ulong)progress.Length);
            foreach (var index in progress) PayloadWriter.Varint(w, index);
        }
        PayloadWriter.Varint(w, seq);
        PayloadWriter.Varint(w, (ulong)slots.Length);
        foreach (var s in slots) PayloadWriter.Varint(w, (ulong)s);
        PayloadWriter.Varint(w, first);
        PayloadWriter.Varint(w, count);
        foreach (var skip in skips) PayloadWriter.Varint(w, skip);
    }

    /// <summary>
    /// Reads the header; <paramref name="slots"/> receives the member slots and <paramref name="skips"/> one
    /// skip per packet (retention first); returns the mux bytes.
    /// </summary>
    /// <param name="progress">Receives the voters' progress, cleared (left empty when the batch has none); null to skip it.</param>
    public static ReadOnlySequence<byte> Read(ReadOnlySequence<byte> payload, ref DeltaState delta, List<int> slots, List<ulong> skips,
        out ulong epoch, out ulong commit, out ulong seq, out ulong first, out ulong count, List<ulong>? progress = null)
    {
        var r = new PayloadReader(payload, "Batch");
        byte extra = delta.ReadEpochCommit(ref r, out epoch, out commit, ProgressBit);
        progress?.Clear();
        if ((extra & ProgressBit) != 0)
        {
            var n = r.ReadVarint("progress count");
            if (n == 0 || n > MaxMembers + 1 || n > (ulong)r.Remaining) throw r.Corrupt("progress count", $"{n} voters' indexes do not fit the payload");
            for (ulong i = 0; i < n; i++)
            {
                var index = r.ReadVarint("progress");
                progress?.Add(index);
            }
        }
        seq = r.ReadVarint("seq");
        var k = r.ReadVarint("k");
        if (k > MaxMembers || k > (ulong)r.Remaining) throw r.Corrupt("k", $"{k} member slots do not fit the payload");
        slots.Clear();
        for (ulong i = 0; i < k; i++)
        {
            var slot = r.ReadVarint("slot");
            if (slot > MaxMembers) throw r.Corrupt("slot", $"{slot} is out of range");
            slots.Add((int)slot);
        }
        first = r.ReadVarint("first");
        count = r.ReadVarint("count");
        if (first == 0 && count > 0) throw r.Corrupt("first", "entry indexes start at 1");
        if (first + count < first) throw r.Corrupt("count", "overflows the index");
        skips.Clear();
        for (ulong i = 0; i <= k; i++)
        {
            var skip = r.ReadVarint("skip");
            if (first + skip < first) throw r.Corrupt("skip", "overflows the index");
            skips.Add(skip);
        }
        return r.ReadRest();
    }

    /// <summary>The range of the packet that starts <paramref name="skip"/> records in: its first index and entry count.</summary>
    public static (ulong First, ulong Count) Range(ulong first, ulong count, ulong skip) =>
        (first + skip, skip < count ? count - skip : 0);

    /// <summary>The records of one packet, checked against the bytes it has before they are read.</summary>
    public static EntriesReader ReadPacket(ReadOnlySequence<byte> packet, ulong first, ulong count)
    {
        var r = new PayloadReader(packet, "Batch packet");
        EntriesReader.CheckCount(ref r, first, count);
        return new EntriesReader(r, first, count);
    }
}

public enum WaitLevel : byte
{
    Accepted = 0,
    Committed = 1,
}

/// <summary>
/// Who published a request, for exactly-once publishing: a publisher session's producer id (0: none, no
/// deduplication) and the sequence number of the request's first entry; its entries are numbered on from there.
/// </summary>
public readonly record struct ProducerSequence(ulong Producer, ulong FirstSeq)
{
    public bool IsSet => Producer != 0;
}

/// <summary>
/// Entries from a publisher.
/// <code>v request | u8 wait | u64 producer | u64 firstSeq | v count | count × (v (keyLength &lt;&lt; 1 | tombstone) | key | bytes payload)</code>
/// The producer fields are fixed-width so a client can number a request when it sends it, after encoding it
/// (<see cref="SetFirstSeq"/>): sequence numbers must follow the order requests go out in.
/// </summary>
public static class PublishFrame
{
    public static void WriteHeader(IBufferWriter<byte> w, ulong request, WaitLevel wait, int count, ProducerSequence producer = default)
    {
        PayloadWriter.Varint(w, request);
        PayloadWriter.Byte(w, (byte)wait);
        PayloadWriter.UInt64(w, producer.Producer);
        PayloadWriter.UInt64(w, producer.Producer == 0 ? 0 : producer.FirstSeq);
        PayloadWriter.Varint(w, (ulong)count);
    }

    /// <summary>Writes the first sequence number into an encoded Publish payload (starting at <paramref name="payload"/>'s first byte).</summary>
    public static void SetFirstSeq(Span<byte> payload, ulong firstSeq)
    {
        if (!Varint.TryRead(payload, out _, out int requestLength)) throw new ArgumentException("not an encoded Publish payload", nameof(payload));
        int at = requestLength + 1 + 8;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(payload.Slice(at, 8), firstSeq);
    }

    public static void WriteEntry(IBufferWriter<byte> w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload, bool tombstone = false)
    {
        PayloadWriter.FlaggedKey(w, key, tombstone);
        PayloadWriter.Bytes(w, payload);
    }

    public static PublishReader Read(ReadOnlySequence<byte> payload, out ulong request, out WaitLevel wait, out int count) =>
        Read(payload, out request, out wait, out count, out _);

    public static PublishReader Read(ReadOnlySequence<byte> payload, out ulong request, out WaitLevel wait, out int count, out ProducerSequence producer)
    {
        var r = new PayloadReader(payload, "Publish");
        request = r.ReadVarint("request");
        var w = r.ReadByte("wait");
        if (w > 1) throw r.Corrupt("wait", $"{w} is not a wait level");
        wait = (WaitLevel)w;
        ulong id = r.ReadUInt64("producer"), seq = r.ReadUInt64("firstSeq");
        if (id != 0 && seq == 0) throw r.Corrupt("firstSeq", "is 0; a producer's sequence numbers start at 1");
        producer = new ProducerSequence(id, seq);
        var n = r.ReadVarint("count");
        if (n > (ulong)r.Remaining / 2) throw r.Corrupt("count", $"{n} entries do not fit {r.Remaining} bytes");
        count = (int)n;
        return new PublishReader(r, count);
    }
}

public ref struct PublishReader
{
    private PayloadReader _reader;
    private int _remaining;

    internal PublishReader(PayloadReader reader, int count)
    {
        _reader = reader;
        _remaining = count;
    }

    public bool TryNext(out ReadOnlySequence<byte> key, out ReadOnlySequence<byte> payload) => TryNext(out key, out payload, out _);

    public bool TryNext(out ReadOnlySequence<byte> key, out ReadOnlySequence<byte> payload, out bool tombstone)
    {
        if (_remaining == 0)
        {
            _reader.ExpectEnd();
            key = payload = default;
            tombstone = false;
            return false;
        }
        key = _reader.ReadFlaggedKey("key", EntryRecord.MaxKeyLength, out tombstone);
        payload = _reader.ReadBytes("payload", int.MaxValue);
        _remaining--;
        return true;
    }
}

/// <summary>The leader's answer to a Publish. <code>v request | v first | v count | u8 level</code></summary>
public readonly record struct PublishAck(ulong Request, ulong FirstIndex, ulong Count, WaitLevel Level)
{
    public void Write(IBufferWriter<byte> w)
    {
        PayloadWriter.Varint(w, Request);
        PayloadWriter.Varint(w, FirstIndex);
        PayloadWriter.Varint(w, Count);
        PayloadWriter.Byte(w, (byte)Level);
    }

    public static PublishAck Read(ReadOnlySequence<byte> payload)
    {
        var r = new PayloadReader(payload, nameof(PublishAck));
        var ack = new PublishAck(r.ReadVarint("request"), r.ReadVarint("first"), r.ReadVarint("count"), (WaitLevel)r.ReadByte("level"));
        if ((byte)ack.Level > 1) throw r.Corrupt("level", $"{(byte)ack.Level} is not a wait level");
        r.ExpectEnd();
        return ack;
    }
}
