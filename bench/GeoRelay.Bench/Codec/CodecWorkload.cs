using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;

namespace GeoRelay.Bench.Codec;

/// <summary>Entry payloads to replicate: keys and payloads, in log order.</summary>
internal sealed record Corpus(string Name, string Description, byte[][] Keys, byte[][] Payloads, int BatchSize, int[] VariedLags)
{
    public const int Seed = 20240601;

    /// <summary>Key-value JSON events of ~200 B with realistic fields, from a seeded Random.</summary>
    public static Corpus SyntheticJson(int batches, int batchSize, int[] variedLags)
    {
        int count = variedLags.Max() + batches * batchSize;
        var random = new Random(Seed);
        string[] types = ["order.created", "order.updated", "order.filled", "order.cancelled", "payment.settled", "position.updated"];
        string[] statuses = ["new", "partial", "filled", "cancelled", "settled"];
        string[] currencies = ["EUR", "USD", "GBP", "CHF", "JPY"];
        string[] regions = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"];
        var keys = new byte[count][];
        var payloads = new byte[count][];
        var start = new DateTime(2025, 6, 1, 12, 0, 0, DateTimeKind.Utc);
        var json = new StringBuilder(256);
        for (int i = 0; i < count; i++)
        {
            int account = random.Next(10_000, 99_999);
            var at = start.AddTicks(i * 370L + random.Next(0, 200));
            json.Clear()
                .Append("{\"id\":\"evt-").Append((1_000_000 + i).ToString("D8")).Append('"')
                .Append(",\"ts\":\"").Append(at.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ")).Append('"')
                .Append(",\"type\":\"").Append(types[random.Next(types.Length)]).Append('"')
                .Append(",\"account\":\"acct-").Append(account).Append('"')
                .Append(",\"region\":\"").Append(regions[random.Next(regions.Length)]).Append('"')
                .Append(",\"amount\":").Append(random.Next(1, 500_000) / 100.0)
                .Append(",\"currency\":\"").Append(currencies[random.Next(currencies.Length)]).Append('"')
                .Append(",\"status\":\"").Append(statuses[random.Next(statuses.Length)]).Append('"')
                .Append(",\"qty\":").Append(random.Next(1, 1000))
                .Append(",\"sku\":\"SKU-").Append(random.Next(1000, 9999)).Append('-').Append("SMLX"[random.Next(4)]).Append('"')
                .Append(",\"session\":\"").Append(random.NextInt64().ToString("x16")).Append('"')
                .Append(",\"v\":").Append(random.Next(1, 9))
                .Append('}');
            keys[i] = Encoding.UTF8.GetBytes($"acct-{account}");
            payloads[i] = Encoding.UTF8.GetBytes(json.ToString());
        }
        return new Corpus("synthetic JSON", "key-value JSON events (~230 B payload + ~10 B key), seeded Random", keys, payloads, batchSize, variedLags);
    }

    /// <summary>The stanzas of a dpkg status file as entries (key = package name); each stanza used once.</summary>
    public static Corpus? DpkgStatus(string path, int batchSize, int[] variedLags)
    {
        if (!File.Exists(path))
            return null;
        var text = File.ReadAllText(path).Replace("\r\n", "\n");
        var keys = new List<byte[]>();
        var payloads = new List<byte[]>();
        foreach (var stanza in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string key = "?";
            foreach (var line in stanza.Split('\n'))
            {
                if (line.StartsWith("Package:", StringComparison.Ordinal))
                {
                    key = line["Package:".Length..].Trim();
                    break;
                }
            }
            keys.Add(Encoding.UTF8.GetBytes(key));
            payloads.Add(Encoding.UTF8.GetBytes(stanza + "\n"));
        }
        double mean = payloads.Average(p => p.Length);
        return new Corpus("dpkg status", $"the {payloads.Count} stanzas of {path} (mean {mean:F0} B), each used once", [.. keys], [.. payloads], batchSize, variedLags);
    }

    public int Batches => (Payloads.Length - VariedLags.Max()) / BatchSize;
}

/// <summary>The whole run's entries encoded back to back, as the leader's entry table holds them.</summary>
internal sealed class EntryLog
{
    public const ulong Epoch = 7;

    public EntryLog(Corpus corpus)
    {
        using var writer = new PooledBufferWriter(1 << 20);
        Offsets = new int[corpus.Payloads.Length + 1];
        long time = 1_748_779_200_000_000; // 2025-06-01 12:00 UTC in microseconds
        var random = new Random(Corpus.Seed + 1);
        for (int e = 0; e < corpus.Payloads.Length; e++)
        {
            time += 20 + random.Next(40);
            EntryRecord.Write(writer, 0, Epoch, time, corpus.Keys[e], corpus.Payloads[e]);
            Offsets[e + 1] = writer.WrittenCount;
        }
        Bytes = writer.WrittenSpan.ToArray();
    }

    public byte[] Bytes { get; }

    /// <summary>Entry e (index e + 1) is <c>Bytes[Offsets[e] .. Offsets[e + 1])</c>.</summary>
    public int[] Offsets { get; }

