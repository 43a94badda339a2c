using GeoRelay.Codec.Frames;
using GeoRelay.Storage;
using GeoRelay.Topology;

namespace GeoRelay.Engines;

/// <summary>Where a voter keeps the configurations it knows (<see cref="MembershipFile"/> on disk; memory in simulations).</summary>
public interface IMembershipStore
{
    IReadOnlyList<StoredConfiguration> Load();
    /// <summary>Returns once durable.</summary>
    void Save(IReadOnlyList<StoredConfiguration> configurations);
}

public sealed class FileMembershipStore(string dataDirectory, bool fsync = true) : IMembershipStore
{
    private readonly MembershipFile _file = new(dataDirectory, fsync);
    public IReadOnlyList<StoredConfiguration> Load() => _file.Load();
    public void Save(IReadOnlyList<StoredConfiguration> configurations) => _file.Save(configurations);
}

public sealed class MemoryMembershipStore : IMembershipStore
{
    private IReadOnlyList<StoredConfiguration> _saved = [];
    public IReadOnlyList<StoredConfiguration> Load() => _saved;
    public void Save(IReadOnlyList<StoredConfiguration> configurations) => _saved = configurations.ToArray();
}

/// <summary>What the log does to the entries it holds, as the configuration history needs to hear of it.</summary>
public interface ILogObserver
{
    /// <summary>Before <paramref name="entry"/> is appended (it is not yet held).</summary>
    void BeforeAppend(in LogEntry entry);
    /// <summary>Every entry above <paramref name="index"/> was dropped (a deposed leader's suffix).</summary>
    void AfterTruncate(ulong index);
    /// <summary>The log was emptied to start at <paramref name="nextIndex"/>: everything below it is committed (InstallSnapshot).</summary>
    void AfterReset(ulong nextIndex);
}

/// <summary>
/// The configurations a voter knows: the newest committed one, and every configuration entry its log holds above it.
/// A voter counts votes and commits with the newest (Raft §4.1: a server uses the latest configuration in its log,
/// committed or not), so a truncation that drops an entry takes its configuration back. The topology file is the
/// configuration at index 0, until the log holds another.
/// </summary>
/// <remarks>
/// Saved before the entry is appended: after a crash the file may name an entry the log lost, never the other way
/// round, and entries the log does not hold are dropped on load.
/// </remarks>
public sealed class MembershipHistory : ILogObserver
{
    private readonly TopologyConfig _file;
    private readonly IMembershipStore _store;
    private readonly IEntryLog _log;
    private StoredConfiguration? _committed;
    private readonly List<StoredConfiguration> _pending = [];
    private TopologyConfig _latest;
    private Membership? _latestMembership;

    public MembershipHistory(TopologyConfig file, IMembershipStore store, IEntryLog log)
    {
        _file = file.AsWritten;
        _store = store;
        _log = log;
        bool dropped = false;
        foreach (var c in store.Load())
        {
            if (c.Committed) { _committed = c; _pending.Clear(); continue; }
            // An entry the log does not hold (lost with an unsynced tail, or truncated before the file was rewritten).
            if (c.Index >= log.FirstIndex && log.TryGet(c.Index, out var e) && e.Epoch == c.Epoch && e.Key.Span.SequenceEqual(InternalEntries.ConfigurationKey))
                _pending.Add(c);
            else if (c.Index < log.FirstIndex && c.Index > 0)
                _committed = c with { Committed = true }; // below the log's start: installed, hence committed
            else
                dropped = true;
        }
        _latest = Build();
        if (dropped) Save();
    }

    /// <summary>Bumped whenever <see cref="Latest"/> changes.</summary>
    public int Version { get; private set; }

    /// <summary>The configuration to act on: the newest in the log, else the newest committed, else the file's.</summary>
    public TopologyConfig Latest => _latest;

    /// <summary>The log index of the entry that made <see cref="Latest"/> (0: the file).</summary>
    public ulong LatestIndex => _pending.Count > 0 ? _pending[^1].Index : _committed?.Index ?? 0;
    public ulong LatestEpoch => _pending.Count > 0 ? _pending[^1].Epoch : _committed?.Epoch ?? 0;

