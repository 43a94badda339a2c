namespace GeoRelay.Engines.Consensus;

/// <summary>
/// The (term, index) of a log's last entry; (0, 0) for an empty log. Ordered by term, then index: a log is
/// "at least as up to date" as another when its position compares greater or equal (Raft §5.4.1).
/// </summary>
public readonly record struct LogPosition(ulong Term, ulong Index) : IComparable<LogPosition>
{
    public int CompareTo(LogPosition other) => Term != other.Term ? Term.CompareTo(other.Term) : Index.CompareTo(other.Index);

    public static bool operator <(LogPosition a, LogPosition b) => a.CompareTo(b) < 0;
    public static bool operator >(LogPosition a, LogPosition b) => a.CompareTo(b) > 0;
    public static bool operator <=(LogPosition a, LogPosition b) => a.CompareTo(b) <= 0;
    public static bool operator >=(LogPosition a, LogPosition b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"(term {Term}, index {Index})";
}
