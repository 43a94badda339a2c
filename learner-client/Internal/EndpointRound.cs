namespace GeoRelay.LearnerClient.Internal;

/// <summary>
/// One round over a learner's endpoints: each at most once, in the dialer's order, except that an endpoint a refusal
/// names (<see cref="RefusalHint"/>) and this round has not tried goes next.
/// </summary>
internal sealed class EndpointRound(EndpointDialer dialer)
{
    private readonly bool[] _tried = new bool[dialer.Count];
    private int _cursor;
    private int _hinted = -1;

    public bool TryNext(out int endpoint)
    {
        if (_hinted >= 0 && !_tried[_hinted])
        {
            endpoint = _hinted;
        }
        else
        {
            while (_cursor < _tried.Length && _tried[_cursor]) _cursor++;
            endpoint = _cursor < _tried.Length ? _cursor : -1;
        }
        _hinted = -1;
        if (endpoint < 0) return false;
        _tried[endpoint] = true;
        return true;
    }

    /// <summary>Leaves <paramref name="endpoint"/> out of this round (it hung on us just now; the next round tries it again).</summary>
    public void Skip(int endpoint)
    {
        if (endpoint >= 0) _tried[endpoint] = true;
    }

    /// <summary>
    /// Makes the first endpoint <paramref name="refusal"/> names that the client knows and this round has not tried the
    /// next one; returns its name, or null when it names none.
    /// </summary>
    public string? Follow(string? refusal)
    {
        foreach (var address in RefusalHint.Addresses(refusal))
        {
            int index = dialer.IndexOf(address);
            if (index < 0 || _tried[index]) continue;
            _hinted = index;
            return dialer.Name(index);
        }
        return null;
    }
}
