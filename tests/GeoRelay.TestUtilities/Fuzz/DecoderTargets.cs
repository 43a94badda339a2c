using System.Buffers;
using System.Text;
using GeoRelay.Codec;
using GeoRelay.Codec.Compression;
using GeoRelay.Codec.Frames;
using GeoRelay.Codec.Mux;
using GeoRelay.Transport.Security;

namespace GeoRelay.TestUtilities.Fuzzing;

/// <summary>One decoder under fuzz: takes untrusted bytes, may only throw <see cref="CodecException"/>.</summary>
public sealed record DecoderTarget(string Name, Action<byte[]> Decode, long AllocationAllowance = 256 << 10);

/// <summary>Every decoder that sees bytes from the network, and valid inputs for each (the seed corpus).</summary>
public static class DecoderTargets
{
    /// <summary>The key the handshake and token targets verify with (a fixed test key, not a secret).</summary>
    private static readonly byte[] TokenKey = Encoding.ASCII.GetBytes("fuzzing-key-fuzzing-key-fuzzing-key!");
    private static readonly TokenAuthority Tokens = new(TokenKey);
    private static readonly Hello Local = Hello.ForThisBuild("relay-1", NodeKind.Relay, 3, "fuzz", 42);

    public static IReadOnlyList<DecoderTarget> All { get; } =
    [
        new("frame", bytes =>
        {
            var buffer = new ReadOnlySequence<byte>(bytes);
            while (FrameReader.TryRead(ref buffer, 64 << 10, out var frame)) _ = frame.Payload.Length;
        }),
        new("hello", bytes => ProtocolVersion.Negotiate(Local, Hello.Read(Seq(bytes)))),
        new("handshake", bytes =>
        {
            // What a listener does with a Hello: decode, negotiate, verify the token it carries.
            var hello = Hello.Read(Seq(bytes));
            ProtocolVersion.Negotiate(Local, hello);
            Tokens.Verify(hello.Auth.Span, DateTimeOffset.UnixEpoch, out _);
        }),
        new("token", bytes => Tokens.Verify(bytes, DateTimeOffset.UnixEpoch, out _)), // must not even throw CodecException
        // The claims decoder, reached in Verify only behind a valid mac: fuzzed directly.
        new("token-body", bytes => TokenClaims.Read(Seq(bytes))),
        new("welcome", bytes => Welcome.Read(Seq(bytes))),
        new("error", bytes => ErrorFrame.Read(Seq(bytes))),
        new("heartbeat", bytes =>
        {
            var fresh = new DeltaState();
            Heartbeat.Read(Seq(bytes), ref fresh);
        }),
        new("append", bytes =>
        {
            var delta = new DeltaState();
            var reader = AppendFrame.Read(Seq(bytes), ref delta, out _, out _, out _, out _);
            while (reader.TryNext(out var e)) _ = e.Payload.Length;
        }),
        new("batch", bytes =>
        {
            // As a relay reads it: header, mux with one packet per named member plus retention, each packet's records.
            var delta = new DeltaState();
            var slots = new List<int>();
            var skips = new List<ulong>();
            var mux = BatchFrame.Read(Seq(bytes), ref delta, slots, skips, out _, out _, out _, out var first, out var count, new List<ulong>());
            var batch = MuxBatch.Parse(mux.AsContiguous(), slots.Count + 1);
            for (int p = 0; p < batch.PacketCount; p++)
            {
                var (from, n) = BatchFrame.Range(first, count, skips[Math.Min(p, skips.Count - 1)]);
                var reader = BatchFrame.ReadPacket(batch.GetPacket(p), from, n);
                while (reader.TryNext(out var e)) _ = e.Key.Length;
            }
        }),
        new("mux", bytes =>
        {
            var batch = MuxBatch.Parse(bytes, 64);
            var slices = new List<ReadOnlyMemory<byte>>();
            for (int p = 0; p < batch.PacketCount; p++)
            {
                slices.Clear();
                batch.GetPacketSlices(p, slices);
                var copy = new byte[batch.GetPacketLength(p)];
                batch.CopyPacketTo(p, copy);
            }
        }),
        new("ack", bytes => Ack.Read(Seq(bytes))),
        new("dcack", bytes => DcAck.Read(Seq(bytes))),
        new("subscribe", bytes => Subscribe.Read(Seq(bytes))),
        new("deliver", bytes =>
        {
            var reader = DeliverFrame.Read(Seq(bytes), out _, out _, out _);
            while (reader.TryNext(out var e)) _ = e.Payload.Length;
        }),
        new("snapshot-required", bytes => SnapshotRequired.Read(Seq(bytes))),
        new("confirm", bytes => Confirm.Read(Seq(bytes))),
        new("publish", bytes =>
        {
            var reader = PublishFrame.Read(Seq(bytes), out _, out _, out _);
            while (reader.TryNext(out var key, out var payload)) _ = key.Length + payload.Length;
        }),
        new("publish-ack", bytes => PublishAck.Read(Seq(bytes))),
        new("vote-request", bytes => VoteRequest.Read(Seq(bytes))),
        new("vote-response", bytes => VoteResponse.Read(Seq(bytes))),
        new("timeout-now", bytes => TimeoutNow.Read(Seq(bytes))),
        new("voter-beat", bytes => VoterBeat.Read(Seq(bytes))),
        new("truncated", bytes => Truncated.Read(Seq(bytes))),
        new("snapshot-chunk", bytes =>
        {
            var reader = SnapshotChunkFrame.Read(Seq(bytes), out _, out _, out _, out _, out _);
            while (reader.TryNext(out var e)) _ = e.Payload.Length + (e.IsTombstone ? 1 : 0);
        }),
        new("configuration", bytes => ConfigurationFrame.Read(Seq(bytes))),
        new("zstd-stream", bytes =>
        {
            using var decompressor = new ZstdStreamDecompressor();
            decompressor.DecompressMessage(bytes, new ArrayBufferWriter<byte>(), 256 << 10);
        }, AllocationAllowance: 2 << 20),
    ];

