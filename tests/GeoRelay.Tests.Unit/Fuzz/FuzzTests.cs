using GeoRelay.Codec;
using GeoRelay.TestUtilities.Fuzzing;
using NUnit.Framework;

namespace GeoRelay.Tests.Unit.Fuzz;

/// <summary>The decoder fuzzer, bounded for CI; <c>bench/run fuzz N</c> runs it longer.</summary>
[TestFixture]
public sealed class FuzzTests
{
    private static readonly List<(string Target, string Name, byte[] Bytes)> Corpus = FuzzCorpus.Load(FuzzCorpus.DefaultDirectory);

    private static DecoderTarget TargetOf(string name)
    {
        foreach (var t in DecoderTargets.All)
            if (t.Name == name) return t;
        throw new AssertionException($"corpus file names unknown target '{name}'");
    }

    [Test]
    public void EveryDecoderHasSeedsOnDisk()
    {
        foreach (var target in DecoderTargets.All)
            Assert.That(Corpus.Exists(c => c.Target == target.Name && !c.Name.StartsWith("crash-", StringComparison.Ordinal)), $"no seed for {target.Name}");
    }

    [Test]
    public void SeedsDecodeAndMatchTheEncoders()
    {
        var built = new Dictionary<string, byte[]>();
        foreach (var (target, name, bytes) in DecoderTargets.Seeds()) built[target + "." + name] = bytes;
        foreach (var (target, name, bytes) in Corpus)
        {
            if (name.StartsWith("crash-", StringComparison.Ordinal)) continue;
            Assert.That(bytes, Is.EqualTo(built[target + "." + name]), $"{target}.{name}.bin is stale: rerun bench/run fuzz 0 --write-corpus");
            Assert.DoesNotThrow(() => TargetOf(target).Decode(bytes), $"seed {target}.{name} should be valid");
        }
    }

    /// <summary>Every input that once crashed a decoder (saved by the fuzzer as *.crash-*.bin) is now refused cleanly.</summary>
    [TestCaseSource(nameof(CrashInputs))]
    public void FormerCrashIsRefusedWithCodecExceptionOnly(string target, string name, byte[] bytes)
    {
        try
        {
            TargetOf(target).Decode(bytes);
        }
        catch (CodecException)
        {
        }
    }

    private static IEnumerable<TestCaseData> CrashInputs()
    {
        foreach (var (target, name, bytes) in Corpus)
            if (name.StartsWith("crash-", StringComparison.Ordinal)) yield return new TestCaseData(target, name, bytes).SetName($"Crash_{target}_{name}");
    }

    [Test]
    public void BoundedRunOverEveryDecoderFindsNothing()
    {
        var fuzzer = new MutationFuzzer(DecoderTargets.All, Corpus.ConvertAll(c => (c.Target, c.Bytes)), seed: 20261122);
        var report = fuzzer.Run(40_000);
        TestContext.Out.WriteLine($"{report.Iterations} inputs: {report.Rejected} rejected, {report.Accepted} accepted, {report.Findings.Count} findings");
        Assert.That(report.Findings, Is.Empty, string.Join("\n", report.Findings));
        // Mutations must actually reach the decoders' error paths, and some must stay valid.
        Assert.That(report.Rejected, Is.GreaterThan(report.Iterations / 2));
        Assert.That(report.Accepted, Is.GreaterThan(0));
    }

    [Test]
    public void SameSeedGivesTheSameRun()
    {
        var corpus = Corpus.ConvertAll(c => (c.Target, c.Bytes));
        var a = new MutationFuzzer(DecoderTargets.All, corpus, seed: 7).Run(2_000);
        var b = new MutationFuzzer(DecoderTargets.All, corpus, seed: 7).Run(2_000);
        Assert.That((a.Rejected, a.Accepted), Is.EqualTo((b.Rejected, b.Accepted)));
    }
}
