namespace GeoRelay.Engines.Consensus;

/// <summary>What a voter must not forget across a crash: the latest term it knows and its vote in that term.</summary>
public readonly record struct TermVote(ulong Term, string? VotedFor);

/// <summary>Durable home of a voter's <see cref="TermVote"/>.</summary>
public interface IElectionStore
{
    /// <summary>The last state saved, or (0, null) when nothing was ever saved.</summary>
    TermVote Load();

    /// <summary>
    /// Replaces the state; returns only once it is durable (fsynced). Throws
    /// <see cref="GeoRelay.Storage.DiskFailedException"/> when it cannot be made so; the election lets that through.
    /// </summary>
    void Save(TermVote state);
}
