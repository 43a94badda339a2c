using System.Buffers;
using GeoRelay.Codec;
using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace GeoRelay.Engines;

/// <summary>Writes <see cref="FrameType.SnapshotChunk"/> payloads: for learners (live keys) and for nodes installing a state (tombstones too).</summary>
public static class SnapshotChunks
{
    /// <summary>
    /// Writes one chunk's payload of <paramref name="entries"/> from <paramref name="position"/>: as many entries with
    /// the key prefix as fit in <paramref name="maxBytes"/> and <paramref name="maxEntries"/> (one at least). Returns the
    /// position after the chunk; the chunk is the last when that is <c>entries.Count</c>.
    /// </summary>
    public static int Write(PooledBufferWriter w, ulong through, IReadOnlyList<LogEntry> entries, int position, bool begins,
        ReadOnlySpan<byte> prefix, long maxBytes, int maxEntries, out long bytes)
    {
        int end = position, count = 0;
        bytes = 0;
        ulong first = 0;
        for (; end < entries.Count; end++)
        {
            var e = entries[end];
            if (!e.Key.Span.StartsWith(prefix)) continue;
            int size = e.EncodedSize;
            if (count > 0 && (bytes + size > maxBytes || count >= maxEntries)) break;
            if (count == 0) first = e.Index;
            bytes += size;
            count++;
        }
        bool last = end >= entries.Count;
        var flags = (begins ? SnapshotChunkFlags.Begin : SnapshotChunkFlags.None) | (last ? SnapshotChunkFlags.End : SnapshotChunkFlags.None);
        SnapshotChunkFrame.WriteHeader(w, through, flags, (ulong)entries.Count, first, (ulong)count);
        int recordsAt = w.WrittenCount;
        ulong expected = first;
        for (int i = position; i < end; i++)
        {
            var e = entries[i];
            if (!e.Key.Span.StartsWith(prefix)) continue;
            EntryRecord.Write(w, e.Index - expected, e.Epoch, e.TimestampMicros, e.Key.Span, e.Payload.Span, e.IsTombstone);
            expected = e.Index + 1;
        }
        SnapshotChunkFrame.WriteCrc(w, w.WrittenSpan[recordsAt..]);
        return end;
    }
}

/// <summary>
/// Serves this node's keyed state (<see cref="KeyedLog.StateImage"/>) to a node whose log was installed past its own
/// state: a <see cref="Subscribe"/> with <see cref="SubscribeFlags.Snapshot"/> on a peer link is answered with one
/// chunk, so the asking node paces the transfer and the state crosses a region boundary once per node that asks.
/// </summary>
public sealed class KeyedStateServer
{
    /// <summary>The chunk size: a cross-region transfer moves one chunk per round trip.</summary>
    public const int ChunkBytes = 1 << 20;
    private const int ChunkEntries = 64 * 1024;
    private const int ImagesKept = 2;

    private readonly KeyedLog _log;
    // The images transfers began from lately, so a node that asks again mid-transfer resumes the one it has.
    private readonly List<KeyedSnapshot> _served = new();

    private KeyedStateServer(KeyedLog log) => _log = log;

    /// <summary>A server for <paramref name="log"/>, or null when it keeps no keyed state.</summary>
    public static KeyedStateServer? For(IEntryLog log) => log is KeyedLog keyed ? new KeyedStateServer(keyed) : null;

