using GeoRelay.Storage.Internal;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// A write-only view of another stream that counts and checksums (CRC-32C) what goes through it, given to a state
/// machine's <see cref="IStateMachine.WriteSnapshot"/>: it cannot seek or close the checkpoint file under the host.
/// </summary>
internal sealed class ChecksummingWriteStream(Stream inner) : Stream
{
    private uint _state = ~0u;
    private long _length;

    /// <summary>The CRC-32C of everything written so far.</summary>
    public uint Checksum => ~_state;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;

    public override long Position
    {
        get => _length;
        set => throw new NotSupportedException("a snapshot is written front to back");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        _state = Crc32C.Update(_state, buffer);
        _length += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    // The host flushes (and fsyncs) the file once the snapshot is whole.
    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("a snapshot is written, not read, here");
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a snapshot is written front to back");
    public override void SetLength(long value) => throw new NotSupportedException("a snapshot is written front to back");
}
