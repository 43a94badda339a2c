using System.Text.RegularExpressions;

namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// The nodes a refusal suggests instead: a relay or member that is full or draining ends its message with
/// "<c>try ID at HOST:PORT or ID at HOST:PORT ...</c>".
/// </summary>
internal static partial class RefusalHint
{
    /// <summary>The <c>HOST:PORT</c> addresses named after "try ", in order; empty when there are none.</summary>
    public static List<string> Addresses(string? message)
    {
        var addresses = new List<string>();
        int start = message?.IndexOf("try ", StringComparison.Ordinal) ?? -1;
        if (start < 0) return addresses;
        foreach (Match m in AtAddress().Matches(message!, start))
        {
            string address = m.Groups[1].Value.TrimEnd('.', ')');
            try
            {
                EndpointAddress.Parse(address);
                addresses.Add(address);
            }
            catch (ArgumentException)
            {
                // Not an address (a cut message, prose): not a hint.
            }
        }
        return addresses;
    }

    [GeneratedRegex(@"\bat ([^\s,;]+)")]
    private static partial Regex AtAddress();
}
