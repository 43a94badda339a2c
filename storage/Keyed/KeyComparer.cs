namespace GeoRelay.Storage;

/// <summary>Compares keys by content. Hashes are seeded per process (<see cref="HashCode"/>), so crafted keys cannot force collisions.</summary>
internal sealed class KeyComparer : IEqualityComparer<ReadOnlyMemory<byte>>
{
    public static readonly KeyComparer Instance = new();

    public bool Equals(ReadOnlyMemory<byte> x, ReadOnlyMemory<byte> y) => x.Span.SequenceEqual(y.Span);

    public int GetHashCode(ReadOnlyMemory<byte> key)
    {
        var hash = new HashCode();
        hash.AddBytes(key.Span);
        return hash.ToHashCode();
    }
}
