using System.Text;

namespace GeoRelay.Cli;

/// <summary>
/// Keys and values as text fields: tab, newline, carriage return and backslash escaped (<c>\t</c>, <c>\n</c>, <c>\r</c>,
/// <c>\\</c>), so a key-value pair is always one line of two TAB-separated fields. Bytes that are not UTF-8 read as
/// U+FFFD, as <see cref="Encoding.UTF8"/> decodes them: that part is not reversible.
/// </summary>
/// <remarks>
/// <c>georelay state</c>, <c>georelay tail --keys</c> and the kv-mirror sample's <c>--dump</c> (which compiles this file
/// in, see its project) print through this one file, so their lines compare byte for byte.
/// </remarks>
internal static class KeyValueText
{
    public static string Escape(ReadOnlySpan<byte> bytes) => AppendEscaped(new StringBuilder(bytes.Length), bytes).ToString();

    public static StringBuilder AppendEscaped(StringBuilder text, ReadOnlySpan<byte> bytes)
    {
        foreach (char c in Encoding.UTF8.GetString(bytes))
        {
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '\t': text.Append(@"\t"); break;
                case '\n': text.Append(@"\n"); break;
                case '\r': text.Append(@"\r"); break;
                default: text.Append(c); break;
            }
        }
        return text;
    }
}
