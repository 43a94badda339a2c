using System.Diagnostics;
using GeoRelay.Wan;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>A stretch of the run measured on its own: entries [FirstSeq, LastSeq] at one offered rate.</summary>
public sealed record Phase(string Name, int Rate, long FirstSeq, long LastSeq)
{
    public long Count => LastSeq - FirstSeq + 1;
}

/// <summary>
/// What the learners of one system saw: per phase and region a latency histogram (publish to learner), unique
/// deliveries and duplicates; for the fault phase a timeline of one learner per region. Learners call
/// <see cref="Track.Deliver"/> from their receive loops.
/// </summary>
public sealed class Recorder
{
    private readonly object _gate = new();
    private readonly List<Phase> _phases = new();
    private readonly string[] _regions;
    private readonly List<Track>[] _learners;
    // Read on every delivery without a lock: replaced whole when a phase is added.
    private volatile Phase[] _phaseArray = [];
    private volatile Cell[][] _cells = [];

    public sealed class Cell
    {
        public LatencyHistogram Latency { get; } = new();
        /// <summary>GeoRelay only: from the leader's append (the entry's own timestamp) to the learner, by the wall clock.</summary>
        public LatencyHistogram FromLeader { get; } = new();
        public long Unique, Duplicates;
        public long LastDeliveryTicks;
    }

    public Recorder(string[] regions)
    {
        _regions = regions;
        _learners = regions.Select(_ => new List<Track>()).ToArray();
    }

    public IReadOnlyList<Phase> Phases { get { lock (_gate) return _phases.ToList(); } }
    public List<(double AtSeconds, double LatencyMs)>[] Timeline { get; private set; } = [];
    public long TimelineStartTicks { get; private set; }
    private int _timelinePhase = -1;

    public void AddPhase(Phase phase, bool timeline = false)
    {
        lock (_gate)
        {
            _phases.Add(phase);
            _cells = [.. _cells, _regions.Select(_ => new Cell()).ToArray()];
            _phaseArray = _phases.ToArray();
            if (timeline)
            {
                _timelinePhase = _phases.Count - 1;
                Timeline = _regions.Select(_ => new List<(double, double)>()).ToArray();
                TimelineStartTicks = Stopwatch.GetTimestamp();
            }
        }
    }

    public Cell CellOf(int phase, int region) => _cells[phase][region];

    public Track NewLearner(int region)
    {
        var track = new Track(this, region, _learners[region].Count);
        lock (_gate) _learners[region].Add(track);
        return track;
    }

    /// <summary>Lowest next-expected sequence over the learners of every region: all have everything below it.</summary>
    public long MinNextSeq()
    {
        long min = long.MaxValue;
        lock (_gate)
            foreach (var list in _learners)
                foreach (var t in list) min = Math.Min(min, Volatile.Read(ref t.NextSeq));
        return min;
    }

    private int PhaseOf(long seq)
    {
        var phases = _phaseArray;
        for (int i = phases.Length - 1; i >= 0; i--)
            if (seq >= phases[i].FirstSeq && seq <= phases[i].LastSeq) return i;
        return -1;
    }

    /// <summary>One learner's stream: it expects every sequence number once, in order.</summary>
    public sealed class Track(Recorder owner, int region, int number)
    {
        public long NextSeq = 1;
        public long Gaps;

        /// <summary>An entry that carries the leader's append time (wall clock, µs since the Unix epoch): also splits the path there.</summary>
        public void Deliver(ReadOnlySpan<byte> payload, long leaderMicros)
        {
            long wallMicros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
            Deliver(payload);
            var (seq, _) = Corpus.ReadHeader(payload);
            int phase = owner.PhaseOf(seq);
            if (phase >= 0) owner.CellOf(phase, region).FromLeader.Record(wallMicros - leaderMicros);
        }

        public void Deliver(ReadOnlySpan<byte> payload)
        {
            long now = Stopwatch.GetTimestamp();
            var (seq, published) = Corpus.ReadHeader(payload);
            if (seq < NextSeq)
            {
                Count(seq, duplicate: true, 0, now);
                return;
            }
            if (seq > NextSeq) Gaps += seq - NextSeq;
            Volatile.Write(ref NextSeq, seq + 1);
            double micros = (now - published) * 1_000_000.0 / Stopwatch.Frequency;
            Count(seq, duplicate: false, micros, now);
            if (number == 0 && owner._timelinePhase >= 0 && owner.PhaseOf(seq) == owner._timelinePhase)
            {
                lock (owner.Timeline[region])
                    owner.Timeline[region].Add(((published - owner.TimelineStartTicks) / (double)Stopwatch.Frequency, micros / 1000));
            }
        }

        private void Count(long seq, bool duplicate, double micros, long now)
        {
            int phase = owner.PhaseOf(seq);
            if (phase < 0) return; // warm-up
            var cell = owner.CellOf(phase, region);
            if (duplicate)
            {
                Interlocked.Increment(ref cell.Duplicates);
                return;
            }
            Interlocked.Increment(ref cell.Unique);
            cell.Latency.Record(micros);
            long last;
            while (now > (last = Interlocked.Read(ref cell.LastDeliveryTicks)) && Interlocked.CompareExchange(ref cell.LastDeliveryTicks, now, last) != last) { }
        }
    }

    public int LearnersIn(int region) => _learners[region].Count;
}
