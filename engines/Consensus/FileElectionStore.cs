using GeoRelay.Storage;

namespace GeoRelay.Engines.Consensus;

/// <summary>An <see cref="IElectionStore"/> kept in the data directory's <c>term-vote</c> file.</summary>
public sealed class FileElectionStore : IElectionStore
{
    private readonly TermVoteFile _file;

    public FileElectionStore(string dataDirectory, bool fsync = true) => _file = new TermVoteFile(dataDirectory, fsync);

    public string Path => _file.Path;

    public TermVote Load()
    {
        var stored = _file.Load();
        return new TermVote(stored.Term, stored.VotedFor);
    }

    public void Save(TermVote state) => _file.Save(state.Term, state.VotedFor);
}