    /// <summary>Valid inputs per target, built from the encoders: the corpus kept under tests/…/Fuzz/corpus.</summary>
    public static IEnumerable<(string Target, string Name, byte[] Bytes)> Seeds()
    {
        var hello = Hello.ForThisBuild("eu-p1", NodeKind.Leader, 7, "fuzz", 42,
            auth: Encoding.UTF8.GetBytes(Tokens.Mint(new TokenClaims("learner-1", DateTimeOffset.UnixEpoch.AddYears(100), TokenScopes.Learn, [Encoding.UTF8.GetBytes("orders/")]) { Id = "00000000000000a1" })));
        yield return ("hello", "leader", Write(hello.Write));
        yield return ("handshake", "with-token", Write(hello.Write));
        var claims = new TokenClaims("t", DateTimeOffset.UnixEpoch.AddYears(60), TokenScopes.Learn | TokenScopes.Publish, [[], "a/"u8.ToArray()]) { Id = "0123456789abcdef" };
        yield return ("token", "learner", Encoding.UTF8.GetBytes(Tokens.Mint(claims)));
        yield return ("token", "first-format", Encoding.UTF8.GetBytes(LegacyTokens.Mint(TokenKey, claims)));
        yield return ("token-body", "two-prefixes", Write(claims.Write));
        yield return ("token-body", "first-format", Write((claims with { Id = null }).Write));
        yield return ("welcome", "relay", Write(new Welcome(1, "eu-p1", NodeKind.Relay, 7, Capabilities.Zstd).Write));
        yield return ("error", "stale", Write(new ErrorFrame(CodecError.StaleEpoch, "epoch 3 is below 7").Write));
        yield return ("heartbeat", "full", Write(w => { var d = new DeltaState(); new Heartbeat(7, 100, 123456).Write(w, ref d); }));
        var entries = Entries(0, 5);
        yield return ("append", "five", Write(w => { var d = new DeltaState(); AppendFrame.WriteHeader(w, ref d, 7, 3, 10, 5); w.Write(entries); }));
        yield return ("deliver", "five", Write(w => { DeliverFrame.WriteHeader(w, 10, 5, 14); w.Write(entries); }));
        yield return ("batch", "two-members", Batch(entries));
        yield return ("batch", "voter-progress", Batch(entries, [14, 14, 12, 9]));
        yield return ("mux", "generic", Write(w => GenericMuxEncoder.Encode(w, [entries, entries.AsMemory(3), Encoding.UTF8.GetBytes("other packet")])));
        yield return ("ack", "durable", Write(new Ack(7, 9, 12).Write));
        yield return ("dcack", "three", Write(new DcAck(7, 12, [new(0, 9, MemberLinkState.Up), new(1, 3, MemberLinkState.Resync), new(2, 0, MemberLinkState.Down)], 6, 10).Write));
        yield return ("subscribe", "prefix", Write(new Subscribe(5, "orders/"u8.ToArray(), SubscribeFlags.Confirms, 4, 2).Write));
        yield return ("snapshot-required", "oldest", Write(new SnapshotRequired(1000).Write));
        yield return ("confirm", "index", Write(new Confirm(77).Write));
        yield return ("publish", "three", Write(w =>
        {
            PublishFrame.WriteHeader(w, 9, WaitLevel.Committed, 3);
            for (int i = 0; i < 3; i++) PublishFrame.WriteEntry(w, Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"payload {i}"));
        }));
        yield return ("publish-ack", "committed", Write(new PublishAck(9, 100, 3, WaitLevel.Committed).Write));
        yield return ("vote-request", "pre-vote", Write(new VoteRequest(8, 7, 120, VoteRequestFlags.PreVote, "eu-m1").Write));
        yield return ("vote-response", "refused", Write(new VoteResponse(8, VoteResponseFlags.None, "already voted for us-m2 in term 8").Write));
        yield return ("timeout-now", "term", Write(new TimeoutNow(8).Write));
        yield return ("voter-beat", "from-leader", Write(new VoterBeat(8, FromLeader: true).Write));
        yield return ("truncated", "after", Write(new Truncated(41).Write));
        yield return ("snapshot-chunk", "begin", Write(w =>
        {
            SnapshotChunkFrame.WriteHeader(w, 40, SnapshotChunkFlags.Begin, 3, 10, 3);
            var records = new ArrayBufferWriter<byte>();
            EntryRecord.Write(records, 0, 7, 1000, "k1"u8, "v1"u8);
            EntryRecord.Write(records, 5, 7, 1001, "k2"u8, "v2"u8, tombstone: true);
            EntryRecord.Write(records, 20, 8, 1002, "k3"u8, "v3"u8);
            w.Write(records.WrittenSpan);
            SnapshotChunkFrame.WriteCrc(w, records.WrittenSpan);
        }));
        yield return ("configuration", "membership", Write(new ConfigurationFrame(120, 7, 0x1234_5678_9abc_def0,
            Encoding.UTF8.GetBytes("eu:relay-eu,eu-m1,eu-m2;us:relay-us,us-m1,us-m2")).Write));
        yield return ("configuration", "bootstrap", Write(new ConfigurationFrame(0, 0, 42, Encoding.UTF8.GetBytes("eu:relay-eu,eu-m1")).Write));
        yield return ("subscribe", "snapshot-resume", Write(new Subscribe(12, default, SubscribeFlags.Snapshot, 0, 0, 40).Write));
        using var compressor = new ZstdStreamCompressor(3);
        yield return ("zstd-stream", "entries", Write(w => compressor.CompressMessage(entries, w)));
        var frame = new ArrayBufferWriter<byte>();
        FrameWriter.Write(frame, FrameType.Hello, FrameFlags.None, Write(hello.Write));
        FrameWriter.Write(frame, FrameType.Subscribe, FrameFlags.None, Write(new Subscribe(1, default, SubscribeFlags.None).Write));
        yield return ("frame", "hello-subscribe", frame.WrittenSpan.ToArray());
    }

    /// <param name="progress">The voters' progress the batch carries; none when empty.</param>
    private static byte[] Batch(byte[] entries, ulong[]? progress = null)
    {
        // Records of 10..14: retention and member 0 take all of them, member 1 from 12 on.
        return Write(w =>
        {
            var d = new DeltaState();
            BatchFrame.WriteHeader(w, ref d, 7, 3, 1, [0, 1], 10, 5, [0, 0, 2], progress);
            GenericMuxEncoder.Encode(w, [entries, entries, Entries(2, 3)]);
        });
    }

    /// <summary>Records for entries from..from+count-1; records are self-contained, so a range is a byte slice.</summary>
    private static byte[] Entries(int from, int count) => Write(w =>
    {
        for (int i = from; i < from + count; i++)
            EntryRecord.Write(w, 0, 7, 1_700_000_000_000_000 + i, Encoding.UTF8.GetBytes($"orders/{i}"), Encoding.UTF8.GetBytes($"{{\"qty\":{i}}}"));
    });

    private static byte[] Write(Action<IBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>();
        write(w);
        return w.WrittenSpan.ToArray();
    }

    private static ReadOnlySequence<byte> Seq(byte[] bytes) => new(bytes);
}
