using System.Buffers;
using System.Globalization;
using System.Text;
using GeoRelay.Bench.Harness;
using GeoRelay.Codec.Frames;
using MessagePack;

namespace GeoRelay.Bench.Codec;

/// <summary>
/// <c>bench codec --messagepack</c>: the data plane's hand-encoded frames against the same fields through MessagePack
/// (the library the control plane's metadata files and the SDK's typed payloads use), written and read back, in one
/// process, rounds alternating which side runs first. Frames switch only if MessagePack comes within 10%.
/// Writes <c>bench/results/codec-messagepack.md</c>.
/// </summary>
public static class MessagePackComparison
{
    private const int EntriesPerDeliver = 16;
    private const int KeyBytes = 16;
    private const int PayloadBytes = 256;
    private const int AcksPerPass = 1000;

    [MessagePackObject]
    public readonly record struct PackedAck([property: Key(0)] ulong Epoch, [property: Key(1)] ulong DurableIndex,
        [property: Key(2)] ulong LastIndex, [property: Key(3)] ulong DurableEpoch);

    [MessagePackObject]
    public readonly record struct PackedEntry([property: Key(0)] ulong Gap, [property: Key(1)] ulong Epoch,
        [property: Key(2)] long TimestampMicros, [property: Key(3)] ReadOnlyMemory<byte> Key, [property: Key(4)] ReadOnlyMemory<byte> Payload);

    [MessagePackObject]
    public sealed record PackedDeliver([property: Key(0)] ulong First, [property: Key(1)] ulong Count,
        [property: Key(2)] ulong Through, [property: Key(3)] PackedEntry[] Entries);

    private sealed record Case(string Name, long BytesPerPass, Action HandEncoded, Action MessagePack);