    /// <summary>
    /// Answers <paramref name="request"/> on <paramref name="channel"/>: the next chunk of the image it resumes, or the
    /// first of the newest image, or <see cref="FrameType.SnapshotRequired"/> while this node's own state is incomplete.
    /// </summary>
    /// <param name="refuse">Whether to say SnapshotRequired when there is nothing to send; false stays silent (on a relay feed, where that frame means the feed fell behind).</param>
    /// <param name="compress">Whether the chunk may go through the channel's zstd stream (not where another writer shares the connection).</param>
    public void Serve(PeerChannel channel, in Subscribe request, List<EngineCommand> outbox, PooledBufferWriter scratch, bool refuse = true, bool compress = true)
    {
        scratch.Clear();
        KeyedSnapshot? image = null;
        int position = 0;
        if (request.SnapshotThrough != 0)
        {
            ulong resumed = request.SnapshotThrough;
            image = _served.Find(i => i.Through == resumed);
            if (image is not null) position = image.StartAfter(request.FromIndex - 1);
        }
        bool begins = image is null;
        if (image is null && _log.StateImage() is { } newest)
        {
            image = newest;
            if (!_served.Contains(image))
            {
                _served.Add(image);
                if (_served.Count > ImagesKept) _served.RemoveAt(0);
            }
        }
        if (image is null)
        {
            if (!refuse) return;
            new SnapshotRequired(Math.Max(1, _log.FirstIndex)).Write(scratch);
            outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.SnapshotRequired, scratch.WrittenSpan, compress: false)));
            return;
        }
        SnapshotChunks.Write(scratch, image.Through, image.Entries, position, begins, default, ChunkBytes, ChunkEntries, out _);
        outbox.Add(EngineCommand.Send(channel.Connection, channel.Frame(FrameType.SnapshotChunk, scratch.WrittenSpan, compress)));
    }
}

/// <summary>
/// Fetches the keyed state from upstream when this node's log was installed or reset past its own state: asks for one
/// chunk at a time on the feeding peer link, resumes after a reconnect, and offers the whole image to the
/// <see cref="KeyedLog"/>, which merges it once it has folded that far.
/// </summary>
public sealed class KeyedStateFetch
{
    private const long RetryMicros = 250_000;
    /// <summary>A request unanswered this long passes the turn on: a feed parent or a member with no whole state stays silent (see <see cref="KeyedStateServer.Serve"/>).</summary>
    private const long AnswerTimeoutMicros = 3_000_000;

    private readonly KeyedLog _log;
    private readonly ILogger _logger;
    private readonly List<LogEntry> _entries = new();
    private ulong _through;
    private ulong _next = 1;
    private bool _receiving;
    private int _askedOn = -1;
    private long _askedAtMicros;
    private long _retryAtMicros;
    /// <summary>Whose turn it is among the candidates; moves on at each refusal or silence.</summary>
    private ulong _turn;
    private int _loggedAsking = -1;

    private KeyedStateFetch(KeyedLog log, ILogger logger)
    {
        _log = log;
        _logger = logger;
    }

    /// <summary>A fetcher for <paramref name="log"/>, or null when it keeps no keyed state.</summary>
    public static KeyedStateFetch? For(IEntryLog log, ILogger? logger = null) =>
        log is KeyedLog keyed ? new KeyedStateFetch(keyed, logger ?? NullLogger.Instance) : null;

    /// <summary>
    /// Whether the state is incomplete and nothing is offered yet: the engine then lists whom to ask (<see cref="OnTick"/>).
    /// Otherwise drops what a transfer left.
    /// </summary>
    public bool NeedsAsking()
    {
        if (_log.NeedsImage) return true;
        Forget();
        return false;
    }

    /// <summary>
    /// Called while <see cref="NeedsAsking"/>: asks for the next chunk unless a request is out: the peer asked last
    /// while it answers, else the next of <paramref name="candidates"/> in turn (the one feeding this node first). A peer
    /// that refuses, or stays silent past the answer timeout, passes the turn on; peers without
    /// <see cref="Capabilities.KeyedState"/> are skipped.
    /// </summary>
    public void OnTick(IReadOnlyList<PeerChannel> candidates, long now, List<EngineCommand> outbox, PooledBufferWriter scratch)
    {
        if (now < _retryAtMicros) return;
        PeerChannel? asked = null;
        foreach (var c in candidates)
            if (c.Connection == _askedOn) asked = c;
        if (asked is not null && now - _askedAtMicros < AnswerTimeoutMicros) return;
        if (asked is not null) _turn++; // silent: the next one
        var able = candidates.Where(c => (c.Peer.Capabilities & Capabilities.KeyedState) != 0).ToList();
        _askedOn = -1;
        if (able.Count == 0) return;
        Ask(able[(int)(_turn % (ulong)able.Count)], now, outbox, scratch);
    }

