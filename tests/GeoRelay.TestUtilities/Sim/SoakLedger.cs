using System.Globalization;
using System.Text;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>One contiguous range of seeds that ran to the end, with what they did; a row of the ledger.</summary>
public sealed class SoakRange
{
    public string Run = "";
    public string Commit = "";
    public int Threads;
    public int From;
    public int To;
    public long Steps;
    public long Entries;
    public long Failovers;
    public long DirectFallbacks;
    public long LearnerReconnects;
    public long[] Faults = new long[Enum.GetValues<FaultKind>().Length];
    /// <summary>Seeds of this range that broke an invariant, as seed@step.</summary>
    public List<string> Failures = new();
    /// <summary>FNV-1a over (seed, trace hash) in seed order: the same range on the same commit gives the same digest.</summary>
    public ulong TraceDigest = 14695981039346656037UL;
    public double WorkerSeconds;
    public DateTime FinishedUtc;

    public int Seeds => To - From + 1;

    public void Add(SimulationResult r)
    {
        Steps += r.Steps;
        Entries += (long)r.Entries;
        Failovers += r.Failovers;
        DirectFallbacks += r.DirectFallbacks;
        LearnerReconnects += r.LearnerReconnects;
        foreach (var (kind, n) in r.Faults) Faults[(int)kind] += n;
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
/// <c>bench/results/soak-ledger.csv</c>: every range of seeds a soak finished, one row each, appended as soon as
/// the range is done, so an interrupted soak loses at most the ranges its workers were in the middle of and the
/// next run skips what is already there. The report covers the union of the rows.
/// </summary>
public static class SoakLedger
{
    private static readonly string[] FixedColumns =
        ["run", "commit", "threads", "from", "to", "seeds", "failed", "steps", "entries", "failovers", "direct_fallbacks", "learner_reconnects"];

    private static readonly string[] TailColumns = ["failed_seeds", "trace_digest", "worker_seconds", "finished_utc"];

    public static string Header => string.Join(',', FixedColumns.Concat(Enum.GetNames<FaultKind>()).Concat(TailColumns));

    /// <summary>Fault columns under the names older ledgers gave them (the proxy was renamed relay).</summary>
    private static readonly Dictionary<string, string> FormerNames = new()
    {
        [nameof(FaultKind.CrashRelay)] = "CrashProxy",
        [nameof(FaultKind.CrashEveryRelayOfADatacenter)] = "CrashEveryProxyOfADatacenter",
    };

    /// <summary>Fault kinds added after the ledger began: a ledger written before has no column for them, and its seeds had none.</summary>
    private static readonly HashSet<string> AddedLater = [nameof(FaultKind.DiskFails)];

    /// <summary>Reads every row, from a ledger of the current layout or of an older one (renamed or missing fault columns).</summary>
    public static List<SoakRange> Read(string path)
    {
        var rows = new List<SoakRange>();
        if (!File.Exists(path)) return rows;
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) return rows;
        var columns = lines[0].Split(',');
        int Column(string name)
        {
            int i = Array.IndexOf(columns, name);
            if (i < 0 && FormerNames.TryGetValue(name, out var former)) i = Array.IndexOf(columns, former);
            if (i < 0) throw new FormatException($"{path}: the header has no column '{name}'");
            return i;
        }
        var kinds = Enum.GetNames<FaultKind>();
        for (int n = 1; n < lines.Length; n++)
        {
            if (lines[n].Length == 0) continue;
            var f = lines[n].Split(',');
            if (f.Length != columns.Length)
                throw new FormatException($"{path} line {n + 1}: {f.Length} fields, the header has {columns.Length}");
            try
            {
                var row = new SoakRange
                {
                    Run = f[Column("run")],
                    Commit = f[Column("commit")],
                    Threads = int.Parse(f[Column("threads")], CultureInfo.InvariantCulture),
                    From = int.Parse(f[Column("from")], CultureInfo.InvariantCulture),
                    To = int.Parse(f[Column("to")], CultureInfo.InvariantCulture),
                    Steps = long.Parse(f[Column("steps")], CultureInfo.InvariantCulture),
                    Entries = long.Parse(f[Column("entries")], CultureInfo.InvariantCulture),
                    Failovers = long.Parse(f[Column("failovers")], CultureInfo.InvariantCulture),
                    DirectFallbacks = long.Parse(f[Column("direct_fallbacks")], CultureInfo.InvariantCulture),
                    LearnerReconnects = long.Parse(f[Column("learner_reconnects")], CultureInfo.InvariantCulture),
                    TraceDigest = ulong.Parse(f[Column("trace_digest")], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    WorkerSeconds = double.Parse(f[Column("worker_seconds")], CultureInfo.InvariantCulture),
                    FinishedUtc = DateTime.Parse(f[Column("finished_utc")], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
                };
                for (int k = 0; k < kinds.Length; k++)
                {
                    if (AddedLater.Contains(kinds[k]) && Array.IndexOf(columns, kinds[k]) < 0) continue;
                    row.Faults[k] = long.Parse(f[Column(kinds[k])], CultureInfo.InvariantCulture);
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
        line.AppendJoin(',', r.Run, r.Commit, r.Threads, r.From, r.To, r.Seeds, r.Failures.Count, r.Steps, r.Entries,
            r.Failovers, r.DirectFallbacks, r.LearnerReconnects);
        foreach (var n in r.Faults) line.Append(',').Append(n);
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
        if (!fresh && File.ReadLines(path).First() != Header)
        {
            var upgraded = new StringBuilder(Header).Append('\n');
            foreach (var row in Read(path)) upgraded.Append(Format(row)).Append('\n');
            string temporary = path + ".upgrading";
            File.WriteAllText(temporary, upgraded.ToString());
            File.Move(temporary, path, overwrite: true);
        }
        File.AppendAllText(path, (fresh ? Header + "\n" : "") + Format(r) + "\n");
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
