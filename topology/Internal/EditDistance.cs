namespace GeoRelay.Topology.Internal;

internal static class EditDistance
{
    /// <summary>Levenshtein distance (insert, delete, substitute; each costs 1).</summary>
    public static int Between(string a, string b)
    {
        if (a.Length < b.Length)
        {
            (a, b) = (b, a);
        }
        Span<int> previous = stackalloc int[b.Length + 1];
        Span<int> current = stackalloc int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitute, Math.Min(previous[j], current[j - 1]) + 1);
            }
            current.CopyTo(previous);
        }
        return previous[b.Length];
    }

    /// <summary>
    /// The candidate closest to <paramref name="word"/>, if it is close enough to be a likely typo
    /// (at most 2 edits, or a third of the word for long words); null otherwise.
    /// </summary>
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        if (word.Length > 256)
        {
            return null;
        }
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string candidate in candidates)
        {
            if (candidate.Length > 256 || Math.Abs(candidate.Length - word.Length) >= bestDistance)
            {
                continue;
            }
            int distance = Between(word.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }
        int limit = Math.Max(2, word.Length / 3);
        return bestDistance <= limit && bestDistance < word.Length ? best : null;
    }
}
