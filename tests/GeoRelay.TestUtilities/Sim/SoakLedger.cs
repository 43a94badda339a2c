using System.Globalization;
using System.Text;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// The counter columns of one simulation's ledger (between the range's fixed columns and its failures, digest and
/// timing), with the names older ledgers of it gave them.
/// </summary>
public sealed class SoakSchema
{
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    private SoakSchema(string[] counters, Dictionary<string, string>? formerNames = null, HashSet<string>? addedLater = null)
    {
        Counters = counters;
        for (int i = 0; i < counters.Length; i++) _index.Add(counters[i], i);
        FormerNames = formerNames ?? new();
        AddedLater = addedLater ?? new();
    }

    public IReadOnlyList<string> Counters { get; }

    /// <summary>Columns under the names older ledgers gave them.</summary>
    internal Dictionary<string, string> FormerNames { get; }

    /// <summary>Columns added after the ledger began: a ledger written before has none, and its seeds counted 0.</summary>
    internal HashSet<string> AddedLater { get; }

    public int IndexOf(string counter) =>
        _index.TryGetValue(counter, out int i) ? i : throw new ArgumentException($"no counter '{counter}' in this ledger", nameof(counter));

    /// <summary><see cref="FaultSimulation"/>: the fixed leader with relays, members and learners under <see cref="FaultKind"/> faults.</summary>
    public static SoakSchema Faults { get; } = new(
        ["steps", "entries", "failovers", "direct_fallbacks", "learner_reconnects", .. Enum.GetNames<FaultKind>()],
        new()
        {
            // The proxy was renamed relay.
            [nameof(FaultKind.CrashRelay)] = "CrashProxy",
            [nameof(FaultKind.CrashEveryRelayOfADatacenter)] = "CrashEveryProxyOfADatacenter",
        },
        [nameof(FaultKind.DiskFails), nameof(FaultKind.CutRelayFeed)]);

    /// <summary><see cref="VoterChaos"/>: elections with every voter a voter engine, under <see cref="VoterFault"/> faults.</summary>
    public static SoakSchema Voters { get; } = new(
        ["steps", "entries", "leader_terms", "learner_truncations", "learner_reconnects", .. Enum.GetNames<VoterFault>(), "snapshot_installs"],
        addedLater: [nameof(VoterFault.KillVoter), nameof(VoterFault.SilenceLeader), "snapshot_installs"]);
}

/// <summary>One contiguous range of seeds that ran to the end, with what they did; a row of the ledger.</summary>
public sealed class SoakRange(SoakSchema schema)
{
    public SoakSchema Schema { get; } = schema;
    public string Run = "";
    public string Commit = "";
    public int Threads;
    public int From;
    public int To;
    /// <summary>The schema's counters, in its order.</summary>
    public long[] Counts = new long[schema.Counters.Count];
    /// <summary>Seeds of this range that broke an invariant, as seed@step.</summary>
    public List<string> Failures = new();
    /// <summary>FNV-1a over (seed, trace hash) in seed order: the same range on the same commit gives the same digest.</summary>
    public ulong TraceDigest = 14695981039346656037UL;
    public double WorkerSeconds;
    public DateTime FinishedUtc;

    public int Seeds => To - From + 1;

    public long this[string counter]
    {
        get => Counts[Schema.IndexOf(counter)];
        set => Counts[Schema.IndexOf(counter)] = value;
    }

    public void Add(SimulationResult r)
    {
        this["steps"] += r.Steps;
        this["entries"] += (long)r.Entries;
        this["failovers"] += r.Failovers;
        this["direct_fallbacks"] += r.DirectFallbacks;
        this["learner_reconnects"] += r.LearnerReconnects;
        foreach (var (kind, n) in r.Faults) this[kind.ToString()] += n;
        Digest((ulong)r.Seed, r.TraceHash);
    }

    public void Add(VoterChaosResult r)
    {
        this["steps"] += r.Steps;
        this["entries"] += (long)r.Entries;
        this["leader_terms"] += r.LeaderTerms;
        this["learner_truncations"] += r.Truncations;
        this["learner_reconnects"] += r.LearnerReconnects;
        this["snapshot_installs"] += r.SnapshotInstalls;
        foreach (var (kind, n) in r.Faults) this[kind.ToString()] += n;
        Digest((ulong)r.Seed, r.TraceHash);
    }

    public void Fail(InvariantViolationException e)
    {
        Failures.Add($"{e.Seed}@{e.Step}");
        Digest((ulong)e.Seed, 0);
    }

    private void Digest(ulong seed, ulong trace)
    {
        TraceDigest = (TraceDigest ^ seed) * 1099511628211UL;
        TraceDigest = (TraceDigest ^ trace) * 1099511628211UL;
    }
}

/// <summary>
/// A soak's ledger (<c>bench/results/soak-ledger.csv</c>, <c>soak-voters-ledger.csv</c>): every range of seeds a soak finished, one row each, appended as soon as
/// the range is done, so an interrupted soak loses at most the ranges its workers were in the middle of and the
/// next run skips what is already there. The report covers the union of the rows.
/// </summary>
public static class SoakLedger
{
    private static readonly string[] FixedColumns = ["run", "commit", "threads", "from", "to", "seeds", "failed"];

    private static readonly string[] TailColumns = ["failed_seeds", "trace_digest", "worker_seconds", "finished_utc"];

