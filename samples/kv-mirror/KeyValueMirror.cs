using GeoRelay.LearnerClient;

namespace GeoRelay.Samples.KvMirror;

/// <summary>
/// The last value of every key in the log: an entry sets its key to its payload, and a tombstone deletes the key.
/// Entries without a key are not key-value writes and change nothing but <see cref="AppliedIndex"/>. It takes the
/// cluster's snapshots of keyed state (<c>compaction: keyed</c>) when it has fallen behind the cluster's retention.
/// </summary>
/// <remarks>Keys and values are bytes, compared and ordered bytewise: they need not be text.</remarks>
public sealed class KeyValueMirror : IStateMachine
{
    // The snapshot format, for a mirror restored by a later build of this sample.
    private const byte SnapshotVersion = 1;

    private Dictionary<byte[], byte[]> _values = new(ByteArrayComparer.Instance);

    public ulong AppliedIndex { get; private set; }

    public int Count => _values.Count;

    /// <summary>Called after each entry is applied, with the index applied before it and its own (for the sample's applied log).</summary>
    public Action<ulong, ulong>? Applied { get; init; }

    public void Apply(LearnerEntry entry)
    {
        ulong previous = AppliedIndex;
        if (!entry.Key.IsEmpty)
        {
            if (entry.IsTombstone) _values.Remove(entry.Key.ToArray());
            else _values[entry.Key.ToArray()] = entry.Payload.ToArray();
        }
        AppliedIndex = entry.Index;
        Applied?.Invoke(previous, entry.Index);
    }

    public void BeginSnapshot(ulong through)
    {
        _values.Clear();
        AppliedIndex = 0;
    }

    public void EndSnapshot(ulong through) => AppliedIndex = through;

    /// <summary>Every key and its value, keys in byte order.</summary>
    public List<KeyValuePair<byte[], byte[]>> Sorted()
    {
        var pairs = _values.ToList();
        pairs.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
        return pairs;
    }

    // version | applied index | count | (key length, key, value length, value) per key
    public void WriteSnapshot(Stream destination)
    {
        using var writer = new BinaryWriter(destination, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(SnapshotVersion);
        writer.Write(AppliedIndex);
        writer.Write(_values.Count);
        foreach (var (key, value) in _values)
        {
            writer.Write(key.Length);
            writer.Write(key);
            writer.Write(value.Length);
            writer.Write(value);
        }
    }

    public void ReadSnapshot(Stream source)
    {
        using var reader = new BinaryReader(source, System.Text.Encoding.UTF8, leaveOpen: true);
        byte version = reader.ReadByte();
        if (version != SnapshotVersion)
            throw new InvalidDataException($"the kv-mirror snapshot has version {version}; this build reads version {SnapshotVersion} only");
        ulong applied = reader.ReadUInt64();
        int count = reader.ReadInt32();
        var values = new Dictionary<byte[], byte[]>(count, ByteArrayComparer.Instance);
        for (int i = 0; i < count; i++)
        {
            byte[] key = reader.ReadBytes(reader.ReadInt32());
            values[key] = reader.ReadBytes(reader.ReadInt32());
        }
        (_values, AppliedIndex) = (values, applied);
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] bytes)
        {
            var hash = new HashCode();
            hash.AddBytes(bytes);
            return hash.ToHashCode();
        }
    }
}
