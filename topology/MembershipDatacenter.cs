namespace GeoRelay.Topology;

/// <summary>One datacenter of a <see cref="Membership"/>: relays in priority order, members in order (the order gives
/// each member its slot in the relays' reports, so it is part of the membership).</summary>
public sealed record MembershipDatacenter(string Name, IReadOnlyList<string> Relays, IReadOnlyList<string> Members)
{
    // By content: the generated record equality would compare the lists by reference.
    public bool Equals(MembershipDatacenter? other) =>
        other is not null && Name == other.Name
        && Relays.SequenceEqual(other.Relays, StringComparer.Ordinal) && Members.SequenceEqual(other.Members, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Name, Relays.Count, Members.Count);
}
