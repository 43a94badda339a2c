using System.Text;
using GeoRelay.LearnerClient;

namespace GeoRelay.Cli;

/// <summary>
/// What <c>georelay tail</c> prints per entry: <c>&lt;index&gt;TAB&lt;payload as UTF-8&gt;</c>, as it always has (a
/// tombstone's payload is empty, so it looks like an empty value). With <c>--keys</c>,
/// <c>&lt;index&gt;TAB&lt;key&gt;TAB&lt;payload&gt;</c>, and <c>&lt;index&gt;TAB&lt;key&gt;</c> with no second TAB for a tombstone,
/// key and payload escaped as <c>georelay state</c> escapes them so every line keeps its fields. Snapshot markers print nothing.
/// </summary>
public static class TailLine
{
    /// <summary>Formats <paramref name="entry"/> into <paramref name="line"/> (cleared first); false for a marker, which is not printed.</summary>
    public static bool TryFormat(in LearnerEntry entry, bool keys, StringBuilder line)
    {
        line.Clear();
        if (entry.IsMarker) return false;
        line.Append(entry.Index).Append('\t');
        if (!keys)
        {
            line.Append(Encoding.UTF8.GetString(entry.Payload.Span));
            return true;
        }
        KeyValueText.AppendEscaped(line, entry.Key.Span);
        if (!entry.IsTombstone) KeyValueText.AppendEscaped(line.Append('\t'), entry.Payload.Span);
        return true;
    }
}
