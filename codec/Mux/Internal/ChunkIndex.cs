using System.Buffers;
using System.Numerics;

namespace GeoRelay.Codec.Mux.Internal;

/// <summary>Fingerprint → latest node with that fingerprint (older ones are chained by the caller), open addressing over pooled arrays.</summary>
internal struct ChunkIndex : IDisposable
{
    private ulong[] _keys;
    private int[] _slots; // node + 1; 0 marks an empty slot
    private int _capacity; // a power of two
    private int _count;

    public ChunkIndex(int expected)
    {
        int size = (int)Math.Min(1 << 30, Math.Max(64, BitOperations.RoundUpToPowerOf2((uint)expected * 2)));
        _keys = ArrayPool<ulong>.Shared.Rent(size);
        _slots = ArrayPool<int>.Shared.Rent(size);
        Array.Clear(_slots, 0, size);
        _capacity = size;
    }

    public readonly bool TryGet(ulong key, out int node)
    {
        int mask = _capacity - 1;
        for (int i = (int)key & mask; _slots[i] != 0; i = (i + 1) & mask)
        {
            if (_keys[i] == key)
            {
                node = _slots[i] - 1;
                return true;
            }
        }
        node = -1;
        return false;
    }

    /// <summary>Makes <paramref name="node"/> the entry for <paramref name="key"/>; returns the node it replaces, or -1.</summary>
    public int Add(ulong key, int node)
    {
        int mask = _capacity - 1;
        int i = (int)key & mask;
        for (; _slots[i] != 0; i = (i + 1) & mask)
        {
            if (_keys[i] == key)
            {
                int previous = _slots[i] - 1;
                _slots[i] = node + 1;
                return previous;
            }
        }
        _keys[i] = key;
        _slots[i] = node + 1;
        if (++_count * 2 > _capacity)
            Grow();
        return -1;
    }

    private void Grow()
    {
        var (oldKeys, oldSlots, oldCapacity) = (_keys, _slots, _capacity);
        this = new ChunkIndex(oldCapacity);
        for (int i = 0; i < oldCapacity; i++)
        {
            if (oldSlots[i] != 0)
                Add(oldKeys[i], oldSlots[i] - 1);
        }
        ArrayPool<ulong>.Shared.Return(oldKeys);
        ArrayPool<int>.Shared.Return(oldSlots);
    }

    public void Dispose()
    {
        if (_keys is not null)
        {
            ArrayPool<ulong>.Shared.Return(_keys);
            ArrayPool<int>.Shared.Return(_slots);
        }
        this = default;
    }
}
