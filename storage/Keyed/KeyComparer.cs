namespace GeoRelay.Storage;

/// <summary>
/// Compares entry keys by content, as keyed compaction does; for maps of keys held as memory or as arrays. Hashes are
/// seeded per process (<see cref="HashCode"/>), so crafted keys cannot force collisions.
/// </summary>
public sealed class KeyComparer : IEqualityComparer<ReadOnlyMemory<byte>>, IEqualityComparer<byte[]>
{
    public static readonly KeyComparer Instance = new();

    private KeyComparer()
    {
    }

    public bool Equals(ReadOnlyMemory<byte> x, ReadOnlyMemory<byte> y) => x.Span.SequenceEqual(y.Span);

    public int GetHashCode(ReadOnlyMemory<byte> key) => Hash(key.Span);

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] key) => Hash(key);

    private static int Hash(ReadOnlySpan<byte> key)
    {
        var hash = new HashCode();
        hash.AddBytes(key);
        return hash.ToHashCode();
    }
}