    public static Task<int> RunAsync(string[] args)
    {
        int rounds = 6;
        string output = Path.Combine(Paths.RepositoryRoot(), "bench", "results", "codec-messagepack.md");
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": output = Path.GetFullPath(args[++i]); break;
                default: Console.Error.WriteLine($"codec --messagepack: unknown option {args[i]} (--rounds N, --out FILE)"); return Task.FromResult(2);
            }
        }

        var cases = new[] { AckCase(), DeliverCase() };
        var md = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine("# Hand-encoded frames against MessagePack");
        md.AppendLine();
        md.AppendLine(inv, $"`bench/run codec --messagepack` — each pass writes the frame's fields into a pooled buffer and reads them back; MB/s counts the hand-encoded bytes for both sides, so the ratio is a ratio of speeds. {rounds} rounds, the side that runs first alternating; within a round the two sides' samples interleave (`Timing.Pair`).");
        md.AppendLine();
        foreach (var line in MachineInfo.Describe()) md.AppendLine(line);
        md.AppendLine();
        md.AppendLine("| case | round | first | hand-encoded MB/s | MessagePack MB/s | MessagePack / hand |");
        md.AppendLine("|---|---:|---|---:|---:|---:|");
        var summary = new List<string>();
        foreach (var c in cases)
        {
            var ratios = new List<double>();
            for (int round = 1; round <= rounds; round++)
            {
                bool handFirst = round % 2 == 1;
                ThroughputResult hand, packed;
                if (handFirst) (hand, packed) = Timing.Pair(c.HandEncoded, c.BytesPerPass, c.MessagePack, c.BytesPerPass);
                else (packed, hand) = Timing.Pair(c.MessagePack, c.BytesPerPass, c.HandEncoded, c.BytesPerPass);
                double ratio = handFirst ? 1 / Timing.PairedRatio(hand, packed) : Timing.PairedRatio(packed, hand);
                ratios.Add(ratio);
                string row = string.Create(inv, $"| {c.Name} | {round} | {(handFirst ? "hand" : "MessagePack")} | {hand.MedianMBps:0} | {packed.MedianMBps:0} | {ratio:0.00}x |");
                md.AppendLine(row);
                Console.WriteLine(row);
            }
            ratios.Sort();
            summary.Add(string.Create(inv, $"- {c.Name}: MessagePack runs at {ratios[0]:0.00}x–{ratios[^1]:0.00}x the hand-encoded speed (median {ratios[ratios.Count / 2]:0.00}x)."));
        }
        md.AppendLine();
        foreach (var line in summary) md.AppendLine(line);
        md.AppendLine("- Verdict: data-plane frames stay hand-encoded unless MessagePack comes within 10% (0.90x or better) in every round.");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllText(output, md.ToString());
        foreach (var line in summary) Console.WriteLine(line);
        Console.WriteLine($"wrote {output}");
        return Task.FromResult(0);
    }

    private static Case AckCase()
    {
        var buffer = new ArrayBufferWriter<byte>(64 * AcksPerPass);
        var acks = new Ack[AcksPerPass];
        var packedAcks = new PackedAck[AcksPerPass];
        for (int i = 0; i < AcksPerPass; i++)
        {
            ulong durable = 1_000_000UL + (ulong)i * 37;
            acks[i] = new Ack(7, durable, durable + 5, 7);
            packedAcks[i] = new PackedAck(7, durable, durable + 5, 7);
        }
        foreach (var ack in acks) ack.Write(buffer);
        long bytes = buffer.WrittenCount;
        ulong sink = 0;
        void Hand()
        {
            for (int i = 0; i < acks.Length; i++)
            {
                buffer.ResetWrittenCount();
                acks[i].Write(buffer);
                sink += Ack.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory)).DurableIndex;
            }
        }
        void Packed()
        {
            for (int i = 0; i < packedAcks.Length; i++)
            {
                buffer.ResetWrittenCount();
                MessagePackSerializer.Serialize(buffer, packedAcks[i]);
                sink += MessagePackSerializer.Deserialize<PackedAck>(buffer.WrittenMemory).DurableIndex;
            }
        }
        Hand();
        Packed();
        if (sink == 0) throw new InvalidOperationException("nothing was read back");
        return new Case($"Ack (4 varints), {AcksPerPass} per pass", bytes, Hand, Packed);
    }

    private static Case DeliverCase()
    {
        var random = new Random(42);
        var keys = new byte[EntriesPerDeliver][];
        var payloads = new byte[EntriesPerDeliver][];
        var entries = new PackedEntry[EntriesPerDeliver];
        for (int i = 0; i < EntriesPerDeliver; i++)
        {
            keys[i] = new byte[KeyBytes];
            payloads[i] = new byte[PayloadBytes];
            random.NextBytes(keys[i]);
            random.NextBytes(payloads[i]);
            entries[i] = new PackedEntry(0, 7, 1_700_000_000_000_000 + i, keys[i], payloads[i]);
        }
        var deliver = new PackedDeliver(1_000_000, EntriesPerDeliver, 1_000_000 + EntriesPerDeliver - 1, entries);
        var buffer = new ArrayBufferWriter<byte>(EntriesPerDeliver * (PayloadBytes + KeyBytes + 32));
        long sink = 0;
        void Hand()
        {
            buffer.ResetWrittenCount();
            DeliverFrame.WriteHeader(buffer, deliver.First, deliver.Count, deliver.Through);
            for (int i = 0; i < entries.Length; i++)
                EntryRecord.Write(buffer, 0, 7, entries[i].TimestampMicros, keys[i], payloads[i]);
            var reader = DeliverFrame.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), out _, out _, out _);
            while (reader.TryNext(out var entry)) sink += entry.Payload.Length;
        }
        void Packed()
        {
            buffer.ResetWrittenCount();
            MessagePackSerializer.Serialize(buffer, deliver);
            var read = MessagePackSerializer.Deserialize<PackedDeliver>(buffer.WrittenMemory);
            foreach (var entry in read.Entries) sink += entry.Payload.Length;
        }
        Hand();
        long bytes = buffer.WrittenCount;
        Packed();
        if (sink == 0) throw new InvalidOperationException("nothing was read back");
        return new Case($"Deliver frame, {EntriesPerDeliver} entries of {KeyBytes} B key + {PayloadBytes} B payload", bytes, Hand, Packed);
    }
}
