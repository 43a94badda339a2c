using Microsoft.Extensions.Logging;

namespace GeoRelay.Server.Web;

/// <summary>
/// The web endpoint's shared feeds, one per key prefix while it has clients. A client that resumes inside a feed's ring
/// reads from it; any other starts on a subscription of its own and moves onto the feed once it has caught up (its
/// upstream had nothing more buffered), creating the feed when there is none. So a thousand live browsers cost the node
/// one subscription and one JSON encoding per entry, while a client replaying old entries is paced by itself alone.
/// </summary>
internal sealed class WebFeeds(WebUpstream upstream, string nodeId, long ringBytes, ILogger logger, CancellationToken stopping)
{
    private readonly Dictionary<string, WebFeed> _feeds = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Feeds running now (for tests and status).</summary>
    public int Count { get { lock (_gate) return _feeds.Count; } }

    /// <summary>
    /// Joins the feed of <paramref name="prefix"/> at <paramref name="from"/>: the feed and the client's cursor, or null
    /// when there is no feed or <paramref name="from"/> has left its ring. With <paramref name="create"/> a missing
    /// feed is started at <paramref name="from"/>. A joined client must <see cref="Leave"/>.
    /// </summary>
    public WebFeed? TryJoin(string? prefix, ulong from, bool create, out long cursor)
    {
        cursor = 0;
        WebFeed? started = null;
        lock (_gate)
        {
            if (_feeds.TryGetValue(prefix ?? "", out var feed) && feed.Failure is null)
            {
                if (!feed.TryPosition(from, out cursor)) return null;
                feed.Clients++;
                return feed;
            }
            if (!create) return null;
            started = new WebFeed(prefix, from, ringBytes) { Clients = 1 };
            _feeds[prefix ?? ""] = started;
        }
        started.Start(upstream, nodeId, logger, Ended, stopping);
        return started;
    }

    /// <summary>A client of <paramref name="feed"/> is done with it; the last one stops it.</summary>
    public void Leave(WebFeed feed)
    {
        lock (_gate)
        {
            if (--feed.Clients > 0) return;
            Remove(feed);
        }
        feed.Stop();
    }

    // A failed feed takes no new clients; the next caught-up client starts a fresh one.
    private void Ended(WebFeed feed)
    {
        lock (_gate) Remove(feed);
    }

    private void Remove(WebFeed feed)
    {
        if (_feeds.TryGetValue(feed.Prefix ?? "", out var current) && ReferenceEquals(current, feed)) _feeds.Remove(feed.Prefix ?? "");
    }
}