    public ReadOnlySpan<byte> Range(int from, int to) => Bytes.AsSpan(Offsets[from], Offsets[to] - Offsets[from]);
}

/// <summary>
/// One tick's batch for one datacenter, as the leader builds it: packet 0 is the Deliver (relay retention,
/// learners) with the new entries; packet 1 + i is member i's Append with its range, which starts
/// <c>lag_i</c> entries before the new ones.
/// </summary>
internal sealed class TickBatch
{
    public required StructuredPacket[] Packets { get; init; }

    /// <summary>Each packet materialized: header + its entries (what a separate send carries).</summary>
    public required byte[][] PacketBytes { get; init; }

    /// <summary>The Batch frame's own header (delta epoch/commit, seq, slots), before the mux bytes.</summary>
    public required byte[] BatchHeader { get; init; }

    /// <summary>BatchHeader + the structured mux encoding: the payload of the Batch frame.</summary>
    public required byte[] BatchPayload { get; init; }

    public required int MuxLength { get; init; }

    /// <summary>Every packet's header, then one copy of the entries any packet carries: the target's reference.</summary>
    public required byte[] SharedOnce { get; init; }

    /// <summary>Member packets with headers that differ (commit told varies by member), for the generic encoder.</summary>
    public required ReadOnlyMemory<byte>[] GenericInput { get; init; }

    public int UnionFrom { get; init; }
    public int To { get; init; }

    public ReadOnlyMemory<byte> Mux => BatchPayload.AsMemory(BatchHeader.Length);

    public static TickBatch[] BuildAll(Corpus corpus, EntryLog log, int[] lags)
    {
        var batches = new TickBatch[corpus.Batches];
        var delta = new DeltaState();
        var slots = Enumerable.Range(0, lags.Length).ToArray();
        int firstNew = corpus.VariedLags.Max();
        for (int b = 0; b < batches.Length; b++)
        {
            int from = firstNew + b * corpus.BatchSize, to = from + corpus.BatchSize;
            batches[b] = Build(log, lags, from, to, (ulong)(b + 1), ref delta, slots);
        }
        return batches;
    }

    private static TickBatch Build(EntryLog log, int[] lags, int newFrom, int to, ulong seq, ref DeltaState delta, int[] slots)
    {
        int k = lags.Length + 1;
        ulong commit = (ulong)newFrom; // everything before this tick is committed
        var headers = new byte[k][];
        var froms = new int[k];
        var w = new ArrayBufferWriter<byte>(64);
        DeliverFrame.WriteHeader(w, (ulong)newFrom + 1, (ulong)(to - newFrom), (ulong)to);
        headers[0] = w.WrittenSpan.ToArray();
        froms[0] = newFrom;
        for (int i = 0; i < lags.Length; i++)
        {
            froms[i + 1] = Math.Max(0, newFrom - lags[i]);
            w.Clear();
            AppendFrame.WriteFullHeader(w, EntryLog.Epoch, commit, (ulong)froms[i + 1] + 1, (ulong)(to - froms[i + 1]));
            headers[i + 1] = w.WrittenSpan.ToArray();
        }

        var packets = new StructuredPacket[k];
        var packetBytes = new byte[k][];
        for (int p = 0; p < k; p++)
        {
            packets[p] = new StructuredPacket(headers[p], froms[p], to);
            packetBytes[p] = [.. headers[p], .. log.Range(froms[p], to)];
        }

        var generic = new ReadOnlyMemory<byte>[lags.Length];
        for (int i = 0; i < lags.Length; i++)
        {
            w.Clear();
            AppendFrame.WriteFullHeader(w, EntryLog.Epoch, commit - (ulong)i, (ulong)froms[i + 1] + 1, (ulong)(to - froms[i + 1]));
            generic[i] = (byte[])[.. w.WrittenSpan, .. log.Range(froms[i + 1], to)];
        }

        var payload = new ArrayBufferWriter<byte>(64 * 1024);
        int unionFrom = froms.Min();
        var skips = froms.Select(f => (ulong)(f - unionFrom)).ToArray();
        BatchFrame.WriteHeader(payload, ref delta, EntryLog.Epoch, commit, seq, slots, (ulong)unionFrom + 1, (ulong)(to - unionFrom), skips);
        int batchHeaderLength = payload.WrittenCount;
        StructuredMuxEncoder.Encode(payload, packets, log.Bytes, log.Offsets);

        var shared = new ArrayBufferWriter<byte>(64 * 1024);
        foreach (var header in headers)
            shared.Write(header);
        shared.Write(log.Range(unionFrom, to));

        return new TickBatch
        {
            Packets = packets,
            PacketBytes = packetBytes,
            BatchHeader = payload.WrittenSpan[..batchHeaderLength].ToArray(),
            BatchPayload = payload.WrittenSpan.ToArray(),
            MuxLength = payload.WrittenCount - batchHeaderLength,
            SharedOnce = shared.WrittenSpan.ToArray(),
            GenericInput = generic,
            UnionFrom = unionFrom,
            To = to,
        };
    }
}
