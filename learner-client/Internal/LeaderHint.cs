namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// The leader a node names when it refuses a publisher with <c>NotLeader</c>: its message ends
/// "<c>…, publish at HOST:PORT</c>" when it knows the leader's publish address (the voters' wording).
/// </summary>
internal static class LeaderHint
{
    private const string Marker = "publish at ";

    /// <summary>The <c>HOST:PORT</c> after "publish at " in <paramref name="message"/>; null when there is none or it is not an address.</summary>
    public static string? Find(string? message)
    {
        int at = message?.LastIndexOf(Marker, StringComparison.Ordinal) ?? -1;
        if (at < 0) return null;
        var rest = message.AsSpan(at + Marker.Length);
        int end = rest.IndexOfAny(" ;,\t\r\n");
        string address = (end < 0 ? rest : rest[..end]).TrimEnd('.').ToString();
        try
        {
            EndpointAddress.Parse(address);
            return address;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
