namespace GeoRelay.LearnerClient.Internal;

/// <summary>The order a learner tries its endpoints in, drawn once per client.</summary>
internal static class EndpointOrder
{
    /// <summary>
    /// <see cref="LearnerClientOptions.LocalEndpoints"/> shuffled with <paramref name="random"/> (so clients given the same
    /// list spread over it), then <see cref="GeoRelayClientOptions.Endpoints"/> as given; an address listed twice is kept
    /// at its first place.
    /// </summary>
    public static string[] For(LearnerClientOptions options, Random random)
    {
        var local = options.LocalEndpoints.ToArray();
        random.Shuffle(local);
        var order = new List<string>(local.Length + options.Endpoints.Count);
        foreach (var endpoint in local) AddOnce(order, endpoint);
        foreach (var endpoint in options.Endpoints) AddOnce(order, endpoint);
        return order.ToArray();
    }

    private static void AddOnce(List<string> order, string endpoint)
    {
        var parsed = EndpointAddress.Parse(endpoint);
        foreach (var known in order)
            if (string.Equals(known, endpoint, StringComparison.OrdinalIgnoreCase) || EndpointAddress.Same(EndpointAddress.Parse(known), parsed)) return;
        order.Add(endpoint);
    }
}
