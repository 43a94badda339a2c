using System.Buffers.Text;

namespace GeoRelay.Bench.Snapshot;

/// <summary>
/// The keyed writes the snapshot benchmark publishes: write i (from 0) sets key <c>key-%06d</c> of <c>i % Keys</c> to an
/// 80-byte payload that starts with i in 12 digits and goes on with a slice of random hex text (compresses about 2x,
/// like the datapath benchmark's pool), so every payload can be made again from i alone and checked.
/// </summary>
internal sealed class KeyedWorkload
{
    public const int KeyBytes = 10;   // "key-" + 6 digits
    public const int PayloadBytes = 80;
    private const int IndexDigits = 12;

    private readonly byte[] _hex;

    public long Entries { get; }
    public int Keys { get; }

    public KeyedWorkload(long entries, int keys)
    {
        if (keys < 1 || keys > 1_000_000) throw new ArgumentOutOfRangeException(nameof(keys), keys, "1..1,000,000 (six digits)");
        Entries = entries;
        Keys = keys;
        var random = new Random(42);
        _hex = new byte[1 << 20];
        for (int i = 0; i < _hex.Length; i++) _hex[i] = (byte)"0123456789abcdef"[random.Next(16)];
    }

    /// <summary>Bytes of the state once every write is in: each key once with its payload.</summary>
    public long CompactedStateBytes => (long)Math.Min(Keys, Entries) * (KeyBytes + PayloadBytes);

    public void WriteKey(long write, Span<byte> into) => WriteKeyOf((int)(write % Keys), into);

    public static void WriteKeyOf(int key, Span<byte> into)
    {
        "key-"u8.CopyTo(into);
        Utf8Formatter.TryFormat(key, into[4..], out _, new System.Buffers.StandardFormat('D', 6));
    }

    public void WritePayload(long write, Span<byte> into)
    {
        Utf8Formatter.TryFormat(write, into, out _, new System.Buffers.StandardFormat('D', IndexDigits));
        int from = (int)(write * 61 % (_hex.Length - PayloadBytes));
        _hex.AsSpan(from, PayloadBytes - IndexDigits).CopyTo(into[IndexDigits..]);
    }

    /// <summary>The key's number, or -1 for a key this workload never writes.</summary>
    public int KeyNumber(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyBytes || !key.StartsWith("key-"u8)) return -1;
        return Utf8Parser.TryParse(key[4..], out int n, out int used) && used == 6 && n < Keys ? n : -1;
    }

    /// <summary>The last write of <paramref name="key"/>: what a complete state holds for it.</summary>
    public long LastWriteOf(int key) => key + (Entries - 1 - key) / Keys * Keys;
}
