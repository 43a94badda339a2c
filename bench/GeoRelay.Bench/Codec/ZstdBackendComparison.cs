using System.Buffers;
using System.Diagnostics;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Codec.Compression;
using GeoRelay.Codec.Compression.Internal;

namespace GeoRelay.Bench.Codec;

/// <summary>
/// <c>bench codec --backends</c>: native libzstd against ZstdSharp.Port on the same real text, in one process,
/// round after round with the order alternating, every run reported. Writes <c>bench/results/codec-backends.md</c>.
/// </summary>
public static class ZstdBackendComparison
{
    private const int StreamMessageSize = 256;
    private const int StreamMessages = 4096;
    private const int StreamLevel = 1;

    private static readonly ZstdBackend[] Backends = [ZstdBackend.Native, ZstdBackend.Managed];

    /// <summary>One timed operation, built once per back end: <c>Pass</c> processes <c>Bytes</c> uncompressed bytes.</summary>
    private sealed record Operation(string Name, string Input, long Bytes, int Messages, Func<ZstdBackend, Action> Build)
    {
        public Dictionary<ZstdBackend, Action> Passes { get; } = [];
        public Dictionary<ZstdBackend, long> CompressedBytes { get; } = [];
        public List<(int Round, ZstdBackend First, Dictionary<ZstdBackend, double> MBps)> Runs { get; } = [];
    }

