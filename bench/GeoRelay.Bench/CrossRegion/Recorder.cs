using System.Diagnostics;
using GeoRelay.Bench.Harness;
using HdrHistogram;

namespace GeoRelay.Bench.CrossRegion;

/// <summary>A stretch of the run measured on its own: entries [FirstSeq, LastSeq] at one offered rate.</summary>
public sealed record Phase(string Name, int Rate, long FirstSeq, long LastSeq)
{
    public long Count => LastSeq - FirstSeq + 1;
}

/// <summary>
/// What the learners of one system saw: per phase and region a latency histogram (publish to learner), unique
/// deliveries and duplicates; for the fault phase a timeline of one learner per region. Learners call
/// <see cref="Track.Deliver(ReadOnlySpan{byte})"/> from their receive loops.
/// </summary>
/// <remarks>
/// A delivery writes only its learner's own <see cref="Track"/>: the samples go to per-learner arrays that
/// <see cref="CellOf"/> merges when asked. Shared counters (one histogram per region, written by hundreds of
/// learners on both cores) cost about a microsecond per delivery in cache-line transfers, which at 1.5 million
/// deliveries a second made the recorder the bottleneck of the benchmark it measures.
/// </remarks>
public sealed class Recorder
{
    /// <summary>Most phases one run can have (rate steps plus the fault phase).</summary>
    public const int MaxPhases = 32;

    private readonly object _gate = new();
    private readonly List<Phase> _phases = new();
    private readonly string[] _regions;
    private readonly List<Track>[] _learners;
    // Read on every delivery without a lock: replaced whole when a phase is added.
    private volatile Phase[] _phaseArray = [];
    private readonly Dictionary<(int Phase, int Region), (long Samples, Cell Cell)> _merged = new();
    private bool _sealed;

