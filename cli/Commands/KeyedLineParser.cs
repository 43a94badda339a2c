using System.Diagnostics.CodeAnalysis;
using System.Text;
using GeoRelay.Codec.Frames;
using GeoRelay.LearnerClient;

namespace GeoRelay.Cli;

/// <summary>
/// <c>georelay publish --keyed</c>: a stdin line <c>KEY&lt;TAB&gt;VALUE</c> is an entry (split at the first TAB, so the
/// value may hold more), a line with no TAB is the key's tombstone. Nothing is trimmed: <c>KEY&lt;TAB&gt;</c> sets the
/// key to an empty value, which is not a delete.
/// </summary>
public static class KeyedLineParser
{
    /// <summary>
    /// The entry <paramref name="line"/> publishes; false, with <paramref name="error"/> naming
    /// <paramref name="lineNumber"/>, for an empty line, an empty key or a key over the log's 1024 bytes.
    /// </summary>
    public static bool TryParse(string line, long lineNumber, out PublishEntry entry, [NotNullWhen(false)] out string? error)
    {
        entry = default;
        if (line.Length == 0)
        {
            error = $"line {lineNumber}: an empty line has no key";
            return false;
        }
        int tab = line.IndexOf('\t');
        int keyChars = tab < 0 ? line.Length : tab;
        if (keyChars == 0)
        {
            error = $"line {lineNumber}: the line starts with a TAB, so its key is empty";
            return false;
        }
        int keyBytes = Encoding.UTF8.GetByteCount(line.AsSpan(0, keyChars));
        if (keyBytes > EntryRecord.MaxKeyLength)
        {
            error = $"line {lineNumber}: the key is {keyBytes} bytes in UTF-8; the log takes keys of at most {EntryRecord.MaxKeyLength}";
            return false;
        }
        byte[] key = Encoding.UTF8.GetBytes(line, 0, keyChars);
        entry = tab < 0 ? PublishEntry.Tombstone(key) : new PublishEntry(key, Encoding.UTF8.GetBytes(line, tab + 1, line.Length - tab - 1));
        error = null;
        return true;
    }
}
