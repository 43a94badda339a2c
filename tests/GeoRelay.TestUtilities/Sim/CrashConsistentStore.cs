using GeoRelay.Engines.Consensus;
using GeoRelay.Storage;

namespace GeoRelay.TestUtilities.Sim;

/// <summary>
/// The simulation's "disk" for term and vote: what Save returned from survives any crash, as the term-vote file's
/// fsync + rename promises. It can also fail a save, as a disk would (the node then stops, like a real one).
/// </summary>
public class CrashConsistentStore : IElectionStore
{
    private readonly Random? _failures;
    private readonly double _failureRate;

    public CrashConsistentStore(Random? failures = null, double failureRate = 0)
    {
        _failures = failures;
        _failureRate = failureRate;
    }

    protected TermVote Durable { get; private set; }
    public int Saves { get; private set; }

    public virtual TermVote Load() => Durable;

    public void Save(TermVote state)
    {
        if (_failures is not null && _failures.NextDouble() < _failureRate)
            throw new DiskFailedException("fsync", "term-vote.tmp", new IOException("simulated EIO"));
        Durable = state;
        Saves++;
    }
}