    public static Task<int> RunAsync(string[] args)
    {
        int rounds = 9;
        var warmup = TimeSpan.FromSeconds(1);
        var minSample = TimeSpan.FromMilliseconds(300);
        string output = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "codec-backends.md");
        string? corpusFile = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(args[++i]); break;
                case "--quick": rounds = 3; warmup = TimeSpan.FromMilliseconds(300); minSample = TimeSpan.FromMilliseconds(100); break;
                case "--corpus": corpusFile = args[++i]; break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}; options: --rounds N (default 9), --quick, --corpus FILE, --out FILE");
                    return Task.FromResult(2);
            }
        }
        if (!Zstd.IsUsable(ZstdBackend.Native))
        {
            Console.Error.WriteLine("the comparison needs libzstd.so.1 (apt-get install libzstd1)");
            return Task.FromResult(1);
        }
        var (corpus, corpusLabel) = LoadCorpus(corpusFile);
        if (corpus.Length < (2 << 20) + StreamMessages * StreamMessageSize)
        {
            Console.Error.WriteLine($"{corpusLabel} has {corpus.Length:N0} bytes; the comparison needs about 3 MiB (pass --corpus FILE)");
            return Task.FromResult(1);
        }

        var clock = Stopwatch.StartNew();
        var operations = BuildOperations(corpus);
        foreach (var op in operations)
        {
            foreach (var backend in Backends)
            {
                op.Passes[backend] = op.Build(backend);
                WarmUp(op.Passes[backend], warmup);
            }
        }
        Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] warmed up {operations.Count} operations on both back ends");

        for (int round = 1; round <= rounds; round++)
        {
            // Alternate which back end goes first, so neither always runs on a cache or CPU state the other left.
            ZstdBackend first = round % 2 == 1 ? ZstdBackend.Native : ZstdBackend.Managed;
            ZstdBackend[] order = first == ZstdBackend.Native ? [ZstdBackend.Native, ZstdBackend.Managed] : [ZstdBackend.Managed, ZstdBackend.Native];
            foreach (var op in operations)
            {
                var mbps = new Dictionary<ZstdBackend, double>();
                foreach (var backend in order)
                    mbps[backend] = Sample(op.Passes[backend], op.Bytes, minSample);
                op.Runs.Add((round, first, mbps));
            }
            Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] round {round} of {rounds} ({first} first)");
        }

        string report = Report(operations, corpusLabel, rounds, minSample, warmup, clock.Elapsed);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllText(output, report);
        Console.WriteLine(report);
        Console.WriteLine($"wrote {output} in {clock.Elapsed.TotalSeconds:F0} s");
        return Task.FromResult(0);
    }

    /// <summary>The copyright files Debian installs (/usr/share/doc/*/copyright, in path order), or one given file: real English and licence text.</summary>
    private static (byte[] Bytes, string Label) LoadCorpus(string? file)
    {
        if (file is not null)
            return (File.ReadAllBytes(file), file);
        var files = Directory.Exists("/usr/share/doc")
            ? Directory.GetDirectories("/usr/share/doc").Select(d => Path.Combine(d, "copyright")).Where(File.Exists).Order(StringComparer.Ordinal).ToList()
            : [];
        var all = new ArrayBufferWriter<byte>();
        foreach (var path in files)
            all.Write(File.ReadAllBytes(path));
        return (all.WrittenSpan.ToArray(), $"/usr/share/doc/*/copyright ({files.Count} files concatenated in path order, {all.WrittenCount / 1e6:F1} MB)");
    }

    private static List<Operation> BuildOperations(byte[] corpus)
    {
        var operations = new List<Operation>();
        foreach (int size in new[] { 64 << 10, 1 << 20 })
        {
            // 64 KiB from the start, 1 MiB from right after it: different text, no overlap.
            byte[] input = corpus.AsSpan(size == 64 << 10 ? 0 : 64 << 10, size).ToArray();
            string label = size == 64 << 10 ? "64 KiB" : "1 MiB";
            foreach (int level in new[] { 1, 3 })
            {
                byte[] nativeFrame = OneShot(input, level, ZstdBackend.Native);
                Operation compress = new($"one-shot compress, level {level}", label, size, 1, backend =>
                {
                    var writer = new ArrayBufferWriter<byte>(Zstd.CompressBound(size));
                    return () =>
                    {
                        writer.Clear();
                        Zstd.Compress(input, writer, level, backend);
                    };
                });
                foreach (var backend in Backends)
                {
                    byte[] frame = OneShot(input, level, backend);
                    compress.CompressedBytes[backend] = frame.Length;
                    // Each back end's frame must decode on the other before anything is timed.
                    Verify(input, frame, backend == ZstdBackend.Native ? ZstdBackend.Managed : ZstdBackend.Native);
                }
                operations.Add(compress);
                // Both decoders get the same frame (libzstd's), so they do the same work.
                operations.Add(new Operation($"one-shot decompress, level {level} frame", label, size, 1, backend =>
                {
                    var writer = new ArrayBufferWriter<byte>(size);
                    return () =>
                    {
                        writer.Clear();
                        Zstd.Decompress(nativeFrame, writer, size, backend);
                    };
                }));
            }
        }

        // A connection's stream: 4,096 messages of 256 bytes, each flushed, history carried across them.
        int streamStart = (64 << 10) + (1 << 20);
        byte[][] messages = new byte[StreamMessages][];
        for (int i = 0; i < StreamMessages; i++)
            messages[i] = corpus.AsSpan(streamStart + i * StreamMessageSize, StreamMessageSize).ToArray();
        long streamBytes = (long)StreamMessages * StreamMessageSize;
        byte[][] nativeStream = CompressStream(messages, ZstdBackend.Native);
        var streamCompress = new Operation($"stream compress, level {StreamLevel}, flush per message", $"{StreamMessages:N0} × {StreamMessageSize} B", streamBytes, StreamMessages, backend =>
        {
            var compressor = new ZstdStreamCompressor(StreamLevel, default, backend);
            var writer = new ArrayBufferWriter<byte>(64 << 10);
            return () =>
            {
                compressor.Reset();
                foreach (var message in messages)
                {
                    writer.Clear();
                    compressor.CompressMessage(message, writer);
                }
            };
        });
        foreach (var backend in Backends)
        {
            byte[][] stream = CompressStream(messages, backend);
            streamCompress.CompressedBytes[backend] = stream.Sum(m => (long)m.Length);
            VerifyStream(messages, stream, backend == ZstdBackend.Native ? ZstdBackend.Managed : ZstdBackend.Native);
        }
        operations.Add(streamCompress);
        operations.Add(new Operation("stream decompress, message by message", $"{StreamMessages:N0} × {StreamMessageSize} B", streamBytes, StreamMessages, backend =>
        {
            var decompressor = new ZstdStreamDecompressor(default, backend);
            var writer = new ArrayBufferWriter<byte>(64 << 10);
            return () =>
            {
                decompressor.Reset();
                foreach (var message in nativeStream)
                {
                    writer.Clear();
                    decompressor.DecompressMessage(message, writer, 1 << 20);
                }
            };
        }));
        return operations;
    }

    private static byte[] OneShot(byte[] input, int level, ZstdBackend backend)
    {
        var writer = new ArrayBufferWriter<byte>();
        Zstd.Compress(input, writer, level, backend);
        return writer.WrittenSpan.ToArray();
    }

    private static void Verify(byte[] input, byte[] frame, ZstdBackend reader)
    {
        var writer = new ArrayBufferWriter<byte>(input.Length);
        Zstd.Decompress(frame, writer, input.Length, reader);
        if (!writer.WrittenSpan.SequenceEqual(input))
            throw new InvalidOperationException($"a frame does not round-trip through the {reader} back end");
    }

    private static byte[][] CompressStream(byte[][] messages, ZstdBackend backend)
    {
        using var compressor = new ZstdStreamCompressor(StreamLevel, default, backend);
        var writer = new ArrayBufferWriter<byte>();
        var compressed = new byte[messages.Length][];
        for (int i = 0; i < messages.Length; i++)
        {
            writer.Clear();
            compressor.CompressMessage(messages[i], writer);
            compressed[i] = writer.WrittenSpan.ToArray();
        }
        return compressed;
    }

    private static void VerifyStream(byte[][] messages, byte[][] compressed, ZstdBackend reader)
    {
        using var decompressor = new ZstdStreamDecompressor(default, reader);
        var writer = new ArrayBufferWriter<byte>();
        for (int i = 0; i < messages.Length; i++)
        {
            writer.Clear();
            decompressor.DecompressMessage(compressed[i], writer, 1 << 20);
            if (!writer.WrittenSpan.SequenceEqual(messages[i]))
                throw new InvalidOperationException($"stream message {i} does not round-trip through the {reader} back end");
        }
    }

    /// <summary>Runs the pass until the JIT has had time to tier up its hot methods (ZstdSharp's are large).</summary>
    private static void WarmUp(Action pass, TimeSpan duration)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
            pass();
    }

    /// <summary>Repeats the pass for at least <paramref name="minSample"/>; MB/s of uncompressed bytes (10^6).</summary>
    private static double Sample(Action pass, long bytes, TimeSpan minSample)
    {
        var clock = Stopwatch.StartNew();
        long passes = 0;
        do
        {
            pass();
            passes++;
        }
        while (clock.Elapsed < minSample);
        return bytes * (double)passes / clock.Elapsed.TotalSeconds / 1e6;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Report(List<Operation> operations, string corpusLabel, int rounds, TimeSpan minSample, TimeSpan warmup, TimeSpan elapsed)
    {
        var md = new StringBuilder();
        md.AppendLine("# zstd back ends: native libzstd vs ZstdSharp.Port");
        md.AppendLine();
        md.AppendLine("Produced by `bench/run codec --backends` (`dotnet run -c Release --project bench/GeoRelay.Bench -- codec --backends`);");
        md.AppendLine($"every figure below comes from that one run, which took {elapsed.TotalSeconds:F0} s. Re-run it to refresh this file.");
        md.AppendLine();
        md.AppendLine("## Machine");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe())
            md.AppendLine(line);
        md.AppendLine($"- native: zstd {Zstd.UsableLibrary(ZstdBackend.Native).Version} (system `libzstd.so.1`)");
        md.AppendLine($"- managed: zstd {Zstd.UsableLibrary(ZstdBackend.Managed).Version} (ZstdSharp.Port {ZstdManaged.PortVersion})");
        md.AppendLine($"- this process's default: {Zstd.Description}");
        md.AppendLine("- a shared, noisy 2-core machine: absolute MB/s move by tens of percent between runs; the per-round ratio, from two");
        md.AppendLine("  samples taken back to back, moves less.");
        md.AppendLine();
        md.AppendLine("## Setup");
        md.AppendLine();
        md.AppendLine($"- Text: {corpusLabel}.");
        md.AppendLine("- One-shot inputs: the text's first 64 KiB, and the 1 MiB after that; levels 1 (GeoRelay's default) and 3 (zstd's).");
        md.AppendLine($"- Stream: the next {StreamMessages:N0} × {StreamMessageSize} bytes as {StreamMessages:N0} messages through one `ZstdStreamCompressor`");
        md.AppendLine($"  (level {StreamLevel}), each flushed, history carried across them, as a connection does; a pass resets the stream first.");
        md.AppendLine("- Both back ends run in one process through the same code (`Zstd.Compress/Decompress`, the stream classes), chosen per");
        md.AppendLine("  call. Decompression reads libzstd's frames/stream on both, so both decode the same bytes. Before timing, each back");
        md.AppendLine("  end's output was decoded by the other and compared.");
        md.AppendLine($"- Each operation was warmed up for {warmup.TotalSeconds:F1} s per back end (tiered JIT), then measured in {rounds} rounds; in a round each");
        md.AppendLine($"  operation runs on both back ends back to back, ≥ {minSample.TotalMilliseconds:F0} ms each, native first in odd rounds and managed");
        md.AppendLine("  first in even ones. MB/s = uncompressed bytes (in for compress, out for decompress) per second, 10^6 bytes.");
        md.AppendLine();

        md.AppendLine("## Summary (median of the rounds)");
        md.AppendLine();
        md.AppendLine("| operation | input | native MB/s | managed MB/s | managed / native | native µs/msg | managed µs/msg | compressed native / managed |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---|");
        foreach (var op in operations)
        {
            double native = Median(op.Runs.Select(r => r.MBps[ZstdBackend.Native]));
            double managed = Median(op.Runs.Select(r => r.MBps[ZstdBackend.Managed]));
            double ratio = Median(op.Runs.Select(r => r.MBps[ZstdBackend.Managed] / r.MBps[ZstdBackend.Native]));
            string perMessage(double mbps) => op.Messages > 1 ? $"{op.Bytes / op.Messages / mbps:F2}" : "—";
            string sizes = op.CompressedBytes.Count == 0
                ? "—"
                : $"{op.CompressedBytes[ZstdBackend.Native]:N0} / {op.CompressedBytes[ZstdBackend.Managed]:N0} B ({op.Bytes / (double)op.CompressedBytes[ZstdBackend.Native]:F2}:1 / {op.Bytes / (double)op.CompressedBytes[ZstdBackend.Managed]:F2}:1)";
            md.AppendLine($"| {op.Name} | {op.Input} | {native:N0} | {managed:N0} | {ratio:F2}x | {perMessage(native)} | {perMessage(managed)} | {sizes} |");
        }
        md.AppendLine();
        md.AppendLine("managed / native is the median of the per-round ratios. µs/msg only for the stream rows.");
        md.AppendLine();

        md.AppendLine("## Every run");
        md.AppendLine();
        md.Append("| operation | input |");
        for (int r = 1; r <= rounds; r++)
            md.Append($" round {r} ({(r % 2 == 1 ? "N first" : "M first")}): N / M MB/s |");
        md.AppendLine();
        md.Append("|---|---|");
        for (int r = 1; r <= rounds; r++)
            md.Append("---:|");
        md.AppendLine();
        foreach (var op in operations)
        {
            md.Append($"| {op.Name} | {op.Input} |");
            foreach (var run in op.Runs)
                md.Append($" {run.MBps[ZstdBackend.Native]:N0} / {run.MBps[ZstdBackend.Managed]:N0} ({run.MBps[ZstdBackend.Managed] / run.MBps[ZstdBackend.Native]:F2}x) |");
            md.AppendLine();
        }
        md.AppendLine();
        md.AppendLine("N = native libzstd, M = managed ZstdSharp.Port; in brackets M / N for that round.");
        return md.ToString();
    }
}
