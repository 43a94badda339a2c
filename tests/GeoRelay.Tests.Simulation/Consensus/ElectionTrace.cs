using System.Text;

namespace GeoRelay.Tests.Simulation.Consensus;

/// <summary>The last lines of what happened in a run (elections, votes, faults), printed when a seed fails.</summary>
internal sealed class ElectionTrace
{
    private readonly string[] _lines;
    private int _next;
    private long _count;

    public ElectionTrace(int capacity = 400) => _lines = new string[capacity];

    public void Add(long nowMicros, string line)
    {
        _lines[_next] = $"{nowMicros / 1e6,10:F6}s {line}";
        _next = (_next + 1) % _lines.Length;
        _count++;
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        if (_count > _lines.Length) text.AppendLine($"... {_count - _lines.Length} earlier lines omitted");
        long kept = Math.Min(_count, _lines.Length);
        for (long i = 0; i < kept; i++)
            text.AppendLine(_lines[(int)((_next - kept + i + _lines.Length) % _lines.Length)]);
        return text.ToString();
    }
}

/// <summary>An invariant broke, or the cluster did not recover in time.</summary>
internal sealed class InvariantBrokenException(string invariant, string message) : Exception($"{invariant}: {message}")
{
    public string Invariant { get; } = invariant;
}
