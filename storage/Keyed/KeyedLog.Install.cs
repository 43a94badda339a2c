namespace GeoRelay.Storage;

/// <summary>
/// Installing the keyed state from another node, for a log that was installed or reset past its own state (Raft's
/// InstallSnapshot carries only the log's start; the writes before it arrive here as that node's state image).
/// </summary>
/// <remarks>
/// An incomplete state goes on folding what its log holds (so retention keeps the disk bounded meanwhile): it is the
/// latest entry of each key written in (<see cref="MissingThrough"/>, <see cref="Through"/>]. An image is another
/// node's whole state through its index T, all committed. When <c>MissingThrough &lt;= T &lt;= Through</c>, the state
/// through <see cref="Through"/> is the image with this node's entries above T laid over it. An image past what this
/// node has folded waits until the fold reaches it: merging earlier would claim indexes this log may still hold an
/// old leader's entries at. Tombstones are not swept while the state is incomplete, so a key deleted above T stays deleted.
/// </remarks>
public sealed partial class KeyedLog
{
    /// <summary>The writes through this index are missing from the state (0 when it is complete): an image must reach at least here.</summary>
    private ulong _missingThrough;
    private KeyedSnapshot? _offered;
    private KeyedSnapshot? _image;
    private long _imageVersion = -1;
    private long _imagesInstalled;
    private bool _persistDue;

    /// <summary>While the state is incomplete: it lacks the writes through this index. 0 when it is complete.</summary>
    public ulong MissingThrough
    {
        get { lock (_gate) return _complete ? 0 : _missingThrough; }
    }

    /// <summary>The state is incomplete and no image is waiting to be merged: ask another node for its state (<see cref="OfferImage"/>).</summary>
    public bool NeedsImage
    {
        get { lock (_gate) return !_complete && _offered is null; }
    }

    /// <summary>Images merged since this log was opened.</summary>
    public long ImagesInstalled
    {
        get { lock (_gate) return _imagesInstalled; }
    }

    /// <summary>
    /// The whole state at <see cref="Through"/> for another node to install: every key's latest entry, tombstones
    /// included, by ascending index; null while the state is incomplete. The same object until the state changes.
    /// </summary>
    public KeyedSnapshot? StateImage() => Sorted(withTombstones: true);

    /// <summary>
    /// Offers another node's state through <paramref name="through"/> (its <see cref="StateImage"/>; entries own their
    /// memory, by ascending index, all committed). False when it is of no use: the state is complete, or the image
    /// stops before the writes this state lacks. Otherwise it is merged as soon as this log has folded through
    /// <paramref name="through"/> (at once if it has), and the merged state is persisted at the next fold pass.
    /// </summary>
    public bool OfferImage(ulong through, IReadOnlyList<LogEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var image = new KeyedSnapshot(through, entries as LogEntry[] ?? entries.ToArray(), 0);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_complete || through < _missingThrough) return false;
            _offered = image;
            MergeOfferedIfReady();
            _wake = true;
            Monitor.PulseAll(_gate);
        }
        if (!_options.Background)
        {
            FoldPass();
            PersistIfDue();
        }
        return true;
    }

    /// <summary>Lock held. Merges the offered image once the fold has reached its index; drops it if a reset made it useless.</summary>
    private void MergeOfferedIfReady()
    {
        if (_offered is not { } image) return;
        if (_complete || image.Through < _missingThrough)
        {
            _offered = null;
            return;
        }
        if (image.Through > _through) return;
        // This node's own entries above the image's index are newer than anything in it.
        var newer = new List<LogEntry>();
        foreach (LogEntry entry in _state.Values)
            if (entry.Index > image.Through) newer.Add(entry);
        _state.Clear();
        _liveKeys = _tombstones = 0;
        _stateBytes = 0;
        foreach (LogEntry entry in image.Entries) Put(entry);
        foreach (LogEntry entry in newer) Put(entry);
        _offered = null;
        _complete = true;
        _missingThrough = 0;
        _imagesInstalled++;
        _persistDue = true;
        _version++;
        Monitor.PulseAll(_gate);
    }
}
