using GeoRelay.Engines.Consensus;
using GeoRelay.TestUtilities.Sim;

namespace GeoRelay.Tests.Simulation.Consensus;

/// <summary>Deliberately broken, for showing that the invariants catch it: keeps the term but forgets the vote across a restart.</summary>
internal sealed class VoteForgettingStore : CrashConsistentStore
{
    public override TermVote Load() => Durable with { VotedFor = null };
}
