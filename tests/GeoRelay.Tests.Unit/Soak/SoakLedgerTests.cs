using GeoRelay.TestUtilities.Sim;
using NUnit.Framework;
using GeoRelay.Bench.Soak;

namespace GeoRelay.Tests.Unit.Soak;

public sealed class SoakLedgerTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("soak-ledger-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static SoakRange Row(int from, int to) => new(SoakSchema.Faults) { Run = "20261122T000000Z", Commit = "abc", Threads = 2, From = from, To = to, FinishedUtc = new DateTime(2026, 11, 22, 1, 2, 3, DateTimeKind.Utc) };

    [Test]
    public void Missing_skips_what_the_ledger_covers_and_splits_the_rest_into_chunks()
    {
        var done = new[] { Row(1, 10), Row(21, 25), Row(24, 30) };
        Assert.That(SoakLedger.Missing(done, 1, 40, chunk: 4), Is.EqualTo(new[] { (11, 14), (15, 18), (19, 20), (31, 34), (35, 38), (39, 40) }));
        Assert.That(SoakLedger.Missing(done, 5, 9, chunk: 4), Is.Empty);
        Assert.That(SoakLedger.Missing([], 7, 9, chunk: 100), Is.EqualTo(new[] { (7, 9) }));
    }

    [Test]
    public void DistinctSeeds_counts_overlapping_rows_once() =>
        Assert.That(SoakLedger.DistinctSeeds([Row(1, 10), Row(5, 12), Row(20, 20)]), Is.EqualTo(13));

    [Test]
    public void A_row_reads_back_as_written()
    {
        string path = Path.Combine(_dir, "ledger.csv");
        var row = Row(101, 350);
        row["steps"] = 123_456;
        row["entries"] = 7_890;
        row["failovers"] = 12;
        row["direct_fallbacks"] = 3;
        row["learner_reconnects"] = 44;
        row[nameof(FaultKind.CrashEveryRelayOfADatacenter)] = 9;
        row.Failures.AddRange(["117@1234", "300@88"]);
        row.TraceDigest = 0x0123456789abcdefUL;
        row.WorkerSeconds = 12.5;
        SoakLedger.Append(path, row);
        SoakLedger.Append(path, Row(351, 400));

        var back = SoakLedger.Read(path, SoakSchema.Faults);
        Assert.That(back, Has.Count.EqualTo(2));
        Assert.That(SoakLedger.Format(back[0]), Is.EqualTo(SoakLedger.Format(row)));
        Assert.That(back[0].Failures, Is.EqualTo(new[] { "117@1234", "300@88" }));
        Assert.That(File.ReadAllLines(path)[0], Is.EqualTo(SoakLedger.Header(SoakSchema.Faults)), "one header, at the top");
    }

    /// <summary>The header and first row of bench/results/soak-ledger.csv as the soak of a72f0975a547 wrote them.</summary>
    private const string OldLedger =
        "run,commit,threads,from,to,seeds,failed,steps,entries,failovers,direct_fallbacks,learner_reconnects,CrashProxy,CrashMember,CrashEveryProxyOfADatacenter,CutLink,PartitionDatacenter,SlowLink,DropConnection,ReplaceLeader,failed_seeds,trace_digest,worker_seconds,finished_utc\n" +
        "20261122T050631Z,a72f0975a547,2,1,250,250,0,459368,257752,620,267,824,103,144,151,133,162,131,151,153,,2b941810a0b1ce19,220.5,2026-11-22T05:10:12Z\n";

    [Test]
    public void A_ledger_of_the_old_layout_reads_with_renamed_and_missing_fault_columns()
    {
        string path = Path.Combine(_dir, "ledger.csv");
        File.WriteAllText(path, OldLedger);

        var row = SoakLedger.Read(path, SoakSchema.Faults).Single();

        Assert.That((row.From, row.To, row["steps"], row["learner_reconnects"], row.TraceDigest), Is.EqualTo((1, 250, 459368L, 824L, 0x2b941810a0b1ce19UL)));
        Assert.That(row[nameof(FaultKind.CrashRelay)], Is.EqualTo(103), "CrashProxy is the relay crash's former name");
        Assert.That(row[nameof(FaultKind.CrashEveryRelayOfADatacenter)], Is.EqualTo(151));
        Assert.That(row[nameof(FaultKind.ReplaceLeader)], Is.EqualTo(153));
        Assert.That(row[nameof(FaultKind.DiskFails)], Is.Zero, "no disk faults before the kind existed");
    }

    [Test]
    public void Appending_to_an_old_ledger_rewrites_it_in_the_current_layout_first()
    {
        string path = Path.Combine(_dir, "ledger.csv");
        File.WriteAllText(path, OldLedger);
        var old = SoakLedger.Read(path, SoakSchema.Faults).Single();

        SoakLedger.Append(path, Row(251, 500));

        Assert.That(File.ReadAllLines(path)[0], Is.EqualTo(SoakLedger.Header(SoakSchema.Faults)));
        var back = SoakLedger.Read(path, SoakSchema.Faults);
        Assert.That(back.Select(r => (r.From, r.To)), Is.EqualTo(new[] { (1, 250), (251, 500) }));
        Assert.That(SoakLedger.Format(back[0]), Is.EqualTo(SoakLedger.Format(old)), "the old row unchanged");
    }

    [Test]
    public void A_ledger_missing_a_column_that_always_existed_is_refused_naming_it()
    {
        string path = Path.Combine(_dir, "ledger.csv");
        File.WriteAllText(path, OldLedger.Replace("CutLink", "Cut"));
        var e = Assert.Throws<FormatException>(() => SoakLedger.Read(path, SoakSchema.Faults));
        Assert.That(e!.Message, Does.Contain("no column 'CutLink'"));
    }

    [Test]
    public void A_damaged_row_is_reported_with_its_line()
    {
        string path = Path.Combine(_dir, "ledger.csv");
        SoakLedger.Append(path, Row(1, 5));
        File.AppendAllText(path, "20261122T000000Z,abc,2,6\n");
        var e = Assert.Throws<FormatException>(() => SoakLedger.Read(path, SoakSchema.Faults));
        Assert.That(e!.Message, Does.Contain("line 3").And.Contain("fields"));
    }

    [Test]
    public async Task A_second_soak_runs_only_the_seeds_the_ledger_lacks()
    {
        string ledger = Path.Combine(_dir, "ledger.csv"), report = Path.Combine(_dir, "soak.md");
        Assert.That(await SoakBenchmark.RunAsync(["3", "--chunk", "2", "--ledger", ledger, "--out", report]), Is.EqualTo(0));
        var first = SoakLedger.Read(ledger, SoakSchema.Faults);
        Assert.That(SoakLedger.DistinctSeeds(first), Is.EqualTo(3));

        Assert.That(await SoakBenchmark.RunAsync(["4", "--chunk", "2", "--ledger", ledger, "--out", report]), Is.EqualTo(0));
        var second = SoakLedger.Read(ledger, SoakSchema.Faults);
        Assert.That(second.Skip(first.Count).Select(r => (r.From, r.To)), Is.EqualTo(new[] { (4, 4) }), "only seed 4 was new");
        Assert.That(File.ReadAllText(report), Does.Contain("| 4 (1..4) | 4 | 0 |").And.Not.Contain("Not finished"));

        // The same seed on the same code gives the same trace, in another process or run alike.
        string again = Path.Combine(_dir, "again.csv");
        Assert.That(await SoakBenchmark.RunAsync(["2", "--chunk", "2", "--threads", "1", "--ledger", again, "--out", report]), Is.EqualTo(0));
        Assert.That(SoakLedger.Read(again, SoakSchema.Faults).Single().TraceDigest, Is.EqualTo(first.Single(r => r.From == 1).TraceDigest));
    }
}
