namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// A read-only view of the next <c>length</c> bytes of another stream, given to a state machine's
/// <see cref="IStateMachine.ReadSnapshot"/>: it ends where the snapshot ends, before the checkpoint's checksum.
/// </summary>
internal sealed class BoundedReadStream(Stream inner, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException("a snapshot is read front to back");
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        long left = length - _position;
        if (left <= 0) return 0;
        if (buffer.Length > left) buffer = buffer[..(int)left];
        int read = inner.Read(buffer);
        if (read == 0) throw new EndOfStreamException($"the file ended {left} bytes before the snapshot did");
        _position += read;
        return read;
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0 ? -1 : one[0];
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("a snapshot is read front to back");
    public override void SetLength(long value) => throw new NotSupportedException("a snapshot is read, not written, here");
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("a snapshot is read, not written, here");
}
