using System.Diagnostics;
using GeoRelay.Codec;

namespace GeoRelay.TestUtilities.Fuzzing;

/// <summary>Something a decoder did that it must not: any exception but CodecException, a slow input, a big allocation.</summary>
public sealed record FuzzFinding(string Target, long Iteration, string Problem, byte[] Input)
{
    public override string ToString() => $"{Target} #{Iteration}: {Problem} (input {Convert.ToHexString(Input.AsSpan(0, Math.Min(Input.Length, 64)))}{(Input.Length > 64 ? "…" : "")}, {Input.Length} bytes)";
}

public sealed record FuzzReport(long Iterations, long Rejected, long Accepted, IReadOnlyList<FuzzFinding> Findings, Dictionary<string, long> PerTarget);

/// <summary>
/// A seeded mutation fuzzer: takes a corpus input of a target, applies a few random mutations (bit flips,
/// interesting bytes and lengths, insertions, deletions, duplications, splices with other inputs, truncation)
/// and feeds the result to the target's decoder. The same seed gives the same sequence of inputs.
/// </summary>
public sealed class MutationFuzzer(IReadOnlyList<DecoderTarget> targets, IReadOnlyList<(string Target, byte[] Bytes)> corpus, int seed)
{
    /// <summary>An input slower than this is a finding (a decoder must be linear in its input).</summary>
    public TimeSpan SlowInput { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Stop after this many findings.</summary>
    public int MaxFindings { get; init; } = 20;

    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff];
    private static readonly uint[] InterestingLengths = [0, 1, 0x7f, 0x80, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

    public FuzzReport Run(long iterations)
    {
        var random = new Random(seed);
        var findings = new List<FuzzFinding>();
        var perTarget = new Dictionary<string, long>();
        var byTarget = new Dictionary<string, List<byte[]>>();
        foreach (var (target, bytes) in corpus)
        {
            if (!byTarget.TryGetValue(target, out var list)) byTarget[target] = list = new();
            list.Add(bytes);
        }
        long rejected = 0, accepted = 0;
        var clock = new Stopwatch();
        for (long i = 0; i < iterations && findings.Count < MaxFindings; i++)
        {
            var target = targets[(int)(i % targets.Count)];
            var own = byTarget.TryGetValue(target.Name, out var l) ? l : null;
            // Mostly the target's own inputs; sometimes another's, so layouts get crossed.
            var start = own is not null && random.Next(8) != 0 ? own[random.Next(own.Count)] : corpus[random.Next(corpus.Count)].Bytes;
            var input = Mutate(start, random);
            perTarget[target.Name] = perTarget.GetValueOrDefault(target.Name) + 1;
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            clock.Restart();
            try
            {
                target.Decode(input);
                accepted++;
            }
            catch (CodecException)
            {
                rejected++;
            }
            catch (Exception e)
            {
                findings.Add(new FuzzFinding(target.Name, i, $"{e.GetType().Name}: {e.Message}", input));
                continue;
            }
            clock.Stop();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            long allowance = target.AllocationAllowance + 32L * input.Length;
            if (allocated > allowance)
                findings.Add(new FuzzFinding(target.Name, i, $"allocated {allocated} bytes for a {input.Length}-byte input (allowance {allowance})", input));
            else if (clock.Elapsed > SlowInput)
                findings.Add(new FuzzFinding(target.Name, i, $"took {clock.Elapsed.TotalMilliseconds:0} ms", input));
        }
        return new FuzzReport(accepted + rejected + findings.Count, rejected, accepted, findings, perTarget);
    }

    private byte[] Mutate(byte[] start, Random random)
    {
        var data = new List<byte>(start);
        int mutations = 1 + random.Next(4);
        for (int m = 0; m < mutations; m++)
        {
            int n = data.Count;
            switch (random.Next(10))
            {
                case 0 when n > 0: data[random.Next(n)] ^= (byte)(1 << random.Next(8)); break;
                case 1 when n > 0: data[random.Next(n)] = (byte)random.Next(256); break;
                case 2 when n > 0: data[random.Next(n)] = InterestingBytes[random.Next(InterestingBytes.Length)]; break;
                case 3 when n >= 4:
                {
                    // A length or count field set to an edge value, little-endian.
                    uint value = InterestingLengths[random.Next(InterestingLengths.Length)];
                    int at = random.Next(n - 3);
                    for (int b = 0; b < 4; b++) data[at + b] = (byte)(value >> (8 * b));
                    break;
                }
                case 4:
                {
                    // A long varint: continuation bytes, maybe too many.
                    int at = random.Next(n + 1);
                    int length = 1 + random.Next(11);
                    var varint = new byte[length];
                    for (int b = 0; b < length - 1; b++) varint[b] = 0xff;
                    varint[^1] = (byte)random.Next(0x80);
                    data.InsertRange(at, varint);
                    break;
                }
                case 5:
                {
                    int at = random.Next(n + 1);
                    var bytes = new byte[1 + random.Next(16)];
                    random.NextBytes(bytes);
                    data.InsertRange(at, bytes);
                    break;
                }
                case 6 when n > 0:
                {
                    int at = random.Next(n);
                    data.RemoveRange(at, 1 + random.Next(Math.Min(16, n - at)));
                    break;
                }
                case 7 when n > 0:
                {
                    int at = random.Next(n);
                    int length = 1 + random.Next(Math.Min(64, n - at));
                    data.InsertRange(random.Next(n + 1), data.GetRange(at, length));
                    break;
                }
                case 8:
                {
                    var other = corpus[random.Next(corpus.Count)].Bytes;
                    if (other.Length == 0) break;
                    int from = random.Next(other.Length);
                    int length = 1 + random.Next(other.Length - from);
                    int at = random.Next(n + 1);
                    if (random.Next(2) == 0 && at < n) data.RemoveRange(at, n - at);
                    data.InsertRange(Math.Min(at, data.Count), other.AsSpan(from, length).ToArray());
                    break;
                }
                case 9 when n > 0:
                {
                    int cut = random.Next(n);
                    data.RemoveRange(cut, n - cut);
                    break;
                }
            }
        }
        return data.ToArray();
    }
}
