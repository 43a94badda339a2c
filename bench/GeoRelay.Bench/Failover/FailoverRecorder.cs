using System.Buffers.Binary;
using System.Diagnostics;

namespace GeoRelay.Bench.Failover;

/// <summary>
/// What one system did in one round: when each application sequence number was acknowledged (and when the attempt
/// that got the acknowledgement was sent), and every delivery to each region's subscriber. Timestamps are
/// <see cref="Stopwatch.GetTimestamp"/> values. The payload carries the application sequence number, so a
/// duplicate is seen whatever index or stream sequence the log gave it.
/// </summary>
public sealed class FailoverRecorder
{
    /// <summary>Every payload: "GRFO" · u64 application sequence · filler.</summary>
    public const int PayloadBytes = 256;
    private static ReadOnlySpan<byte> Magic => "GRFO"u8;

    private readonly long[] _ackedAt;
    private readonly long[] _ackSentAt;
    private readonly Delivery[][] _byRegion;
    private readonly int[] _delivered;
    private readonly Lock _gate = new();
    private long _retries;
    private long _unknownOutcomeRetries;
    private long _duplicateAcks;

    public readonly record struct Delivery(long At, long Seq, ulong Position);

    public FailoverRecorder(string[] regions, long maxSeq)
    {
        Regions = regions;
        _ackedAt = new long[maxSeq + 1];
        _ackSentAt = new long[maxSeq + 1];
        _byRegion = regions.Select(_ => new Delivery[Math.Max(1024, maxSeq * 2)]).ToArray();
        _delivered = new int[regions.Length];
    }

    public string[] Regions { get; }
    public long MaxSeq => _ackedAt.Length - 1;
    public List<string> Events { get; } = new();

