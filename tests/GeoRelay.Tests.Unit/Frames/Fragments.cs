using System.Buffers;

namespace GeoRelay.Tests.Unit.Frames;

/// <summary>Builds a ReadOnlySequence from several pieces, so parsers meet data split anywhere.</summary>
internal sealed class Fragment : ReadOnlySequenceSegment<byte>
{
    public Fragment(ReadOnlyMemory<byte> memory) => Memory = memory;

    public Fragment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new Fragment(memory) { RunningIndex = RunningIndex + Memory.Length };
        Next = next;
        return next;
    }

    public static ReadOnlySequence<byte> Split(byte[] bytes, params int[] cuts)
    {
        var first = new Fragment(bytes.AsMemory(0, cuts.Length > 0 ? cuts[0] : bytes.Length));
        var last = first;
        for (int i = 0; i < cuts.Length; i++)
        {
            int end = i + 1 < cuts.Length ? cuts[i + 1] : bytes.Length;
            // Copies, so each piece lives in its own array as it would from a socket.
            last = last.Append(bytes.AsSpan(cuts[i], end - cuts[i]).ToArray());
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
