namespace GeoRelay.Codec.Compression;

/// <summary>Which zstd implementation runs the calls; both read and write the same format.</summary>
public enum ZstdBackend
{
    /// <summary>The system's <c>libzstd.so.1</c> (Debian <c>libzstd1</c>) through P/Invoke: the fast path.</summary>
    Native,

    /// <summary>ZstdSharp.Port, zstd's C sources translated to C#: slower, but runs wherever .NET does.</summary>
    Managed,
}