    public static byte[] Payload(long seq)
    {
        var payload = new byte[PayloadBytes];
        Magic.CopyTo(payload);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(4), seq);
        return payload;
    }

    /// <summary>The application sequence number of a payload written by <see cref="Payload"/>; -1 for anything else.</summary>
    public static long SeqOf(ReadOnlySpan<byte> payload) =>
        payload.Length >= 12 && payload[..4].SequenceEqual(Magic) ? BinaryPrimitives.ReadInt64LittleEndian(payload[4..]) : -1;

    /// <summary>An acknowledgement of <paramref name="seq"/> for the attempt sent at <paramref name="sentAt"/>; the first one counts.</summary>
    public void Acked(long seq, long sentAt, bool duplicate = false)
    {
        long now = Stopwatch.GetTimestamp();
        if (duplicate) Interlocked.Increment(ref _duplicateAcks);
        if (Interlocked.CompareExchange(ref _ackedAt[seq], now, 0) == 0) Volatile.Write(ref _ackSentAt[seq], sentAt);
    }

    public bool IsAcked(long seq) => Volatile.Read(ref _ackedAt[seq]) != 0;

    /// <summary>A publish attempt failed and is retried; <paramref name="mayHaveLanded"/> when its outcome is unknown.</summary>
    public void Retried(bool mayHaveLanded)
    {
        Interlocked.Increment(ref _retries);
        if (mayHaveLanded) Interlocked.Increment(ref _unknownOutcomeRetries);
    }

    /// <summary>One delivery to <paramref name="region"/>'s subscriber; <paramref name="position"/> is the log index or stream sequence.</summary>
    public void Delivered(int region, ReadOnlySpan<byte> payload, ulong position)
    {
        long seq = SeqOf(payload);
        if (seq <= 0) return; // internal entries, or anything not ours
        long now = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            ref var list = ref _byRegion[region];
            if (_delivered[region] == list.Length) Array.Resize(ref list, list.Length * 2);
            list[_delivered[region]++] = new Delivery(now, seq, position);
        }
    }

    public void Event(string text)
    {
        lock (Events) Events.Add(text);
    }

    /// <summary>Whether every acknowledged sequence up to <paramref name="lastSeq"/> reached every region.</summary>
    public bool AllDelivered(long lastSeq)
    {
        lock (_gate)
        {
            for (int r = 0; r < Regions.Length; r++)
            {
                var seen = new bool[lastSeq + 1];
                for (int i = 0; i < _delivered[r]; i++)
                    if (_byRegion[r][i].Seq <= lastSeq) seen[_byRegion[r][i].Seq] = true;
                for (long s = 1; s <= lastSeq; s++)
                    if (IsAcked(s) && !seen[s]) return false;
            }
        }
        return true;
    }

    public int DeliveredCount(int region)
    {
        lock (_gate) return _delivered[region];
    }

    /// <summary>The figures of the round, once publishing and draining are over.</summary>
    public RoundResult Summarize(string system, int round, long killAt, long publishEndAt, long lastSeq, IReadOnlyList<string> timeline)
    {
        double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
        // Unavailability: from the kill to the first acknowledgement of an attempt sent after it.
        long firstAck = 0;
        for (long s = 1; s <= lastSeq; s++)
        {
            long at = _ackedAt[s];
            if (at != 0 && _ackSentAt[s] > killAt && (firstAck == 0 || at < firstAck)) firstAck = at;
        }
        long acked = 0, ackedBeforeKill = 0;
        for (long s = 1; s <= lastSeq; s++)
        {
            if (_ackedAt[s] != 0) acked++;
            if (_ackedAt[s] != 0 && _ackedAt[s] < killAt) ackedBeforeKill++;
        }
        Event($"acknowledged before the kill: {ackedBeforeKill:N0}");

        var stalls = new double[Regions.Length];
        var stallStarts = new double[Regions.Length];
        long lost = 0, doubleAppended = 0, redelivered = 0;
        var lostSeqs = new HashSet<long>();
        var doubled = new HashSet<long>();
        lock (_gate)
        {
            for (int r = 0; r < Regions.Length; r++)
            {
                var positions = new Dictionary<long, ulong>();
                var seenPositions = new HashSet<ulong>();
                long previous = 0;
                double longest = 0, longestStart = 0;
                for (int i = 0; i < _delivered[r]; i++)
                {
                    var d = _byRegion[r][i];
                    if (!seenPositions.Add(d.Position)) redelivered++;
                    else if (positions.TryGetValue(d.Seq, out var first) && first != d.Position) doubled.Add(d.Seq);
                    else positions[d.Seq] = d.Position;
                    // The longest gap between consecutive deliveries that begins before the end of publishing and ends at most a
                    // second before the kill (a subscriber silent until after publishing ended has its whole silence counted).
                    if (d.At >= killAt - Stopwatch.Frequency && previous != 0 && previous <= publishEndAt && Ms(d.At - previous) > longest)
                    {
                        longest = Ms(d.At - previous);
                        longestStart = Ms(previous - killAt);
                    }
                    previous = d.At;
                }
                stalls[r] = longest;
                stallStarts[r] = longestStart;
                int missing = 0;
                for (long s = 1; s <= lastSeq; s++)
                    if (_ackedAt[s] != 0 && !positions.ContainsKey(s))
                    {
                        lostSeqs.Add(s);
                        missing++;
                    }
                if (missing > 0) Event($"{Regions[r]}'s subscriber never got {missing} acknowledged entries");
            }
        }
        lost = lostSeqs.Count;
        doubleAppended = doubled.Count;
        return new RoundResult(system, round, firstAck == 0 ? double.NaN : Ms(firstAck - killAt), stalls, stallStarts, acked, lastSeq, lost,
            doubleAppended, redelivered, Interlocked.Read(ref _retries), Interlocked.Read(ref _unknownOutcomeRetries),
            Interlocked.Read(ref _duplicateAcks), lostSeqs.Order().Take(10).ToList(), doubled.Order().Take(10).ToList(), timeline, Events.ToList());
    }
}

/// <summary>One system's figures in one round.</summary>
/// <param name="UnavailableMs">Kill → first acknowledgement of an attempt sent after the kill (NaN: none came).</param>
/// <param name="StallMs">Per region, the longest gap between consecutive deliveries from 1 s before the kill to the end of publishing.</param>
/// <param name="StallStartMs">Per region, where that gap began, relative to the kill.</param>
/// <param name="Lost">Acknowledged sequences some region's subscriber never got.</param>
/// <param name="DoubleAppended">Sequences stored twice (delivered at two different log indexes / stream sequences).</param>
/// <param name="Redelivered">Deliveries of an index / stream sequence already delivered (the subscriber's duplicates, not the log's).</param>
public sealed record RoundResult(string System, int Round, double UnavailableMs, double[] StallMs, double[] StallStartMs, long Acked, long Published,
    long Lost, long DoubleAppended, long Redelivered, long Retries, long UnknownOutcomeRetries, long DuplicateAcks,
    List<long> LostSample, List<long> DoubledSample, IReadOnlyList<string> Timeline, List<string> Events);