    /// <summary>A chunk arrived on <paramref name="channel"/>: kept, then the next is asked for, or the whole image is offered to the log.</summary>
    /// <exception cref="CodecException">The chunk is corrupt or does not continue the transfer.</exception>
    public void OnChunk(PeerChannel channel, ReadOnlySequence<byte> payload, long now, List<EngineCommand> outbox, PooledBufferWriter scratch)
    {
        var records = SnapshotChunkFrame.Read(payload, out ulong through, out var flags, out _, out ulong first, out ulong count);
        if (channel.Connection != _askedOn) return; // an answer to a request given up on
        // A request asked again after a slow answer is answered twice: the second copy is dropped.
        if ((flags & SnapshotChunkFlags.Begin) == 0 && _receiving && through == _through && count > 0 && first < _next) return;
        _askedOn = -1;
        if ((flags & SnapshotChunkFlags.Begin) != 0)
        {
            _entries.Clear();
            _through = through;
            _next = 1;
            _receiving = true;
        }
        else if (!_receiving || through != _through || (count > 0 && first < _next))
        {
            throw new CodecException(CodecError.Protocol,
                $"SnapshotChunk of the state at {through} from {first} does not continue the transfer here (state at {_through}, next entry {_next})");
        }
        while (records.TryNext(out var e))
        {
            _entries.Add(e.ToOwnedLogEntry());
            _next = e.Index + 1;
        }
        if ((flags & SnapshotChunkFlags.End) == 0)
        {
            Ask(channel, now, outbox, scratch);
            return;
        }
        bool taken = _log.OfferImage(_through, _entries.ToArray());
        KeyedStateLog.ImageReceived(_logger, _through, _entries.Count, channel.Peer.NodeId, taken ? "merging it once folded that far" : "too old for the writes missing here; asking again");
        // Too old to fill the gap here (the upstream's fold is behind ours): ask again later.
        if (!taken) _retryAtMicros = now + RetryMicros;
        Forget();
    }

    /// <summary>The upstream has no whole state to send (its own was installed past it): ask again later.</summary>
    public void OnRefused(PeerChannel channel, long now)
    {
        if (channel.Connection != _askedOn) return;
        KeyedStateLog.ImageRefused(_logger, channel.Peer.NodeId);
        _askedOn = -1;
        _turn++;
        _retryAtMicros = now + RetryMicros;
    }

    /// <summary>A connection closed: a request on it is given up (what was received stays, to resume).</summary>
    public void OnDisconnected(int connection)
    {
        if (_askedOn == connection) _askedOn = -1;
    }

    private void Ask(PeerChannel upstream, long now, List<EngineCommand> outbox, PooledBufferWriter scratch)
    {
        if (!_receiving && upstream.Connection != _loggedAsking)
        {
            KeyedStateLog.Asking(_logger, upstream.Peer.NodeId, _log.MissingThrough);
            _loggedAsking = upstream.Connection;
        }
        scratch.Clear();
        // Resuming names the image and the next entry wanted; a fresh start asks for the newest.
        var request = _receiving
            ? new Subscribe(Math.Max(1, Math.Min(_next, _through)), default, SubscribeFlags.Snapshot, SnapshotThrough: _through)
            : new Subscribe(1, default, SubscribeFlags.Snapshot);
        request.Write(scratch);
        outbox.Add(EngineCommand.Send(upstream.Connection, upstream.Frame(FrameType.Subscribe, scratch.WrittenSpan, compress: false)));
        _askedOn = upstream.Connection;
        _askedAtMicros = now;
    }

    private void Forget()
    {
        _entries.Clear();
        _receiving = false;
        _through = 0;
        _next = 1;
        _askedOn = -1;
    }
}

internal static partial class KeyedStateLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Keyed state incomplete (the writes through {Missing} are missing here): asking {Peer} for its state")]
    public static partial void Asking(ILogger logger, string peer, ulong missing);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Keyed state at {Through} ({Entries} entries) received from {Peer}: {Outcome}")]
    public static partial void ImageReceived(ILogger logger, ulong through, int entries, string peer, string outcome);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "{Peer} has no whole keyed state to send yet; asking the next peer")]
    public static partial void ImageRefused(ILogger logger, string peer);
}