    /// <summary>The log index of the newest configuration known committed (0: the file's).</summary>
    public ulong CommittedIndex => _committed?.Index ?? 0;

    /// <summary>The newest committed configuration.</summary>
    public TopologyConfig Committed => _committed is { } c ? Decode(c).ApplyTo(_file) : _file;

    /// <summary>Configuration entries held above the committed one (at most one while leaders follow the rules).</summary>
    public int Uncommitted => _pending.Count;

    /// <summary>The indexes of the configuration entries held above the committed one, oldest first.</summary>
    public IEnumerable<ulong> PendingIndexes => _pending.Select(c => c.Index);

    /// <summary>The topology file this node started from.</summary>
    public TopologyConfig File => _file;

    public Membership LatestMembership => _latestMembership ??= Membership.Of(_latest);

    public void BeforeAppend(in LogEntry entry)
    {
        if (!entry.Key.Span.SequenceEqual(InternalEntries.ConfigurationKey)) return;
        if (entry.Index <= _log.LastIndex && _log.LastIndex != 0 && entry.Index >= _log.FirstIndex) return; // a duplicate the log ignores
        var bytes = entry.Payload.ToArray();
        var membership = Membership.Decode(bytes); // throws on a malformed entry: the leader validated it
        ulong index = entry.Index;
        _pending.RemoveAll(c => c.Index >= index);
        _pending.Add(new StoredConfiguration(index, entry.Epoch, false, bytes));
        Save();
        Changed(membership);
    }

    public void AfterTruncate(ulong index)
    {
        if (_pending.RemoveAll(c => c.Index > index) == 0) return;
        Save();
        Changed(null);
    }

    public void AfterReset(ulong nextIndex)
    {
        int before = _pending.Count;
        var committed = _pending.LastOrDefault(c => c.Index < nextIndex);
        _pending.Clear();
        if (committed is not null) _committed = committed with { Committed = true };
        if (before == 0) return;
        Save();
        Changed(null);
    }

    /// <summary>The commit index reached <paramref name="commitIndex"/>: the entries at or below it are committed.</summary>
    public void OnCommitted(ulong commitIndex)
    {
        if (_pending.Count == 0 || _pending[0].Index > commitIndex) return;
        var committed = _pending.Last(c => c.Index <= commitIndex);
        _pending.RemoveAll(c => c.Index <= commitIndex);
        _committed = committed with { Committed = true };
        Save();
        // Latest moves only if a truncation could still have taken it back; it is the same configuration either way.
    }

    /// <summary>
    /// A leader told us its committed configuration (a Configuration frame) that our log cannot hold any more: it lies
    /// below our log's start (we installed past it). Taken as committed when newer than ours.
    /// </summary>
    public bool AdoptCommitted(ulong index, ulong epoch, byte[] membership)
    {
        // At or above our log's start the log itself says (the entry is held, or on its way).
        if (index <= CommittedIndex || index >= _log.FirstIndex) return false;
        var decoded = Membership.Decode(membership);
        _committed = new StoredConfiguration(index, epoch, true, membership);
        _pending.RemoveAll(c => c.Index <= index);
        Save();
        if (_pending.Count == 0) Changed(decoded);
        return true;
    }

    private void Changed(Membership? latest)
    {
        _latest = Build(latest);
        _latestMembership = null;
        Version++;
    }

    private TopologyConfig Build(Membership? latest = null)
    {
        var newest = _pending.Count > 0 ? _pending[^1] : _committed;
        if (newest is null) return _file;
        return (latest ?? Decode(newest)).ApplyTo(_file);
    }

    private static Membership Decode(StoredConfiguration c) => Membership.Decode(c.Membership);

    private void Save()
    {
        var list = new List<StoredConfiguration>(_pending.Count + 1);
        if (_committed is not null) list.Add(_committed);
        list.AddRange(_pending);
        _store.Save(list);
    }
}