    public sealed class Cell
    {
        /// <summary>Publish to learner, µs.</summary>
        public LongHistogram Latency { get; } = LatencyHistogram.Create();
        /// <summary>GeoRelay only: from the leader's append (the entry's own timestamp) to the learner, by the wall clock, µs.</summary>
        public LongHistogram FromLeader { get; } = LatencyHistogram.Create();
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
            if (_phases.Count == MaxPhases) throw new InvalidOperationException($"at most {MaxPhases} phases per run");
            _phases.Add(phase);
            _phaseArray = _phases.ToArray();
            if (timeline)
            {
                _timelinePhase = _phases.Count - 1;
                Timeline = _regions.Select(_ => new List<(double, double)>()).ToArray();
                TimelineStartTicks = Stopwatch.GetTimestamp();
            }
        }
    }

    /// <summary>
    /// Allocates every learner's sample storage for the phases to come (entries per phase, in order, as
    /// <see cref="AddPhase"/> will add them), so that recording allocates nothing while it is measured: growing it
    /// on the way made the benchmark process collect (seconds of gen-2 pauses in one system's run and none in the
    /// next, whose heap the first had already grown). Call before the warm-up, then collect once.
    /// </summary>
    public void Reserve(IReadOnlyList<long> entriesPerPhase, bool fromLeader)
    {
        lock (_gate)
            foreach (var list in _learners)
                foreach (var t in list) t.Reserve(entriesPerPhase, fromLeader);
    }

    /// <summary>The merged figures of one phase and region, as of now (recomputed only when learners recorded more).</summary>
    public Cell CellOf(int phase, int region)
    {
        lock (_gate)
        {
            long samples = 0;
            foreach (var t in _learners[region]) samples += t.SampleCount(phase);
            if (_merged.TryGetValue((phase, region), out var cached) && (cached.Samples == samples || _sealed)) return cached.Cell;
            var cell = new Cell();
            foreach (var t in _learners[region]) t.AddTo(phase, cell);
            _merged[(phase, region)] = (samples, cell);
            return cell;
        }
    }

    /// <summary>Merges every phase once more and drops the per-learner samples: the system is stopped, nothing more arrives.</summary>
    public void Seal()
    {
        lock (_gate)
        {
            for (int p = 0; p < _phases.Count; p++)
                for (int r = 0; r < _regions.Length; r++)
                    CellOf(p, r);
            _sealed = true;
            foreach (var list in _learners)
                foreach (var t in list) t.DropSamples();
        }
    }

    public Track NewLearner(int region)
    {
        lock (_gate)
        {
            var track = new Track(this, region, _learners[region].Count);
            _learners[region].Add(track);
            return track;
        }
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

    /// <summary>
    /// One learner's stream: it expects every sequence number once, in order. Written by that learner's receive
    /// loop only; <see cref="Recorder"/> reads it under its gate.
    /// </summary>
    public sealed class Track(Recorder owner, int region, int number)
    {
        public long NextSeq = 1;
        public long Gaps;
        private readonly PhaseSamples?[] _phases = new PhaseSamples?[MaxPhases];

        private sealed class PhaseSamples
        {
            public readonly Samples Latency = new(), FromLeader = new();
            public long Unique, Duplicates, LastDeliveryTicks;
        }

        /// <summary>An entry that carries the leader's append time (wall clock, µs since the Unix epoch): also splits the path there.</summary>
        public void Deliver(ReadOnlySpan<byte> payload, long leaderMicros)
        {
            long wallMicros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
            Deliver(payload);
            var (seq, _) = Corpus.ReadHeader(payload);
            int phase = owner.PhaseOf(seq);
            if (phase >= 0) SamplesOf(phase).FromLeader.Add(wallMicros - leaderMicros);
        }

        public void Deliver(ReadOnlySpan<byte> payload)
        {
            long now = Stopwatch.GetTimestamp();
            var (seq, published) = Corpus.ReadHeader(payload);
            int phase = owner.PhaseOf(seq);
            if (seq < NextSeq)
            {
                if (phase >= 0) SamplesOf(phase).Duplicates++;
                return;
            }
            if (seq > NextSeq) Gaps += seq - NextSeq;
            Volatile.Write(ref NextSeq, seq + 1);
            if (phase < 0) return; // warm-up
            double micros = (now - published) * 1_000_000.0 / Stopwatch.Frequency;
            var samples = SamplesOf(phase);
            samples.Unique++;
            samples.Latency.Add(micros);
            if (now > samples.LastDeliveryTicks) samples.LastDeliveryTicks = now;
            if (number == 0 && phase == owner._timelinePhase)
            {
                lock (owner.Timeline[region])
                    owner.Timeline[region].Add(((published - owner.TimelineStartTicks) / (double)Stopwatch.Frequency, micros / 1000));
            }
        }

        private PhaseSamples SamplesOf(int phase) => _phases[phase] ?? (_phases[phase] = new PhaseSamples());

        internal void Reserve(IReadOnlyList<long> entriesPerPhase, bool fromLeader)
        {
            for (int p = 0; p < entriesPerPhase.Count && p < MaxPhases; p++)
            {
                var samples = SamplesOf(p);
                samples.Latency.Reserve(entriesPerPhase[p]);
                if (fromLeader) samples.FromLeader.Reserve(entriesPerPhase[p]);
            }
        }

        internal long SampleCount(int phase) =>
            _phases[phase] is { } s ? s.Latency.Count + s.FromLeader.Count + Volatile.Read(ref s.Duplicates) : 0;

        internal void AddTo(int phase, Cell cell)
        {
            if (_phases[phase] is not { } s) return;
            s.Latency.AddTo(cell.Latency);
            s.FromLeader.AddTo(cell.FromLeader);
            cell.Unique += Volatile.Read(ref s.Unique);
            cell.Duplicates += Volatile.Read(ref s.Duplicates);
            cell.LastDeliveryTicks = Math.Max(cell.LastDeliveryTicks, Volatile.Read(ref s.LastDeliveryTicks));
        }

        internal void DropSamples()
        {
            foreach (var s in _phases)
            {
                s?.Latency.Drop();
                s?.FromLeader.Drop();
            }
        }
    }

    /// <summary>
    /// Latencies (µs, as float) appended by one writer and read by others, in chunks small enough to stay off the
    /// large-object heap (growing one array per learner churned it and cost gen-2 collections). A chunk is
    /// published before the count that needs it, so a reader that sees the count sees the chunk.
    /// </summary>
    private sealed class Samples
    {
        private const int ChunkSize = 8192; // 32 KiB
        private volatile float[]?[] _chunks = new float[]?[16];
        private int _count;

        public int Count => Volatile.Read(ref _count);

        /// <summary>Allocates the chunks for <paramref name="samples"/> values up front (before anything is recorded).</summary>
        public void Reserve(long samples)
        {
            int needed = (int)Math.Min(int.MaxValue, (samples + ChunkSize - 1) / ChunkSize);
            var chunks = _chunks;
            if (needed > chunks.Length) Array.Resize(ref chunks, needed);
            for (int i = 0; i < needed; i++) chunks[i] ??= new float[ChunkSize];
            _chunks = chunks;
        }

        public void Add(double micros)
        {
            int n = _count;
            int chunk = n / ChunkSize;
            var chunks = _chunks;
            if (chunk == chunks.Length)
            {
                Array.Resize(ref chunks, chunks.Length * 2);
                _chunks = chunks;
            }
            var values = chunks[chunk] ??= new float[ChunkSize];
            values[n % ChunkSize] = (float)micros;
            Volatile.Write(ref _count, n + 1);
        }

        public void AddTo(HistogramBase histogram)
        {
            int n = Count;
            var chunks = _chunks;
            for (int i = 0; i < n; i++) histogram.RecordMicros(chunks[i / ChunkSize]![i % ChunkSize]);
        }

        public void Drop()
        {
            Volatile.Write(ref _count, 0);
            _chunks = new float[]?[16];
        }
    }

    public int LearnersIn(int region)
    {
        lock (_gate) return _learners[region].Count;
    }
}
