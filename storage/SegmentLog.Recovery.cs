using System.Buffers;
using System.Diagnostics;
using GeoRelay.Storage.Internal;

namespace GeoRelay.Storage;

public sealed partial class SegmentLog
{
    private const long ProgressIntervalBytes = 64L * 1024 * 1024;
    private const int ScanBlockBytes = 1024 * 1024;

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>, scanning every segment: a torn or corrupt
    /// tail of the last segment is cut off; damage in any older segment throws.
    /// </summary>
    /// <param name="progress">Told about long recoveries (every 64 MiB scanned) and about any tail cut off.</param>
    /// <exception cref="InvalidDataException">An older segment is corrupt, or segments do not follow one another; the message names the file and offset.</exception>
    /// <exception cref="DiskFailedException">A segment or the directory could not be listed, read, truncated or synced; names the file.</exception>
    public static SegmentLog Open(string directory, SegmentLogOptions options, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        System.IO.Directory.CreateDirectory(directory);
        var log = new SegmentLog(Path.GetFullPath(directory), options);
        try
        {
            log.Recover(progress);
            return log;
        }
        catch
        {
            log.CloseAll();
            throw;
        }
    }

    private void Recover(Action<string>? progress)
    {
        var clock = Stopwatch.StartNew();
        var found = new List<(ulong BaseIndex, string Path)>();
        long totalBytes = 0;
        // A log that cannot be read back is a failed disk, as one that cannot be written: the node stops (exit 74).
        try
        {
            foreach (string path in System.IO.Directory.EnumerateFiles(_directory, "*" + Segment.Extension))
            {
                if (Segment.TryParseFileName(Path.GetFileName(path), out ulong baseIndex)) found.Add((baseIndex, path));
            }
            foreach (var (_, path) in found) totalBytes += new FileInfo(path).Length;
        }
        catch (Exception e) when (IsDiskError(e))
        {
            throw Failed("list", _directory, e);
        }
        found.Sort((a, b) => a.BaseIndex.CompareTo(b.BaseIndex));

        var state = new ScanState(progress, totalBytes);
        var report = new RecoveryReport();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ScanBlockBytes);
        try
        {
            for (int i = 0; i < found.Count; i++)
            {
                bool isLast = i == found.Count - 1;
                var segment = new Segment(found[i].Path, found[i].BaseIndex, 0); // ScanSegment reads where records start
                if (_segments.Count > 0)
                {
                    Segment previous = _segments[^1];
                    if (previous.IsEmpty)
                        throw new InvalidDataException($"Segment '{previous.Path}' is empty but is not the last segment.");
                    if (segment.BaseIndex != previous.NextIndex)
                        throw new InvalidDataException($"Segment '{segment.Path}' starts at index {segment.BaseIndex} but the segment before it ends at {previous.LastIndex}.");
                }
                _segments.Add(segment);
                long badOffset;
                string? reason;
                try
                {
                    (badOffset, reason) = ScanSegment(segment, ref buffer, ref state);
                }
                catch (Exception e) when (IsDiskError(e))
                {
                    throw Failed("read", segment.Path, e);
                }
                if (reason is null) continue;
                if (!isLast)
                    throw new InvalidDataException($"Corrupt record in segment '{segment.Path}' at offset {badOffset}: {reason}.");

                long fileLength = new FileInfo(segment.Path).Length;
                using (var stream = OpenWriterOrFail(segment.Path, FileMode.Open, "open"))
                {
                    try
                    {
                        stream.SetLength(badOffset);
                    }
                    catch (Exception e) when (IsDiskError(e))
                    {
                        throw Failed("truncate", segment.Path, e);
                    }
                    SyncFile(stream);
                }
                report = report with
                {
                    TruncatedFile = segment.Path,
                    TruncatedAtOffset = badOffset,
                    TruncatedBytes = fileLength - badOffset,
                    TruncationReason = reason,
                };
                progress?.Invoke($"Cut a torn tail of {fileLength - badOffset} bytes off '{segment.Path}' at offset {badOffset}: {reason}.");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        // A roll-over that crashed before its first record leaves an empty newest segment; the one before stays active.
        if (_segments.Count > 1 && _segments[^1].IsEmpty)
        {
            DeleteSegment(_segments.Count - 1);
            if (_options.Fsync) SyncDirectory();
        }

        if (_segments.Count > 0)
        {
            Segment last = _segments[^1];
            _active = OpenWriterOrFail(last.Path, FileMode.Open, "open");
            _active.Position = last.Size;
            // What was read back may have come from the page cache of a process that never fsync'd it.
            if (_options.Fsync) SyncFile(_active);
            _writeBuffer = ArrayPool<byte>.Shared.Rent(WriteBufferBytes);
            _next = last.NextIndex;
            _lastEpoch = last.LastEpoch;
        }
        _durable = IsEmpty ? 0 : _next - 1;

        LastRecovery = report with
        {
            Segments = _segments.Count,
            Entries = state.Entries,
            BytesScanned = state.Bytes,
            FirstIndex = IsEmpty ? 0 : _segments[0].BaseIndex,
            LastIndex = IsEmpty ? 0 : _next - 1,
            Elapsed = clock.Elapsed,
        };
    }

    private struct ScanState(Action<string>? progress, long totalBytes)
    {
        public readonly Action<string>? Progress = progress;
        public readonly long TotalBytes = totalBytes;
        public long Bytes;
        public long Entries;
        public long NextReport = ProgressIntervalBytes;
    }

    /// <summary>Scans a segment's records, rebuilding its sparse index; returns where and why it stopped early, if it did.</summary>
    private (long Offset, string? Reason) ScanSegment(Segment segment, ref byte[] buffer, ref ScanState state)
    {
        using var handle = File.OpenHandle(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long fileLength = RandomAccess.GetLength(handle);
        int headerLength = Fill(handle, buffer.AsSpan(0, SegmentHeader.Size), 0, fileLength);
        long recordsStart = SegmentHeader.RecordsStart(buffer.AsSpan(0, headerLength), segment.Path, segment.BaseIndex);
        // Too short for a header or a record: a creation or a first write torn by a crash. Cut to zero bytes it is
        // an empty segment like any other, and only its name counts: as the newest of several it is a roll-over
        // that crashed and goes; alone it may be the pin ResetTo or TruncateAfter left, so it keeps pinning the
        // index its name says (and gets its header with its first record).
        if (recordsStart < 0) return (0, fileLength == 0 ? null : $"{fileLength} bytes, too short for a segment header or a record (torn)");
        segment.StartRecordsAt(recordsStart);
        long position = recordsStart;
        long blockStart = 0;
        int blockLength = 0;
        while (position < fileLength)
        {
            if (position + RecordHeader.Size > blockStart + blockLength)
            {
                blockLength = Fill(handle, buffer, position, fileLength);
                blockStart = position;
            }
            if (position + RecordHeader.Size > blockStart + blockLength) return (position, "truncated record header");
            var header = RecordHeader.Read(buffer.AsSpan((int)(position - blockStart)));
            // Checked against the file's remaining size and the record maximum before anything is sized from it.
            string? problem = RecordHeader.CheckLength(header.Length, fileLength - position);
            if (problem is not null) return (position, problem);
            long recordSize = header.RecordSize;
            if (position + recordSize > blockStart + blockLength)
            {
                if (recordSize > buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent((int)recordSize);
                }
                blockLength = Fill(handle, buffer, position, fileLength);
                blockStart = position;
            }
            problem = RecordHeader.CheckRecord(buffer.AsSpan((int)(position - blockStart), (int)recordSize), header)
                ?? (header.Index != segment.NextIndex ? $"index {header.Index} where {segment.NextIndex} was expected" : null);
            if (problem is not null) return (position, problem);

            segment.OnRecord(header.Index, header.Epoch, header.TimestampMicros, recordSize, _options.IndexIntervalBytes);
            position += recordSize;
            state.Entries++;
            state.Bytes += recordSize;
            if (state.Bytes >= state.NextReport)
            {
                state.NextReport += ProgressIntervalBytes;
                state.Progress?.Invoke($"Recovered {state.Bytes >> 20} of {state.TotalBytes >> 20} MiB ({state.Entries} entries), now in '{Path.GetFileName(segment.Path)}'.");
            }
        }
        return (position, null);
    }

    private static int Fill(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long position, long fileLength)
    {
        int want = (int)Math.Min(buffer.Length, fileLength - position);
        int read = 0;
        while (read < want)
        {
            int n = RandomAccess.Read(handle, buffer[read..want], position + read);
            if (n == 0) break;
            read += n;
        }
        return read;
    }
}
