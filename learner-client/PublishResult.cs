using GeoRelay.Codec.Frames;

namespace GeoRelay.LearnerClient;

/// <summary>The leader's answer to one publish: where its entries are in the log.</summary>
/// <param name="FirstIndex">Index of the publish's first entry; the others follow it without gaps, in the order given.</param>
/// <param name="Count">How many entries the publish appended.</param>
/// <param name="Level">What the leader confirmed: <see cref="WaitLevel.Accepted"/> (durable in the leader's log) or <see cref="WaitLevel.Committed"/> (durable on a quorum).</param>
public readonly record struct PublishResult(ulong FirstIndex, int Count, WaitLevel Level)
{
    /// <summary>Index of the publish's last entry.</summary>
    public ulong LastIndex => FirstIndex + (ulong)Count - 1;
}
