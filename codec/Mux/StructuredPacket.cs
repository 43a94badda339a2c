namespace GeoRelay.Codec.Mux;

/// <summary>
/// One packet for <see cref="StructuredMuxEncoder"/>: its own header followed by the entries
/// <c>[FromEntry, ToEntryExclusive)</c> of the shared entry region (empty when they are equal).
/// </summary>
public readonly struct StructuredPacket
{
    public StructuredPacket(ReadOnlyMemory<byte> header, int fromEntry, int toEntryExclusive)
    {
        Header = header;
        FromEntry = fromEntry;
        ToEntryExclusive = toEntryExclusive;
    }

    /// <summary>Bytes only this packet carries, before its entries; may be empty.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    public int FromEntry { get; }

    public int ToEntryExclusive { get; }

    public override string ToString() => $"header {Header.Length} B, entries [{FromEntry}, {ToEntryExclusive})";
}
