using GeoRelay.Storage;
using System.Text;
using GeoRelay.LearnerClient;

namespace GeoRelay.Cli;

/// <summary>
/// <c>georelay state</c>: the keyed state a subscription from <see cref="SubscribeFrom.Snapshot"/> brings, from its
/// begin marker to its end marker. A second begin marker before the end (the transfer restarted with a newer
/// snapshot) drops what the first brought. Entries without a key are not key-value writes and are left out.
/// </summary>
public sealed class KeyedStateBuilder
{
    private readonly Dictionary<byte[], byte[]> _values = new(KeyComparer.Instance);
    private bool _begun;

    /// <summary>The index the state is the log's as of: the snapshot's (0 before its begin marker).</summary>
    public ulong Index { get; private set; }

    /// <summary>The end marker arrived: the state is whole.</summary>
    public bool Complete { get; private set; }

    /// <summary>Live keys.</summary>
    public int Count => _values.Count;

    /// <summary>Takes the subscription's next entry; true once it was the end marker (the state is whole).</summary>
    /// <exception cref="InvalidDataException">Not a snapshot's order: an entry before the begin marker, or one of the stream before the end.</exception>
    public bool Apply(in LearnerEntry entry)
    {
        if (Complete) throw new InvalidOperationException("the snapshot is complete: the state takes nothing after its end marker");
        if (entry.IsSnapshotBegin)
        {
            _values.Clear();
            Index = entry.Index;
            _begun = true;
            return false;
        }
        if (!_begun) throw new InvalidDataException($"entry {entry.Index} came before the snapshot's begin marker");
        if (entry.IsSnapshotEnd)
        {
            Complete = true;
            return true;
        }
        if (!entry.IsSnapshot) throw new InvalidDataException($"entry {entry.Index} of the stream came before the snapshot's end marker");
        if (entry.Key.IsEmpty) return false;
        if (entry.IsTombstone) _values.Remove(entry.Key.ToArray());
        else _values[entry.Key.ToArray()] = entry.Payload.ToArray();
        return false;
    }

    /// <summary>Every key with its value, keys in byte order (ordinal over the UTF-8 bytes, not over UTF-16 chars).</summary>
    public List<KeyValuePair<byte[], byte[]>> Sorted()
    {
        var pairs = new List<KeyValuePair<byte[], byte[]>>(_values);
        pairs.Sort(static (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
        return pairs;
    }

    /// <summary>Writes <c>KEY&lt;TAB&gt;VALUE\n</c> per key, keys in byte order, both escaped (<see cref="KeyValueText"/>).</summary>
    public void WriteTo(TextWriter output)
    {
        var line = new StringBuilder();
        foreach (var (key, value) in Sorted())
        {
            line.Clear();
            KeyValueText.AppendEscaped(line, key).Append('\t');
            KeyValueText.AppendEscaped(line, value).Append('\n');
            output.Write(line);
        }
    }
}