    public static string Header(SoakSchema schema) => string.Join(',', FixedColumns.Concat(schema.Counters).Concat(TailColumns));

    /// <summary>Reads every row, from a ledger of the current layout or of an older one (renamed or missing counter columns).</summary>
    public static List<SoakRange> Read(string path, SoakSchema schema)
    {
        var rows = new List<SoakRange>();
        if (!File.Exists(path)) return rows;
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) return rows;
        var columns = lines[0].Split(',');
        int Column(string name)
        {
            int i = Array.IndexOf(columns, name);
            if (i < 0 && schema.FormerNames.TryGetValue(name, out var former)) i = Array.IndexOf(columns, former);
            if (i < 0) throw new FormatException($"{path}: the header has no column '{name}'");
            return i;
        }
        var counters = schema.Counters;
        for (int n = 1; n < lines.Length; n++)
        {
            if (lines[n].Length == 0) continue;
            var f = lines[n].Split(',');
            if (f.Length != columns.Length)
                throw new FormatException($"{path} line {n + 1}: {f.Length} fields, the header has {columns.Length}");
            try
            {
                var row = new SoakRange(schema)
                {
                    Run = f[Column("run")],
                    Commit = f[Column("commit")],
                    Threads = int.Parse(f[Column("threads")], CultureInfo.InvariantCulture),
                    From = int.Parse(f[Column("from")], CultureInfo.InvariantCulture),
                    To = int.Parse(f[Column("to")], CultureInfo.InvariantCulture),
                    TraceDigest = ulong.Parse(f[Column("trace_digest")], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    WorkerSeconds = double.Parse(f[Column("worker_seconds")], CultureInfo.InvariantCulture),
                    FinishedUtc = DateTime.Parse(f[Column("finished_utc")], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
                };
                for (int k = 0; k < counters.Count; k++)
                {
                    if (schema.AddedLater.Contains(counters[k]) && Array.IndexOf(columns, counters[k]) < 0) continue;
                    row.Counts[k] = long.Parse(f[Column(counters[k])], CultureInfo.InvariantCulture);
                }
                var failed = f[Column("failed_seeds")];
                if (failed.Length > 0) row.Failures.AddRange(failed.Split(' '));
                if (row.To < row.From) throw new FormatException($"range {row.From}-{row.To} is empty");
                rows.Add(row);
            }
            catch (FormatException e)
            {
                throw new FormatException($"{path} line {n + 1}: {e.Message}", e);
            }
        }
        return rows;
    }

    public static string Format(SoakRange r)
    {
        var line = new StringBuilder();
        line.AppendJoin(',', r.Run, r.Commit, r.Threads, r.From, r.To, r.Seeds, r.Failures.Count);
        foreach (var n in r.Counts) line.Append(',').Append(n);
        line.Append(',').AppendJoin(' ', r.Failures);
        line.Append(',').Append(r.TraceDigest.ToString("x16", CultureInfo.InvariantCulture));
        line.Append(',').Append(r.WorkerSeconds.ToString("F1", CultureInfo.InvariantCulture));
        line.Append(',').Append(r.FinishedUtc.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
        return line.ToString();
    }

    /// <summary>
    /// Appends one finished range (creating the file with its header first). A ledger of an older layout is first
    /// rewritten in the current one, rows unchanged, so the new row lands under a header that matches it.
    /// </summary>
    public static void Append(string path, SoakRange r)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        bool fresh = !File.Exists(path) || new FileInfo(path).Length == 0;
        string header = Header(r.Schema);
        if (!fresh && File.ReadLines(path).First() != header)
        {
            var upgraded = new StringBuilder(header).Append('\n');
            foreach (var row in Read(path, r.Schema)) upgraded.Append(Format(row)).Append('\n');
            string temporary = path + ".upgrading";
            File.WriteAllText(temporary, upgraded.ToString());
            File.Move(temporary, path, overwrite: true);
        }
        File.AppendAllText(path, (fresh ? header + "\n" : "") + Format(r) + "\n");
    }

    /// <summary>The seeds of [from, to] that no row covers, as contiguous ranges of at most <paramref name="chunk"/> seeds.</summary>
    public static List<(int From, int To)> Missing(IEnumerable<SoakRange> done, int from, int to, int chunk)
    {
        var covered = done.Select(r => (r.From, r.To)).OrderBy(r => r.From).ToList();
        var missing = new List<(int, int)>();
        int next = from;
        foreach (var (a, b) in covered)
        {
            if (b < next) continue;
            if (a > to) break;
            if (a > next) Split(next, Math.Min(a - 1, to));
            next = Math.Max(next, b + 1);
            if (next > to) break;
        }
        if (next <= to) Split(next, to);
        return missing;

        void Split(int a, int b)
        {
            for (int s = a; s <= b; s += chunk) missing.Add((s, Math.Min(b, s + chunk - 1)));
        }
    }

    /// <summary>How many distinct seeds the rows cover.</summary>
    public static long DistinctSeeds(IEnumerable<SoakRange> rows)
    {
        long count = 0;
        long next = long.MinValue;
        foreach (var (a, b) in rows.Select(r => ((long)r.From, (long)r.To)).OrderBy(r => r.Item1))
        {
            long start = Math.Max(a, next);
            if (b >= start) count += b - start + 1;
            next = Math.Max(next, b + 1);
        }
        return count;
    }
}
