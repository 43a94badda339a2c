using System.Buffers;

namespace GeoRelay.Codec;

public static class SequenceExtensions
{
    /// <summary>
    /// The bytes as one block: the sequence's own memory when it is contiguous (the usual case), a copy
    /// only when it spans segments. The result is valid as long as the sequence is.
    /// </summary>
    public static ReadOnlyMemory<byte> AsContiguous(this in ReadOnlySequence<byte> sequence) =>
        sequence.IsSingleSegment ? sequence.First : sequence.ToArray();
}
