namespace GeoRelay.Bench.DcTree;

/// <summary>
/// The relays of one datacenter, p1..pN in <c>relays:</c> priority order: which are tier 1 (the leader may route to
/// them; standbys feed from the active one) and, for tier 2, the YAML <c>feed-from</c> list (indexes into the relays).
/// </summary>
internal sealed record TreeShape(string Name, bool[] Tier1, int[][] FeedFrom)
{
    public int Relays => Tier1.Length;

    /// <summary>p1, p2 tier 1; the tier-2 relays split in halves, feeding from [p1, p2] and [p2, p1].</summary>
    public static TreeShape TwoTiers(int relays)
    {
        var tier1 = new bool[relays];
        var feedFrom = new int[relays][];
        tier1[0] = tier1[1] = true;
        feedFrom[0] = feedFrom[1] = [];
        int tier2 = relays - 2;
        for (int r = 2; r < relays; r++)
            feedFrom[r] = r - 2 < (tier2 + 1) / 2 ? [0, 1] : [1, 0];
        return new TreeShape("two tiers", tier1, feedFrom);
    }

    /// <summary>Every relay tier 1: p1 active, the others standbys fed by it.</summary>
    public static TreeShape OneTier(int relays)
    {
        var tier1 = new bool[relays];
        Array.Fill(tier1, true);
        var feedFrom = new int[relays][];
        Array.Fill(feedFrom, []);
        return new TreeShape("one tier", tier1, feedFrom);
    }

    /// <summary>Where relay <paramref name="r"/> may take its feed from, best first: its feed-from, or (tier 1) the other tier-1 relays in priority order.</summary>
    public int[] Parents(int r)
    {
        if (!Tier1[r]) return FeedFrom[r];
        var list = new List<int>();
        for (int p = 0; p < Relays; p++)
            if (p != r && Tier1[p]) list.Add(p);
        return [.. list];
    }

    public static string RelayName(int r) => $"p{r + 1}";

    /// <summary>E.g. "tier 1: p1, p2; tier 2: p3–p6 feed-from [p1, p2], p7–p10 feed-from [p2, p1]".</summary>
    public string Describe()
    {
        var tier1 = new List<string>();
        var runs = new List<string>();
        int start = -1;
        for (int r = 0; r <= Relays; r++)
        {
            bool sameRun = r < Relays && start >= 0 && !Tier1[r] && FeedFrom[r].SequenceEqual(FeedFrom[start]);
            if (sameRun) continue;
            if (start >= 0) runs.Add($"{Range(start, r - 1)} feed-from [{string.Join(", ", FeedFrom[start].Select(RelayName))}]");
            start = -1;
            if (r == Relays) break;
            if (Tier1[r]) tier1.Add(RelayName(r));
            else start = r;
        }
        string text = $"tier 1: {Compact(tier1)}";
        if (runs.Count > 0) text += "; tier 2: " + string.Join(", ", runs);
        return text;
    }

    private static string Range(int from, int to) => from == to ? RelayName(from) : $"{RelayName(from)}–{RelayName(to)}";

    private static string Compact(List<string> names) => names.Count > 3 ? $"{names[0]}–{names[^1]}" : string.Join(", ", names);
}
